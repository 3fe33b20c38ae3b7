"""``pvcalc quantify PATH``: every partial-volume method on every lesion of a scan.

The lesions come from a table of spherical ROIs (``--rois``), a label image
(``--labels``), the scan's own candidates (``--candidates``) or the inserts of the
QRM calcification insert located in the scan (``--phantom cci``, with the rod
calibration and each insert's nominal volume and mass beside the results); the
methods are those of :data:`pvcalc.methods.METHODS` (docs/methods/index.md). The
output has one row per lesion and method, as :func:`pvcalc.quantify` returns it.
"""

from __future__ import annotations

import json
import math
import sys
import textwrap

from pvcalc.cli._common import format_table, json_default, parse_calibration, scan_header

#: The command-line fix that the table's notes give instead of the library's Python one.
_CLI_FIX = "give --calibration C_HA or FILE.json"


def run(args) -> int:
    """``pvcalc quantify PATH``: read a scan and its lesions, run the methods, print the table."""
    import pvcalc

    methods = parse_methods(args.methods)
    if args.mask is not None and not args.candidates:
        raise ValueError("--mask is only used with --candidates (it restricts where candidates "
                         "may lie); drop it, or restrict the --labels image yourself")
    rois = read_rois(args.rois) if args.rois is not None else None
    calibration = parse_calibration(args.calibration)
    scan = pvcalc.read_scan(args.path, series_uid=args.series, strict=args.strict,
                            hu_range=None if args.hu_range is None else tuple(args.hu_range))
    mask = None
    layout = None
    if rois is not None:
        lesions, source = rois, f"ROIs of {args.rois}"
    elif args.labels is not None:
        lesions, source = pvcalc.read_labels(args.labels, like=scan), f"labels of {args.labels}"
    elif getattr(args, "phantom", None) == "cci":
        layout, calibration = locate_phantom(scan, calibration)
        lesions = layout.rois()
        source = "inserts of the QRM calcification insert located in the scan (pvcalc locate)"
    else:
        lesions, source = "candidates", "candidates (components >= 130 HU, grown by 2 mm)"
        if args.mask is not None:
            mask = pvcalc.read_labels(args.mask, like=scan)
            source += f" inside the mask {args.mask}"
    result = pvcalc.quantify(scan, lesions, methods=methods, calibration=calibration, mask=mask)
    if layout is not None:
        result = with_truth(result)
    selected = list(pvcalc.methods.METHODS) if methods == "all" else methods
    if args.format == "csv":
        result.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(json.dumps(_json(result, args.path, source, calibration, selected), indent=2,
                         default=json_default, allow_nan=False))
    else:
        print(_table_text(result, scan, args.path, source, calibration, selected, layout))
    return 0


def locate_phantom(scan, calibration):
    """``--phantom cci``: the located insert, and the calibration (from its rods unless given)."""
    from pvcalc.qrm import locate_cci

    layout = locate_cci(scan, require_rods=calibration is None)
    if calibration is None:
        calibration = layout.calibration(scan)
    return layout, calibration


def with_truth(result):
    """The result with each insert's nominal volume (pi d^3 / 4) and mass after ``mass_mg``."""
    from pvcalc.qrm import nominal_inserts

    truth = nominal_inserts().set_index("lesion")
    out = result.copy()
    at = out.columns.get_loc("mass_mg") + 1
    out.insert(at, "true_volume_mm3", out["lesion"].map(truth["volume_mm3"]).astype(float))
    out.insert(at + 1, "true_mass_mg", out["lesion"].map(truth["mass_mg"]).astype(float))
    return out


def parse_methods(text):
    """``--methods``: "all" or comma-separated names, each checked by :func:`get_method`."""
    from pvcalc.methods import get_method

    if text is None or text.strip() == "all":
        return "all"
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ValueError(f"--methods must be 'all' or method names separated by commas, e.g. "
                         f"--methods clinical,integrated; got {text!r}")
    for name in names:
        get_method(name)  # unknown name: ValueError with the closest valid one
    return names


