"""Measured / true volume and mass of every method on the simulated CCI replica.

    python docs/methods/measure_accuracy.py [protocol] [n_seeds]

Defaults: calcium_scoring, 10 seeds. ROIs: spheres of radius 5 mm (6 mm along z)
around the true insert centres; calibration from the phantom's rods. Prints the
median ratio per method and insert, the SD of the mass ratio and the detection rate.
"""

import sys

import pandas as pd

import phantoms
import pvcalc
from pvcalc.calibration import rod_calibration


def main(protocol="calcium_scoring", n_seeds=10):
    ph = phantoms.cci_phantom()
    prot = phantoms.get_protocol(protocol)
    rows = []
    for seed in range(n_seeds):
        scan, truth = phantoms.simulate(ph, prot, seed=500 + seed, fraction_maps=False)
        names = [str(v) for v in truth["name"].values]
        table = pd.DataFrame({"lesion": names, "centre_z_mm": truth.centre_z_mm.values,
                              "centre_y_mm": truth.centre_y_mm.values,
                              "centre_x_mm": truth.centre_x_mm.values,
                              "radius_mm": 5.0, "radius_z_mm": 6.0})
        res = pvcalc.quantify(scan, table, calibration=rod_calibration(scan, ph))
        res["volume_ratio"] = res.volume_mm3 / res.lesion.map(dict(zip(names, truth.volume_mm3.values)))
        res["mass_ratio"] = res.mass_mg / res.lesion.map(dict(zip(names, truth.mass_mg.values)))
        rows.append(res)
    res = pd.concat(rows)
    out = res.groupby(["method", "lesion"], sort=False).agg(
        volume=("volume_ratio", "median"), mass=("mass_ratio", "median"),
        mass_sd=("mass_ratio", "std"), detected=("detected", lambda d: d.astype(float).mean()))
    pd.set_option("display.width", 200)
    print(f"{protocol}, {n_seeds} seeds: median measured / true")
    print(out.round(2).to_string())


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["calcium_scoring"]), *(int(v) for v in sys.argv[2:3]))
