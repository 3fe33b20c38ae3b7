"""``pvcalc twin PATH --out DIR``: measure a scanner on its QRM phantom scan, simulate its twin.

Reads the scan, locates the calcification insert (:func:`pvcalc.qrm.locate_cci`),
measures the protocol (:func:`pvcalc.twin.measure_protocol`), simulates ``--repeats``
twin scans and compares them with the real one (:func:`pvcalc.twin.simulate_twin`).
Writes ``twin.csv``, ``twin_noise.csv``, ``twin.png``, ``report.md``, ``measured.csv``
(the measurement report) and ``protocol.json`` (the measured ``phantoms.Protocol``:
``phantoms.Protocol(**json.load(f))`` gives it back), and prints a summary.
"""

from __future__ import annotations

import math
from pathlib import Path

from pvcalc.cli._common import scan_header
from pvcalc.cli.quantify import parse_methods

_RING = {"auto": None, "yes": True, "no": False}


def run(args) -> int:
    """Read the scan, build and compare its twin, write the files, print a summary."""
    import pvcalc
    from pvcalc.twin import simulate_twin

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder (it is created if missing)")
    methods = parse_methods(args.methods)
    if args.kvp is not None and not (math.isfinite(args.kvp) and args.kvp > 0):
        raise ValueError(f"--kvp must be a positive tube voltage in kV, e.g. 120; got {args.kvp}")
    scan = pvcalc.read_scan(args.path, series_uid=args.series, strict=args.strict,
                            hu_range=None if args.hu_range is None else tuple(args.hu_range))
    result = simulate_twin(scan, repeats=args.repeats, seed=args.seed, methods=methods,
                           kvp=args.kvp, extension_ring=_RING[args.extension_ring])
    paths = result.write(out, scan_label=str(args.path))
    print(_summary(result, scan, args.path, paths))
    return 0


def _summary(result, scan, path, paths):
    p = result.protocol
    lines = [scan_header(scan, path), "",
             f"measured: PSF FWHM {p.psf_fwhm_mm:.3g} mm (MTF50 "
             f"{_q(result.report, 'mtf50_per_mm'):.3g} cycles/mm), noise SD {p.noise_sd_hu:.3g} "
             f"HU, NPS peak {_q(result.report, 'nps_peak_freq_per_mm'):.3g} cycles/mm, "
             f"{p.ha_hu_per_mg:.4g} HU per mg HA/cm3, insert body "
             f"{_q(result.report, 'insert_body_hu'):.1f} HU",
             f"twin: {result.twin['repeat'].nunique() if len(result.twin) else 0} scans analysed"
             f", {len(result.failures)} failed"]
    outside = result.outside
    n = int(result.comparison["outside"].notna().sum() + result.noise["outside"].notna().sum())
    lines.append(f"real values outside the twin's mean +- {result.tolerance_sd:g} SD: "
                 f"{len(outside)} of {n} compared (report.md lists them)")
    lines += ["", "written: " + ", ".join(str(v) for v in paths.values())]
    return "\n".join(lines)


def _q(report, quantity):
    row = report.loc[report["quantity"] == quantity, "value"]
    return float(row.iloc[0]) if len(row) else float("nan")
