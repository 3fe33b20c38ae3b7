"""Validation study: how does motion change the partial-volume methods' volume and mass?

Question: for a 5 mm, 400 mg HA/cm3 insert of the motion phantom moving at 0, 10, 30
and 60 mm/s, how far from the true volume and mass is each registered method, how
much do its results spread between repeated scans, gated and non-gated, and is the
adaptive threshold of Groen et al. (Med Phys 2009;36:438) less sensitive to motion
than the fixed 130 HU threshold, as they report (about 30% less)?

Command::

    python validation/methods_motion.py                 # 10 repeats, five conditions
    python validation/methods_motion.py --repeats 3     # quicker
    python validation/methods_motion.py --quick         # 2 repeats, first condition only

Conditions (:data:`CONDITIONS`): constant speed (the set-up of Groen et al.: an arm
moving the insert at a set speed) and a cardiac-like profile with that peak speed at
60 bpm, each scanned with the gated calcium-scoring protocol (75% of the R-R
interval) and non-gated (``get_protocol("calcium_scoring", gated=False)``: the same
slices and noise, a random cardiac phase and helical timing); and the cardiac profile
in the non-gated low-dose chest protocol. Every method registered in
``pvcalc.methods.METHODS`` runs. The motion phantom has no calibration rods: mass is
calibrated, as at a site, on the rods of a static CCI phantom scanned with the same
protocol (``rod_calibration``, one scan per protocol). Each insert's ROI is its
footprint over the acquisition (the smear a reader sees and outlines) grown by 2 mm
(``pvcalc.rois.truth_roi_labels``): with speeds up to 60 mm/s the smear reaches
9 mm (15 mm in the 250 ms low-dose window), so a sphere of known size would not do.

Writes ``validation/results/methods_motion_per_scan.csv.gz``,
``methods_motion_summary.csv`` (per condition x method x speed x quantity),
``methods_motion_sensitivity.csv`` and ``methods_motion_error.png``; prints the
markdown tables of ``validation/methods_motion.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from methods_common import by_method, defined_rows, error_statistics, md_table

import phantoms
import pvcalc
from phantoms.truth import lesion_table
from pvcalc.calibration import rod_calibration
from pvcalc.evaluation import beside_truth
from pvcalc.methods import METHODS
from pvcalc.rois import truth_roi_labels

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 2009
VELOCITIES_MM_S = (0.0, 10.0, 30.0, 60.0)
HEART_RATE_BPM = 60.0
#: (name, motion profile, protocol, gated: True/False, or None for the preset's own)
CONDITIONS = (
    ("constant, gated CS", "constant", "calcium_scoring", True),
    ("constant, non-gated CS", "constant", "calcium_scoring", False),
    ("cardiac, gated CS", "cardiac", "calcium_scoring", True),
    ("cardiac, non-gated CS", "cardiac", "calcium_scoring", False),
    ("cardiac, low-dose chest", "cardiac", "low_dose_chest", None),
)
KEYS = ["condition", "method", "lesion"]
PER_SCAN_COLUMNS = ["condition", "repeat", "lesion", "speed_mm_s", "method", "volume_mm3",
                    "mass_mg", "detected", "background_hu", "reason", "c_ha"]


def _protocol(name, gated):
    if gated is None:
        return phantoms.get_protocol(name)
    return phantoms.get_protocol(name, gated=gated)


def site_calibration(protocol, *, seed=SEED):
    """c_HA of the protocol from the rods of one static CCI scan (as a site calibrates)."""
    phantom = phantoms.cci_phantom(geometry="compact")   # the geometry its results were measured on
    scan, _ = phantoms.simulate_repeat(phantom, protocol, seed=seed, index=0,
                                       fraction_maps=False)
    return rod_calibration(scan, phantom)


def run(conditions=CONDITIONS, *, repeats=10, seed=SEED, log=sys.stderr):
    """Per-scan rows of every condition (one row per scan x insert x method) and the truth."""
    rows, truth, calibrations = [], None, {}
    n_scans, k, t_start = len(conditions) * repeats, 0, time.perf_counter()
    for c, (name, profile, protocol_name, gated) in enumerate(conditions):
        protocol = _protocol(protocol_name, gated)
        if protocol_name not in calibrations:
            calibrations[protocol_name] = site_calibration(phantoms.get_protocol(protocol_name),
                                                           seed=seed)
        cal = calibrations[protocol_name]
        phantom = phantoms.motion_phantom(velocities_mm_s=VELOCITIES_MM_S, profile=profile,
                                          heart_rate_bpm=HEART_RATE_BPM)
        speeds = {les.name: v for les, v in zip(phantom.lesions, VELOCITIES_MM_S)}
        for index in range(repeats):
            t0 = time.perf_counter()
            scan, truth = phantoms.simulate_repeat(phantom, protocol, seed=seed + 1 + c,
                                                   index=index)
            res = pvcalc.quantify(scan, truth_roi_labels(scan, truth), calibration=cal)
            rows.append(res.assign(condition=name, repeat=index + 1,
                                   speed_mm_s=res["lesion"].map(speeds),
                                   c_ha=cal.c_ha_mg_cm3_per_hu))
            k += 1
            print(f"[{k}/{n_scans}] {name} repeat {index + 1}: {time.perf_counter() - t0:.1f} s"
                  f" (total {time.perf_counter() - t_start:.0f} s)", file=log, flush=True)
    return pd.concat(rows, ignore_index=True), lesion_table(truth)


def summarise(per_scan, truth_table):
    """Error, SD and CV per condition x method x insert (speed) x quantity."""
    long = beside_truth(per_scan[PER_SCAN_COLUMNS].drop(columns="c_ha"), truth_table)
    table = error_statistics(defined_rows(long), KEYS + ["quantity"])
    speeds = per_scan.groupby("lesion")["speed_mm_s"].first()
    table["speed_mm_s"] = table["lesion"].map(speeds)
    rank = {"condition": [c[0] for c in CONDITIONS], "method": list(METHODS),
            "quantity": ["volume_mm3", "mass_mg"]}
    return table.sort_values(["condition", "method", "quantity", "speed_mm_s"], kind="stable",
                             key=lambda s: s.map({v: i for i, v in enumerate(rank[s.name])})
                             if s.name in rank else s).reset_index(drop=True)


def motion_sensitivity(summary) -> pd.DataFrame:
    """Mean |change| of the mean estimate from the static insert's, over the moving speeds.

    Per condition x method x quantity, with E = the mean over the repeats:
    ``sensitivity_pct = mean_v>0 |E(v) - E(0)| / E(0) x 100`` (relative to the static
    estimate) and ``sensitivity_truth_pct``, the same change in percent of the true
    value (so that a method whose static estimate is low is not penalised for it);
    ``ratio_to_clinical`` and ``truth_ratio_to_clinical``: each over clinical's
    (Groen et al. report about 0.7 for their adaptive threshold). The static and the
    moving inserts sit at different places of the row, and E has a standard error of
    SD / sqrt(repeats): changes of a few percent are within noise.
    """
    rows = []
    for (cond, method, q), g in summary.groupby(["condition", "method", "quantity"], sort=False):
        truth = float(g["truth"].iloc[0])
        g = g.set_index("speed_mm_s")["mean_estimate"]
        static = g.loc[0.0]
        change = float(np.mean(np.abs(g.drop(index=0.0) - static)))
        rows.append({"condition": cond, "method": method, "quantity": q,
                     "static_estimate": static, "sensitivity_pct": change / static * 100,
                     "sensitivity_truth_pct": change / truth * 100})
    out = pd.DataFrame(rows)
    clinical = out[out["method"] == "clinical"].set_index(["condition", "quantity"])
    where = pd.MultiIndex.from_frame(out[["condition", "quantity"]])
    for column, ratio in (("sensitivity_pct", "ratio_to_clinical"),
                          ("sensitivity_truth_pct", "truth_ratio_to_clinical")):
        out[ratio] = out[column] / clinical[column].reindex(where).to_numpy()
    return out


def markdown(summary, sensitivity):
    """Tables: error +- SD (%) by speed per method, and the motion sensitivity."""
    sections = []
    for q, label in (("volume_mm3", "Volume"), ("mass_mg", "Mass")):
        sub = summary[summary["quantity"] == q].rename(columns={"method": "_m",
                                                                "speed_mm_s": "method"})
        wide = by_method(sub.assign(_m=[f"`{m}`" for m in sub["_m"]]), ["condition", "_m"],
                         lambda r: f"{r.relative_error_pct:+.1f} ± {r.relative_sd_pct:.1f}")
        wide.columns = [f"{v:g} mm/s" for v in wide.columns]
        sections.append((f"{label}: mean relative error ± SD (%) by speed",
                         wide.rename_axis(index=["condition", "method"])))
    sections.append((
        ("Motion sensitivity: mean |change from static| over 10-60 mm/s in % of the static "
         "estimate (ratio to clinical's) / in % of the truth (ratio to clinical's)"),
        by_method(sensitivity, ["condition", "quantity"],
                  lambda r: f"{r.sensitivity_pct:.1f} ({r.ratio_to_clinical:.2f}) / "
                            f"{r.sensitivity_truth_pct:.1f} ({r.truth_ratio_to_clinical:.2f})")))
    return "\n\n".join(f"**{title}**\n\n{md_table(table)}" for title, table in sections)


def groen_lines(sensitivity):
    """The comparison with Groen et al.'s 'about 30% less motion-sensitive'."""
    lines = []
    sub = sensitivity[sensitivity["method"] == "adaptive_groen"]
    for r in sub.itertuples():
        verdict = ("less sensitive than clinical" if max(r.ratio_to_clinical,
                                                         r.truth_ratio_to_clinical) < 1 else
                   "more sensitive than clinical" if min(r.ratio_to_clinical,
                                                         r.truth_ratio_to_clinical) > 1 else
                   "depends on the normalisation")
        lines.append(f"- {r.condition}, {r.quantity}: ratio to clinical "
                     f"{r.ratio_to_clinical:.2f} (change relative to the static estimate), "
                     f"{r.truth_ratio_to_clinical:.2f} (relative to the truth); Groen et al.: "
                     f"about 0.7: {verdict}")
    return lines


