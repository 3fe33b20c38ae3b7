"""Detection rate of every method on calcium-free ROIs in noisy simulated scans.

    python docs/methods/measure_false_positives.py [n_seeds]

ROIs of radius 2, 3 and 5 mm on a grid in the soft tissue of the CCI replica, clear
of the inserts and rods, at z = -11, 0 and 11 mm; protocols calcium_scoring,
thin_slice_cscT and low_dose_chest; default 20 seeds. The grid is the one of
tests/test_methods_detection.py.
"""

import sys
from pathlib import Path

import pandas as pd

import phantoms
import pvcalc
from pvcalc.calibration import rod_calibration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from test_methods_detection import background_rois


def main(n_seeds=20):
    ph = phantoms.cci_phantom()
    for protocol in ("calcium_scoring", "thin_slice_cscT", "low_dose_chest"):
        prot = phantoms.get_protocol(protocol)
        for radius in (2.0, 3.0, 5.0):
            table = background_rois(ph, radius_mm=radius)
            res = []
            for seed in range(n_seeds):
                scan, _ = phantoms.simulate(ph, prot, seed=1000 + seed, fraction_maps=False)
                res.append(pvcalc.quantify(scan, table, calibration=rod_calibration(scan, ph)))
            res = pd.concat(res)
            rates = res.groupby("method", sort=False)["detected"].apply(
                lambda d: d.astype(float).mean())
            z = res.loc[res.method == "integrated", "z_score"]
            print(f"{protocol} roi {radius:g} mm, n = {len(table) * n_seeds}: "
                  + ", ".join(f"{m} {v:.3f}" for m, v in rates.items())
                  + f"; integrated z mean {z.mean():.3f} sd {z.std():.3f}", flush=True)


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:2]))
