"""Validation study: does pvcalc.qrm.locate_cci find the insert in scans of any pose?

Question: on simulated scans of the physical QRM insert geometry
(:func:`phantoms.cci_phantom`, both bodies), with the spokes at a random angle, the
phantom off-centre by up to 30 mm and repositioned between scans (random translation
and a small tilt, :func:`phantoms.simulate_repeat`), noise of 10-40 HU, and the
``calcium_scoring`` (3 mm slices) and ``low_dose_chest`` (1.25 mm slices every
0.625 mm) protocols at their full 512 x 512 matrix: is every 3 and 5 mm insert
located within 1 mm of its true centre and are both calibration rods found (centre
within 1 mm), in at least 99 of 100 scans?

Command::

    python validation/locate_cci.py              # 100 scans
    python validation/locate_cci.py --scans 10   # quicker

Writes ``validation/results/locate_cci.csv`` (one row per scan: its pose and
protocol, whether it passed, the largest error of the large and medium inserts,
how many inserts were seen, the rods' errors, the run time) and prints a summary.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

import phantoms
from pvcalc.qrm import locate_cci

RESULTS = Path(__file__).resolve().parent / "results"
PROTOCOLS = ("calcium_scoring", "low_dose_chest")
#: An insert or rod counts as located within this distance of its true centre (mm).
TOLERANCE_MM = 1.0


def draw_scan(rng, index):
    """The pose, body, protocol and noise of scan ``index`` (drawn from ``rng``)."""
    radius = 30.0 * math.sqrt(rng.uniform())
    angle = rng.uniform(0.0, 2.0 * math.pi)
    return {"scan": index, "protocol": PROTOCOLS[index % 2],
            "extension_ring": bool(rng.integers(2)),
            "rotation_deg": float(rng.uniform(0.0, 360.0)),
            "centre_y_mm": radius * math.sin(angle), "centre_x_mm": radius * math.cos(angle),
            "noise_sd_hu": float(rng.uniform(10.0, 40.0)), "seed": int(rng.integers(2 ** 31))}


def run_one(spec):
    """Simulate one scan, locate the insert, compare with the truth: one result row."""
    phantom = phantoms.cci_phantom(rotation_deg=spec["rotation_deg"],
                                   centre_yx_mm=(spec["centre_y_mm"], spec["centre_x_mm"]),
                                   extension_ring=spec["extension_ring"])
    protocol = phantoms.get_protocol(spec["protocol"], noise_sd_hu=spec["noise_sd_hu"])
    scan, truth = phantoms.simulate_repeat(phantom, protocol, seed=spec["seed"], index=0,
                                           fraction_maps=False)
    row = dict(spec, n_slices=scan.sizes["z"])
    start = time.perf_counter()
    try:
        layout = locate_cci(scan)
    except ValueError as err:
        return {**row, "passed": False, "error": str(err).splitlines()[0],
                "locate_s": time.perf_counter() - start}
    row["locate_s"] = time.perf_counter() - start
    true = phantoms.lesion_table(truth).set_index("lesion")
    got = layout.inserts.set_index("lesion")
    err = np.sqrt(sum((got[f"centre_{a}_mm"] - true[f"centre_{a}_mm"]) ** 2 for a in "zyx"))
    big = [name for name in got.index if not name.startswith("small")]
    small = [name for name in got.index if name.startswith("small")]
    row.update(max_error_mm=float(err[big].max()), max_error_small_mm=float(err[small].max()),
               n_found_large_medium=int(got.loc[big, "found"].sum()),
               n_found_small=int(got.loc[small, "found"].sum()),
               rotation_error_deg=float((layout.rotation_deg - spec["rotation_deg"] - 90.0
                                         + 180.0) % 360.0 - 180.0))
    rods = layout.rods.set_index("rod")
    rod_errors = []
    for i, name in enumerate(("ha200", "water")):
        if name not in rods.index:
            rod_errors.append(math.inf)
            continue
        rod_errors.append(math.hypot(rods.loc[name, "centre_y_mm"] - scan.attrs[f"rod_{i}_centre_y_mm"],
                                     rods.loc[name, "centre_x_mm"] - scan.attrs[f"rod_{i}_centre_x_mm"]))
        row[f"{name}_radius_mm"] = float(rods.loc[name, "radius_mm"])
        row[f"{name}_mean_hu"] = float(rods.loc[name, "mean_hu"])
    row.update(ha200_error_mm=rod_errors[0], water_error_mm=rod_errors[1],
               c_ha_mg_cm3_per_hu=layout.calibration(scan).c_ha_mg_cm3_per_hu)
    row["passed"] = bool(row["max_error_mm"] <= TOLERANCE_MM and max(rod_errors) <= TOLERANCE_MM)
    row["error"] = ""
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=100, help="number of scans (default 100)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the draws (default 2024)")
    parser.add_argument("--out", default=str(RESULTS / "locate_cci.csv"),
                        help="result CSV (default validation/results/locate_cci.csv)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    specs = [draw_scan(rng, i) for i in range(args.scans)]
    start = time.perf_counter()
    rows = []
    for spec in specs:
        rows.append(run_one(spec))
        r = rows[-1]
        print(f"scan {r['scan']:3d} {r['protocol']:15s} ring={int(r['extension_ring'])} "
              f"rot={r['rotation_deg']:5.1f} noise={r['noise_sd_hu']:4.1f} "
              f"{'ok ' if r['passed'] else 'FAIL'} max error "
              f"{r.get('max_error_mm', float('nan')):.2f} mm {r['error']}", flush=True)
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    total = time.perf_counter() - start
    ok = table[table["error"] == ""]
    print(f"\n{int(table['passed'].sum())} of {len(table)} scans passed (every 3 and 5 mm insert "
          f"and both rods within {TOLERANCE_MM:g} mm); run time {total:.0f} s "
          f"({total / len(table):.1f} s per scan, simulation included)")
    if len(ok):
        for protocol, part in ok.groupby("protocol"):
            print(f"  {protocol}: {len(part)} scans, largest insert error median "
                  f"{part['max_error_mm'].median():.2f} mm, max {part['max_error_mm'].max():.2f} "
                  f"mm; large/medium inserts seen {part['n_found_large_medium'].sum()} of "
                  f"{6 * len(part)}, small {part['n_found_small'].sum()} of {3 * len(part)}; "
                  f"rod error max {part[['ha200_error_mm', 'water_error_mm']].max().max():.2f} "
                  f"mm; locate {part['locate_s'].median():.1f} s (median)")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
