"""``pvcalc locate PATH``: find the QRM calcification insert's inserts and rods in a scan.

Prints the layout of :func:`pvcalc.qrm.locate_cci` (every insert and rod with its
position and confidence). Files are written only with ``--out DIR``: the overlay
figure ``cci_overlay.png``, the tables ``cci_inserts.csv`` and ``cci_rods.csv``, and
``cci_rois.csv``, the ROI table that ``pvcalc quantify --rois`` reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pvcalc.cli._common import format_table, json_default, scan_header

#: Files written to ``--out DIR``.
OUTPUT_FILES = ("cci_overlay.png", "cci_inserts.csv", "cci_rods.csv", "cci_rois.csv")
#: Columns of the CSV output: inserts and rods in one table (empty where not defined).
CSV_COLUMNS = ("kind", "name", "diameter_mm", "density_mg_cm3", "centre_z_mm", "centre_y_mm",
               "centre_x_mm", "radius_mm", "z_lo_mm", "z_hi_mm", "found", "confidence",
               "peak_hu", "mean_hu", "sd_hu")


def run(args) -> int:
    """Read the scan, locate the insert, print the layout, write the files of ``--out``."""
    import pvcalc
    from pvcalc.qrm import locate_cci

    out_dir = None
    if args.out is not None:
        out_dir = Path(args.out)
        if out_dir.exists() and not out_dir.is_dir():
            raise ValueError(f"--out {args.out} is a file; give a folder (it is created if "
                             "missing)")
    scan = pvcalc.read_scan(args.path, series_uid=args.series, strict=args.strict,
                            hu_range=None if args.hu_range is None else tuple(args.hu_range))
    layout = locate_cci(scan, require_rods=not args.no_rods)
    written = []
    if out_dir is not None:
        written = write_outputs(layout, scan, out_dir)
    if args.format == "csv":
        combined_table(layout).to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(json.dumps(_json(layout, args.path, written), indent=2, default=json_default,
                         allow_nan=False))
    else:
        print(_text(layout, scan, args.path, written))
    return 0


def write_outputs(layout, scan, folder):
    """Write the overlay PNG and the three CSV tables into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in OUTPUT_FILES]
    fig = layout.plot(scan)
    fig.savefig(paths[0], dpi=110, metadata={"Software": None})
    layout.inserts.to_csv(paths[1], index=False)
    layout.rods.to_csv(paths[2], index=False)
    layout.rois().to_csv(paths[3], index=False)
    return paths


def combined_table(layout):
    """Inserts and rods in one table with the columns :data:`CSV_COLUMNS`."""
    import pandas as pd

    inserts = layout.inserts.rename(columns={"lesion": "name"}).assign(kind="insert")
    rods = layout.rods.rename(columns={"rod": "name"}).assign(kind="rod")
    frames = [f for f in (inserts, rods) if len(f)]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return table.reindex(columns=list(CSV_COLUMNS))


def _summary(layout):
    return {"centre_y_mm": layout.centre_yx_mm[0], "centre_x_mm": layout.centre_yx_mm[1],
            "insert_z_mm": layout.insert_z_mm, "rotation_deg": layout.rotation_deg,
            "insert_body_hu": layout.insert_body_hu, "fit_rms_mm": layout.fit_rms_mm,
            "noise_sd_hu": layout.noise_sd_hu}


def _records(frame):
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _json(layout, path, written):
    return {"scan": str(path), **_summary(layout), "inserts": _records(layout.inserts),
            "rods": _records(layout.rods), "files": [str(p) for p in written]}


def _text(layout, scan, path, written):
    cy, cx = layout.centre_yx_mm
    found = int(layout.inserts["found"].sum())
    lines = [scan_header(scan, path),
             f"QRM calcification insert: axis (y, x) = ({cy:.2f}, {cx:.2f}) mm, insert plane "
             f"z = {layout.insert_z_mm:.2f} mm, 800 mg/cm3 spoke at {layout.rotation_deg:.1f} deg "
             "(counter-clockwise from +x as displayed)",
             f"  insert body {layout.insert_body_hu:.1f} HU, noise SD {layout.noise_sd_hu:.1f} HU, "
             f"layout fit RMS {layout.fit_rms_mm:.2f} mm; {found} of {len(layout.inserts)} "
             "inserts found (the others placed from the layout)", "", "inserts:"]
    ins = layout.inserts[["lesion", "diameter_mm", "density_mg_cm3", "centre_z_mm",
                          "centre_y_mm", "centre_x_mm", "found", "confidence", "peak_hu"]].copy()
    ins["found"] = ins["found"].map({True: "yes", False: "placed"})
    lines.append(format_table(ins))
    lines += ["", "calibration rods:"]
    if len(layout.rods):
        lines.append(format_table(layout.rods))
        try:
            cal = layout.calibration(scan)
            lines.append(f"  rod calibration c_HA = {cal.c_ha_mg_cm3_per_hu:.4g} mg HA cm^-3 HU^-1")
        except ValueError as err:
            lines.append(f"  no rod calibration: {str(err).splitlines()[0]}")
    else:
        lines.append("  none found")
    if written:
        lines += ["", "written: " + ", ".join(str(p) for p in written)]
    return "\n".join(lines)