def read_rois(path):
    """``--rois``: the CSV table of spherical ROIs, its columns checked before the scan is read."""
    import pandas as pd

    from pvcalc.methods._quantify import ROI_COLUMNS

    expected = ", ".join(ROI_COLUMNS) + " (and optionally radius_z_mm)"
    try:
        table = pd.read_csv(path, dtype={"lesion": str})
    except FileNotFoundError:
        raise FileNotFoundError(f"--rois {path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--rois {path} is not a readable CSV table ({detail}); it needs a "
                         f"header line with the columns {expected}, one row per lesion") from None
    missing = [c for c in ROI_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"--rois {path} lacks the column(s) {', '.join(missing)}; expected "
                         f"the columns {expected} (mm, scan coordinates), got "
                         f"{', '.join(map(str, table.columns))}")
    return table


def _json(result, path, source, calibration, methods):
    """The result as a JSON-ready dict; NaN and NA become null."""
    frame = result.astype(object).where(result.notna(), None)
    return {"scan": str(path), "lesions_from": source,
            "c_ha_mg_cm3_per_hu": None if calibration is None else
            calibration.c_ha_mg_cm3_per_hu,
            "methods": list(methods),
            "results": frame.to_dict(orient="records")}


def _cell(value, digits=2):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return f"{v:.{digits}f}" if math.isfinite(v) else "-"


def _note(reason):
    from pvcalc.methods._base import NO_CALIBRATION

    mass_fix = NO_CALIBRATION.split("; ", 1)[1]  # "pass calibration=... or ..."
    return reason.replace(mass_fix, _CLI_FIX).replace("pass calibration=pvcalc.Calibration(...)",
                                                      _CLI_FIX)


def _table_text(result, scan, path, source, calibration, methods, layout=None):
    """Header, one line per lesion and method, and the reasons behind the empty cells."""
    import pandas as pd

    lesions = list(dict.fromkeys(result["lesion"]))
    lines = [scan_header(scan, path), f"lesions: {len(lesions)} from the {source}",
             f"methods: {', '.join(methods)} (docs/methods/index.md)"]
    if layout is not None:
        cy, cx = layout.centre_yx_mm
        lines.append(f"QRM insert: axis (y, x) = ({cy:.2f}, {cx:.2f}) mm, insert plane z = "
                     f"{layout.insert_z_mm:.2f} mm, {int(layout.inserts['found'].sum())} of 9 "
                     "inserts found; true = nominal volume pi d^3 / 4 and mass")
        if calibration is not None and calibration.ha_hu is not None:
            lines.append(f"rods: HA {calibration.ha_hu:.1f} HU, water {calibration.water_hu:.1f} HU")
    if calibration is None:
        lines.append("mass calibration: none, so no masses (give --calibration C_HA or "
                     "FILE.json); methods that need c_HA report nothing")
    else:
        lines.append(f"mass calibration: c_HA = {calibration.c_ha_mg_cm3_per_hu:.4g} "
                     "mg HA cm^-3 HU^-1")
    if not len(result):
        return "\n".join([*lines, "", "no lesions"])
    notes = {}
    marks = []
    for reason in result["reason"]:
        text = _note(reason)
        marks.append(f"[{notes.setdefault(text, len(notes) + 1)}]" if text else "")
    table = pd.DataFrame({"lesion": result["lesion"], "method": result["method"],
                          "volume_mm3": [_cell(v) for v in result["volume_mm3"]],
                          "mass_mg": [_cell(v) for v in result["mass_mg"]],
                          "agatston": [_cell(v, 1) for v in result["agatston"]]})
    if "true_volume_mm3" in result.columns:
        table.insert(3, "true_volume_mm3", [_cell(v) for v in result["true_volume_mm3"]])
        table.insert(5, "true_mass_mg", [_cell(v) for v in result["true_mass_mg"]])
    if "swcs" in result.columns:
        table["swcs_mm2"] = [_cell(v, 1) for v in result["swcs"]]
    table["detected"] = ["-" if pd.isna(v) else ("yes" if v else "no")
                         for v in result["detected"]]
    table["note"] = marks
    lines += ["", format_table(table)]
    if notes:
        lines += ["", "notes (why a cell is empty, or what to keep in mind):"]
        for text, number in notes.items():
            lines.append(textwrap.fill(text, width=100, initial_indent=f"  [{number}] ",
                                       subsequent_indent=" " * (len(str(number)) + 5)))
    return "\n".join(lines)
