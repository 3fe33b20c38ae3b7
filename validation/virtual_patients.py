"""Validation study: do scans of virtual patients score in their target risk categories?

Question: the patient generator aims each virtual patient at an Agatston risk category
through an estimate (``phantoms.library.estimated_agatston``). Simulated with the
calcium-scoring preset and scored clinically, in how many patients does the clinical
category equal the target one: with static lesions, with coronary motion under the
preset's gating (75% of each patient's own R-R interval, its heart rate drawn in
55-85 bpm), and with the same motion scanned non-gated (a random phase of the
patient's cycle, helical)?

Command::

    python validation/virtual_patients.py            # 25 patients (seed 7), ~1.5 min

Each patient is scanned once (seed 100 + i; 512 x 512, 0.49 mm pixels, 3 mm slices,
20 HU noise) and scored with ``pvcalc.score(scan, labels=mask, preset="standard")``,
where the mask holds every voxel within 12 mm of a coronary centreline (which keeps
the spine out). Results and conclusion: ``docs/phantoms.md`` ("Estimate against
clinical scoring of simulated scans").
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
import pandas as pd

import phantoms
import pvcalc
from phantoms.library import coronary_centrelines, estimated_agatston, lesion_population

_LABELS = pvcalc.RISK_SCHEMES["standard"][0]        # "0", "1-10", "11-100", "101-400", ">400"


def artery_mask(scan, radius_mm=12.0):
    """Label image (int32): 1 where a voxel centre lies within ``radius_mm`` of a centreline."""
    z, y, x = (scan[c].values for c in ("z", "y", "x"))
    pts = np.stack(np.meshgrid(z, y, x, indexing="ij"), -1)
    best = np.full(scan.shape, np.inf)
    for line in coronary_centrelines().values():
        for a, b in itertools.pairwise(line):
            ab = b - a
            t = np.clip(((pts - a) @ ab) / (ab @ ab), 0.0, 1.0)
            np.minimum(best, np.linalg.norm(pts - (a + t[..., None] * ab), axis=-1), out=best)
    return (best <= radius_mm).astype(np.int32)


def _category(score):
    return _LABELS.index(str(pvcalc.risk_category(float(score))))


def scores(n_patients=25, seed=7) -> pd.DataFrame:
    """One row per (patient, condition): estimate, clinical Agatston and both categories."""
    gated = phantoms.get_protocol("calcium_scoring")
    conditions = {"static": (False, gated), "moving, gated": (True, gated),
                  "moving, non-gated": (True, gated.replace(gated=False))}
    moving = lesion_population(n_patients, seed=seed)
    static = lesion_population(n_patients, seed=seed, motion=False)
    rows, mask = [], None
    for i, (pm, ps) in enumerate(zip(moving, static)):
        estimate = float(estimated_agatston(ps.lesions).sum())
        for condition, (motion, protocol) in conditions.items():
            scan, _ = phantoms.simulate(pm if motion else ps, protocol, seed=100 + i,
                                        fraction_maps=False)
            mask = artery_mask(scan) if mask is None else mask
            agatston = pvcalc.score(scan, labels=mask, preset="standard").total.agatston
            rows.append({"patient": i, "condition": condition,
                         "heart_rate_bpm": pm.heart_rate_bpm,
                         "cardiac_phase": scan.attrs["cardiac_phase"], "estimate": estimate,
                         "agatston": float(agatston), "target": _category(estimate),
                         "clinical": _category(agatston)})
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    table = scores(args.patients, args.seed)
    n = args.patients
    hr = table.drop_duplicates("patient")["heart_rate_bpm"]
    print(f"{n} patients, heart rates {hr.min():.1f}-{hr.max():.1f} bpm\n")
    print("| lesions | patients whose clinical category = target category "
          "| within one category |\n|---|---|---|")
    for condition, g in table.groupby("condition", sort=False):
        same = int((g.clinical == g.target).sum())
        near = int(((g.clinical - g.target).abs() <= 1).sum())
        print(f"| {condition} | {same} / {n} | {near} / {n} |")
    print("\nestimate -> clinical Agatston by target category:")
    for (condition, cat), g in table.groupby(["condition", "target"], sort=False):
        print(f"  {condition:18s} category {_LABELS[cat]:>7s}: estimates "
              f"{g.estimate.min():.1f}-{g.estimate.max():.1f}, scores "
              f"{g.agatston.min():.1f}-{g.agatston.max():.1f}")
    misses = table[table.clinical != table.target]
    if len(misses):
        print("\nmisses:")
        print(misses.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
