"""Implementations of the ``pvcalc`` subcommands (argument parsing is in :mod:`pvcalc.cli`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd


def score(args) -> int:
    """``pvcalc score PATH``: read a scan, score it, print the result."""
    import pvcalc

    scan = pvcalc.read_scan(args.path, series_uid=args.series)
    labels = pvcalc.read_labels(args.labels, like=scan) if args.labels else None
    calibration = _parse_calibration(args.calibration)
    result = pvcalc.score(scan, labels=labels, preset=args.preset, calibration=calibration)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, default=_json_default))
    elif args.format == "csv":
        result.lesions.to_csv(sys.stdout, index=False)
    else:
        print(_scan_header(scan, args.path))
        print(f"preset: {args.preset}" + ("" if calibration is None else
              f"; mass calibration c_HA = {calibration.c_ha_mg_cm3_per_hu:.4g} mg HA cm^-3 HU^-1"))
        if args.lesions and len(result.lesions):
            print("\nLesions")
            print(_table(result.lesions))
        if labels is not None:
            print("\nPer label")
            print(_table(result.by_label))
        print("\nTotal")
        total = result.total
        print(f"  Agatston score   {total.agatston:10.1f}")
        print(f"  volume score     {total.volume_mm3:10.1f} mm3")
        if calibration is not None:
            print(f"  mass score       {total.mass_mg:10.2f} mg")
        else:
            print("  mass score       (not computed: give --calibration C_HA)")
        print(f"  lesions          {total.n_lesions:10d}")
        print(f"  risk category    {total.risk_category:>10}")
    return 0


def presets(args) -> int:
    """``pvcalc presets``: one line per scoring preset."""
    from pvcalc.scoring import PRESETS

    width = max(len(name) for name in PRESETS)
    for name, preset in PRESETS.items():
        print(f"{name:{width}s}  {preset.source}")
    return 0


def demo(args) -> int:
    """``pvcalc demo``: the calcification-insert phantom, simulated and scored."""
    from pvcalc._demo import run_demo

    report = run_demo(repeats=args.repeats, seed=args.seed, protocol=args.protocol,
                      extension_ring=args.extension_ring, out=args.out, echo=print)
    return 0 if report is not None else 1


def simulate(args) -> int:
    """``pvcalc simulate NAME``: write simulated scans (NIfTI or DICOM) and truth (CSV + netCDF)."""
    from pvcalc._simulate_cli import write_simulation

    write_simulation(args.name, protocol=args.protocol, seed=args.seed, repeats=args.repeats,
                     file_format=args.format, out=args.out, echo=print)
    return 0


def _parse_calibration(text):
    if text is None:
        return None
    from pvcalc import Calibration

    try:
        return Calibration(c_ha_mg_cm3_per_hu=float(text))
    except ValueError:
        pass
    path = Path(text)
    if not path.is_file():
        raise ValueError(
            f"--calibration must be a number (c_HA in mg HA cm^-3 HU^-1, e.g. 0.8) or a JSON "
            f"file, got {text!r}, which is neither a number nor an existing file")
    try:
        data = json.loads(path.read_text())
        value = float(data["c_ha_mg_cm3_per_hu"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ValueError(
            f"calibration file {text} must be JSON with a number under "
            "'c_ha_mg_cm3_per_hu', e.g. {\"c_ha_mg_cm3_per_hu\": 0.8}") from None
    return Calibration(c_ha_mg_cm3_per_hu=value)


def _scan_header(scan, path) -> str:
    from pvcalc import scan_spacing_mm

    dz, dy, dx = scan_spacing_mm(scan)
    bits = [f"scan: {path}",
            f"  {scan.sizes['z']} x {scan.sizes['y']} x {scan.sizes['x']} voxels, "
            f"{dz:.3g} x {dy:.3g} x {dx:.3g} mm (z, y, x), "
            f"slice thickness {float(scan.attrs['slice_thickness_mm']):.3g} mm, "
            f"{float(scan.attrs['kvp']):.0f} kVp"]
    extra = [f"{k} {scan.attrs[k]}" for k in ("manufacturer", "kernel") if scan.attrs.get(k)]
    if extra:
        bits.append("  " + ", ".join(extra))
    return "\n".join(bits)


def _table(df: pd.DataFrame) -> str:
    with pd.option_context("display.max_rows", 500, "display.width", 160,
                           "display.max_columns", 30, "display.float_format", "{:.2f}".format):
        return df.to_string(index=False)


def _json_default(obj):
    try:
        return obj.item()
    except AttributeError:
        return str(obj)


def ensure_folder(path) -> Path:
    """Create ``path`` (and parents) if needed; error if it is a file."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {path} exists and is not a folder; give a folder path")
    os.makedirs(folder, exist_ok=True)
    return folder