def plot(summary, path):
    """Relative error vs speed per method (SD bars): rows volume / mass, a column per condition."""
    from matplotlib.figure import Figure

    conditions = list(dict.fromkeys(summary["condition"]))
    methods = list(dict.fromkeys(summary["method"]))
    others = iter(f"C{i}" for i in range(10))
    colours = {m: "black" if m == "clinical" else next(others) for m in methods}
    fig = Figure(figsize=(3.3 * len(conditions) + 1.0, 6.8), layout="constrained")
    axes = fig.subplots(2, len(conditions), sharex=True, sharey="row", squeeze=False)
    limit = {"volume_mm3": 250.0, "mass_mg": 60.0}
    for row, (q, label) in enumerate((("volume_mm3", "volume"), ("mass_mg", "mass"))):
        for col, cond in enumerate(conditions):
            ax = axes[row, col]
            sub = summary[(summary["condition"] == cond) & (summary["quantity"] == q)]
            ax.axhspan(-10, 10, color="0.9", zorder=0)
            ax.axhline(0, color="0.3", lw=0.8)
            present = [m for m in methods if m in set(sub["method"])]
            for k, m in enumerate(present):
                g = sub[sub["method"] == m].sort_values("speed_mm_s")
                x = g["speed_mm_s"].to_numpy() + (k - (len(present) - 1) / 2) * 0.8
                y = np.clip(g["relative_error_pct"].to_numpy(), -limit[q], limit[q])
                ax.errorbar(x, y, yerr=g["relative_sd_pct"], fmt="o-", ms=3, lw=1, capsize=2,
                            color=colours[m], label=m if (row, col) == (0, 0) else None)
            ax.set_ylim(-100 if q == "volume_mm3" else -limit[q], limit[q])
            ax.grid(lw=0.3)
            if row == 0:
                ax.set_title(cond, fontsize=10)
            if col == 0:
                ax.set_ylabel(f"{label}: (measured - true) / true (%)")
            if row == 1:
                ax.set_xlabel("insert speed (mm/s; cardiac: peak)")
            ax.set_xticks([float(v) for v in VELOCITIES_MM_S])
    handles = [h for h in axes[0, 0].get_legend_handles_labels()]
    fig.legend(*handles, loc="outside upper center", ncol=min(len(methods), 8), fontsize=8,
               title="method (bars: SD over the repeats; grey band: ±10%; values beyond the "
                     "axis are drawn at its edge)", title_fontsize=8)
    fig.savefig(path, dpi=90)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--quick", action="store_true",
                        help="2 repeats of the first condition only (for the test)")
    parser.add_argument("--out", default=None, help="output folder (default validation/results)")
    args = parser.parse_args(argv)
    repeats, conditions = (2, CONDITIONS[:1]) if args.quick else (args.repeats, CONDITIONS)
    out = Path(args.out) if args.out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"methods: {list(METHODS)}", file=sys.stderr, flush=True)
    per_scan, truth_table = run(conditions, repeats=repeats, seed=args.seed)
    per_scan[PER_SCAN_COLUMNS].to_csv(  # gzip with mtime 0: the same bytes on every run
        out / "methods_motion_per_scan.csv.gz", index=False, float_format="%.6g",
        compression={"method": "gzip", "mtime": 0})
    summary = summarise(per_scan, truth_table)
    sensitivity = motion_sensitivity(summary)
    summary.to_csv(out / "methods_motion_summary.csv", index=False, float_format="%.6g")
    sensitivity.to_csv(out / "methods_motion_sensitivity.csv", index=False,
                       float_format="%.6g")
    plot(summary, out / "methods_motion_error.png")
    print(markdown(summary, sensitivity))
    print()
    print("\n".join(groen_lines(sensitivity)))
    c = per_scan.groupby("condition", sort=False)["c_ha"].first()
    true = truth_table.iloc[0]
    print(f"\n{len(per_scan.groupby(['condition', 'repeat']))} scans; true volume "
          f"{true.volume_mm3:.2f} mm3, mass {true.mass_mg:.2f} mg; c_HA "
          f"{', '.join(f'{k}: {v:.4f}' for k, v in c.items())}; methods {list(METHODS)}; run time "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
