"""Validation study: how does insert motion change clinical scores?

Question: for a 5 mm, 400 mg HA/cm3 insert moving at constant speed during a 150 ms
acquisition window (calcium-scoring protocol), how do the Agatston and volume scores
change with speed, compared with the smear length v x window?

Command::

    python validation/motion_phantom.py                         # constant speeds, 10 repeats
    python validation/motion_phantom.py --profile cardiac       # cardiac-like profile, gated
    python validation/motion_phantom.py --profile cardiac --heart-rate 100

The heart rate is the phantom's (``motion_phantom(heart_rate_bpm=...)``): the gated
preset samples 75% of the insert's own R-R interval at every heart rate.

Each insert is scored with the standard preset inside its own region of interest: its
time-averaged footprint (the smear) grown by 2 mm (``pvcalc.rois.truth_roi_labels``).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

import phantoms
from pvcalc import Calibration
from pvcalc.evaluation import evaluate_repeats

#: The motion phantom has no calibration rods; mass is not reported here, so any
#: plausible factor serves (the simulator's own 1 / k(120 kVp)).
_CALIBRATION = Calibration(c_ha_mg_cm3_per_hu=1.0 / phantoms.hu_per_mg_cm3(120.0))


def scores_by_speed(*, repeats=10, seed=2018, profile="constant",
                    heart_rate_bpm=60.0) -> pd.DataFrame:
    """Per-repeat scores of every insert, with its speed."""
    protocol = phantoms.get_protocol("calcium_scoring")
    phantom = phantoms.motion_phantom(profile=profile, heart_rate_bpm=heart_rate_bpm)
    table = evaluate_repeats(phantom, protocol, seed=seed, n_repeats=repeats,
                             calibration=_CALIBRATION)
    return table.assign(speed_mm_s=[float(n[1:]) for n in table["lesion"]])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--profile", choices=("constant", "cardiac"), default="constant")
    parser.add_argument("--heart-rate", type=float, default=60.0,
                        help="heart rate of the cardiac profile in bpm (default 60)")
    args = parser.parse_args(argv)
    table = scores_by_speed(repeats=args.repeats, seed=args.seed, profile=args.profile,
                            heart_rate_bpm=args.heart_rate)
    window_s = phantoms.get_protocol("calcium_scoring").temporal_resolution_ms / 1000.0
    stats = table.groupby("speed_mm_s")[["agatston", "volume_score_mm3"]].agg(["mean", "std"])
    speed = "speed (mm/s)" if args.profile == "constant" else "peak speed (mm/s)"
    print(f"| {speed} | v x window (mm) | Agatston mean | Agatston SD | volume score mean (mm3) "
          "| volume score SD (mm3) |\n|---|---|---|---|---|---|")
    for v, r in stats.iterrows():
        print(f"| {v:g} | {v * window_s:.1f} | {r[('agatston', 'mean')]:.1f} | "
              f"{r[('agatston', 'std')]:.1f} | {r[('volume_score_mm3', 'mean')]:.1f} | "
              f"{r[('volume_score_mm3', 'std')]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
