"""``pvcalc score PATH``: clinical calcium scores of a DICOM series or NIfTI file."""

from __future__ import annotations

import json
import sys

from pvcalc.cli._common import format_table, json_default, parse_calibration, scan_header


def run(args) -> int:
    """``pvcalc score PATH``: read a scan, score it, print the result."""
    import pvcalc

    scan = pvcalc.read_scan(args.path, series_uid=args.series, strict=args.strict,
                            hu_range=None if args.hu_range is None else tuple(args.hu_range))
    labels = pvcalc.read_labels(args.labels, like=scan) if args.labels else None
    calibration = parse_calibration(args.calibration)
    result = pvcalc.score(scan, labels=labels, preset=args.preset, calibration=calibration)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, default=json_default))
    elif args.format == "csv":
        result.lesions.to_csv(sys.stdout, index=False)
    else:
        print(scan_header(scan, args.path))
        print(f"preset: {args.preset}" + ("" if calibration is None else
              f"; mass calibration c_HA = {calibration.c_ha_mg_cm3_per_hu:.4g} mg HA cm^-3 HU^-1"))
        if args.lesions and len(result.lesions):
            print("\nLesions")
            print(format_table(result.lesions))
        if labels is not None:
            print("\nPer label")
            print(format_table(result.by_label))
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
