"""Helpers shared by the ``pvcalc`` subcommands: option parsing and output formatting."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd


def parse_calibration(text):
    if text is None:
        return None
    from pvcalc import Calibration

    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(
                f"--calibration must be a positive, finite c_HA in mg HA cm^-3 HU^-1 (real "
                f"scanners: about 0.7-0.9, e.g. 0.8) or a JSON file, got {text!r}")
        return Calibration(c_ha_mg_cm3_per_hu=value)
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


def scan_header(scan, path) -> str:
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


def format_table(df: pd.DataFrame) -> str:
    with pd.option_context("display.max_rows", 500, "display.width", 160,
                           "display.max_columns", 30, "display.float_format", "{:.2f}".format):
        return df.to_string(index=False)


def json_default(obj):
    try:
        return obj.item()
    except AttributeError:
        return str(obj)
