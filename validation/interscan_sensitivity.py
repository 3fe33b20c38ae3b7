"""Validation study: which scan and population factors move clinical scoring's interscan variability?

Question: clinical Agatston scores of simulated virtual patients scanned twice with
non-gated low-dose chest CT differ between the scans far less than the 61-71% mean
interscan variability measured in lung-screening participants (Jacobs et al., AJR
2010;194:1244). Which factor of the scan or of the population moves the simulated
variability, and by how much? One factor at a time around the ``screening_chest`` preset
(``phantoms.PROTOCOLS``) and the ``population="screening"`` patients
(``phantoms.virtual_patient``): noise, reconstruction (slice thickness and increment),
kernel, temporal window, rotation time (table speed), motion amplitude, lesion density,
how unequal the lesions of a patient are, the population model and the repositioning;
plus the gated calcium-scoring protocol for reference and the generic chest preset with the
default (category) population, the setting of earlier measurements.

Command::

    python validation/interscan_sensitivity.py --out /tmp/interscan_sensitivity
    # 150 patients x 2 scans per point, 21 points

Each point is a study of ``pvcalc.study`` (one folder per point under ``--out``; a rerun
resumes), every patient of the same population (seed 2024) at every point, so the points
are paired by patient. Per patient and scan: the clinical total Agatston score inside the
lesions' truth ROIs. Per point: mean and median relative interscan difference
|A - B| / ((A + B) / 2) of the totals (patients scoring 0 on both scans left out, as in
the published studies), their 95% bootstrap CIs (2000 resamples of patients), the paired
bootstrap CI of the change in the mean against the base point, the share of patients in
another risk category on scan 2 (Jacobs et al.'s four categories 0, 1-100, 101-400, > 400
and the standard five) and the linearly weighted kappa. Results:
``validation/results/interscan_sensitivity/``; page: ``validation/interscan_sensitivity.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: Jacobs et al. 2010's risk categories (upper bounds; 0 is its own category).
JACOBS_EDGES = (0.0, 100.0, 400.0)
#: The standard categories 0, 1-10, 11-100, 101-400, > 400.
STANDARD_EDGES = (0.0, 10.0, 100.0, 400.0)
BASE_PHANTOM = {"population": "screening"}
#: (factor, level, grid changes, phantom changes, simulation changes); the first is the base.
POINTS = (
    ("base", "screening_chest, screening population", {}, {}, {}),
    ("noise", "20 HU", {"noise_sd_hu": 20.0}, {}, {}),
    ("noise", "60 HU", {"noise_sd_hu": 60.0}, {}, {}),
    ("reconstruction", "1.0 / 0.7 mm", {"slice": [1.0, 0.7]}, {}, {}),
    ("reconstruction", "3.0 / 3.0 mm", {"slice": [3.0, 3.0]}, {}, {}),
    ("kernel", "sharp (PSF 0.8 mm)", {"psf_fwhm_mm": 0.8}, {}, {}),
    ("temporal window", "150 ms", {"temporal_resolution_ms": 150.0}, {}, {}),
    ("temporal window", "250 ms", {"temporal_resolution_ms": 250.0}, {}, {}),
    ("rotation time", "0.33 s (45 mm/s table)", {"rotation_time_s": 0.33}, {}, {}),
    ("rotation time", "1.0 s (15 mm/s table)", {"rotation_time_s": 1.0}, {}, {}),
    ("motion amplitude", "static (x 0)", {}, {"motion_scale": 0.0}, {}),
    ("motion amplitude", "x 0.5", {}, {"motion_scale": 0.5}, {}),
    ("motion amplitude", "x 2", {}, {"motion_scale": 2.0}, {}),
    ("heart rate", "90 bpm", {"heart_rate_bpm": 90.0}, {}, {}),
    ("lesion density", "130-300 mg/cm3", {}, {"density_range_mg_cm3": [130.0, 300.0]}, {}),
    ("lesion density", "400-900 mg/cm3", {}, {"density_range_mg_cm3": [400.0, 900.0]}, {}),
    ("lesion split", "one dominant (alpha 0.5)", {}, {"share_alpha": 0.5}, {}),
    ("lesion split", "equal (alpha 8)", {}, {"share_alpha": 8.0}, {}),
    ("population", "categories (balanced)", {}, {"population": "categories"}, {}),
    ("repositioning", "none", {}, {}, {"reposition": False}),
    ("repositioning", "x 2", {}, {}, {"translation_sd_mm": [3.0, 2.0, 2.0],
                                        "rotation_sd_deg": 2.0}),
    ("protocol", "low_dose_chest preset", {"protocol": "low_dose_chest"}, {}, {}),
    ("protocol", "calcium_scoring (gated)", {"protocol": "calcium_scoring"}, {}, {}),
    # two changes at once: the generic chest preset with the default category population
    ("earlier setting", "low_dose_chest, categories", {"protocol": "low_dose_chest"},
     {"population": "categories"}, {}),
)
#: The points run by default (and reported): all but the 250 ms window, motion x 0.5 and
#: 90 bpm, which lie between points that are run (``--points 7 11 13`` runs them).
DEFAULT_POINTS = tuple(i for i in range(len(POINTS)) if i not in (7, 11, 13))


def _toml(value):
    return json.dumps(value)


def spec_text(index, n_patients, seed=20240901, population_seed=2024):
    """The TOML spec of point ``index`` of :data:`POINTS`."""
    factor, level, grid, phantom, simulation = POINTS[index]
    grid = {"protocol": "screening_chest", **grid}
    phantom = {**BASE_PHANTOM, **phantom}
    lines = ["[study]", f'name = "interscan_sensitivity_{index:02d}"', f"seed = {seed}",
             "repeats = 2", f"description = {_toml(f'{factor}: {level}')}", "",
             "[[phantoms]]", 'name = "patients"', f"n = {n_patients}",
             f"seed = {population_seed}"]
    lines += [f"{k} = {_toml(v)}" for k, v in phantom.items()]
    lines += ["", "[grid]"] + [f"{k} = {_toml(v)}" for k, v in grid.items()]
    lines += ["", "[methods.clinical]", "", "[calibration]", 'source = "nominal"']
    if simulation:
        lines += ["", "[simulation]"] + [f"{k} = {_toml(v)}" for k, v in simulation.items()]
    return "\n".join(lines) + "\n"


def patient_totals(folder, method="clinical", quantity="agatston", results=None):
    """Per patient (and protocol): the total ``quantity`` of ``method`` on scans 1 and 2.

    The lesions' estimates are summed as given (the unclipped integrated methods can go
    below 0 for a faint lesion) and a total below 0 counts as 0; a scan with a lesion the
    method could not measure (NaN, e.g. ``mesh`` volumes without a plateau) has no total
    (NaN). Patients without lesions (``read_scans``) have a total of 0 on both scans.
    Returns columns ``protocol``, ``patient``, ``a``, ``b``.
    """
    from pvcalc.study import read_results, read_scans

    res = results if results is not None else read_results(
        folder, columns=["task_key", "phantom", "protocol", "repeat", "method", quantity])
    res = res[res["method"] == method]
    grouped = res.groupby(["protocol", "phantom", "repeat"])[quantity]
    sums = grouped.sum().clip(lower=0.0).where(grouped.count() == grouped.size())
    scans = read_scans(folder)
    keys = scans["task_key"].astype(str).str.split("|")
    every = pd.DataFrame({"phantom": keys.str[0], "protocol": keys.str[1],
                          "repeat": keys.str[-2].str[1:].astype(int)})
    every["total"] = [float(sums.get((p, ph, r), 0.0)) for p, ph, r in
                      zip(every["protocol"], every["phantom"], every["repeat"])]
    wide = every.pivot_table(index=["protocol", "phantom"], columns="repeat", values="total",
                             dropna=False)
    return pd.DataFrame({"protocol": wide.index.get_level_values(0),
                         "patient": wide.index.get_level_values(1),
                         "a": wide[1].to_numpy(), "b": wide[2].to_numpy()})


def relative_difference(a, b):
    """|a - b| / ((a + b) / 2) x 100 (%), NaN where both are 0."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((a + b) > 0, 100.0 * np.abs(a - b) / ((a + b) / 2.0), np.nan)


def _category(x, edges):
    x = np.asarray(x, float)
    return np.where(x <= 0, 0, np.searchsorted(np.asarray(edges), x, side="left"))


def summary(a, b, *, n_boot=2000, seed=0):
    """Interscan statistics of per-patient totals ``a`` (scan 1) and ``b`` (scan 2)."""
    from pvcalc.stats import weighted_kappa

    a, b = np.asarray(a, float), np.asarray(b, float)
    measured = ~(np.isnan(a) | np.isnan(b))
    n_not_measured = int((~measured).sum())
    a, b = a[measured], b[measured]
    d = relative_difference(a, b)
    used = ~np.isnan(d)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, used.sum(), size=(n_boot, used.sum()))
    boot = d[used][idx]
    cj, cs = _category(a, JACOBS_EDGES), _category(b, JACOBS_EDGES)
    sj, ss = _category(a, STANDARD_EDGES), _category(b, STANDARD_EDGES)
    kap = weighted_kappa(cj.tolist(), cs.tolist(), categories=[0, 1, 2, 3])
    one_zero = ((a == 0) != (b == 0))
    return {"n_patients": len(a) + n_not_measured, "n_not_measured": n_not_measured,
            "n_pairs": int(used.sum()), "n_both_zero": int((~used).sum()),
            "n_one_zero": int(one_zero.sum()),
            "mean_pct": float(d[used].mean()),
            "mean_ci_low": float(np.percentile(boot.mean(axis=1), 2.5)),
            "mean_ci_high": float(np.percentile(boot.mean(axis=1), 97.5)),
            "median_pct": float(np.median(d[used])),
            "median_ci_low": float(np.percentile(np.median(boot, axis=1), 2.5)),
            "median_ci_high": float(np.percentile(np.median(boot, axis=1), 97.5)),
            "reclassified_jacobs": float(np.mean(cj != cs)),
            "kappa_jacobs": float(kap["kappa"].iloc[0]),
            "reclassified_standard": float(np.mean(sj != ss))}


def paired_change(base, other, *, n_boot=2000, seed=1):
    """Change of the mean relative difference from ``base`` to ``other`` (same patients):
    the estimate and its 95% paired bootstrap CI (patients with a pair at either point)."""
    da, db = (relative_difference(t["a"], t["b"]) for t in (base, other))
    keep = ~(np.isnan(da) & np.isnan(db))
    da, db = da[keep], db[keep]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(da), size=(n_boot, len(da)))
    est = float(np.nanmean(db) - np.nanmean(da))
    boot = np.nanmean(db[idx], axis=1) - np.nanmean(da[idx], axis=1)
    return est, float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def ratio_of_means(reference, other, *, n_boot=2000, seed=2):
    """Mean relative difference of ``other`` / that of ``reference`` (same patients), with
    its 95% paired bootstrap CI; patients scoring 0 twice with either are left out."""
    da, db = (relative_difference(t["a"], t["b"]) for t in (reference, other))
    keep = ~(np.isnan(da) | np.isnan(db))
    da, db = da[keep], db[keep]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(da), size=(n_boot, len(da)))
    boot = db[idx].mean(axis=1) / da[idx].mean(axis=1)
    return (float(db.mean() / da.mean()), float(np.percentile(boot, 2.5)),
            float(np.percentile(boot, 97.5)), int(keep.sum()))


#: What each method's per-patient total is made of (``pvcalc.methods.METHODS`` defines).
QUANTITIES = ("agatston", "mass_mg", "volume_mm3")


def summarise_population(folder):
    """Per-patient interscan statistics of every method, protocol and quantity of a study.

    Returns ``(table, halving)``: ``table`` one row per (protocol, method, quantity) with
    :func:`summary`'s columns (the risk categories only for Agatston) and the ICC(A,1) of
    the totals; ``halving`` the ratio of each method's mean relative difference to
    clinical scoring's (of its Agatston score and of its own quantity), per protocol and
    quantity, with paired bootstrap CIs.
    """
    from pvcalc.methods import METHODS
    from pvcalc.stats import icc
    from pvcalc.study import read_results

    res = read_results(folder, columns=["task_key", "phantom", "protocol", "repeat", "method",
                                        *QUANTITIES])
    rows, halving = [], []
    clinical = {q: patient_totals(folder, "clinical", q, res) for q in QUANTITIES}
    for method in dict.fromkeys(res["method"]):
        for q in QUANTITIES:
            if q not in METHODS[method].defines:
                continue
            totals = patient_totals(folder, method, q, res)
            for protocol, t in totals.groupby("protocol", sort=False):
                stats = summary(t["a"], t["b"])
                if q != "agatston":
                    for key in ("reclassified_jacobs", "kappa_jacobs", "reclassified_standard"):
                        stats[key] = np.nan
                m = t.dropna(subset=["a", "b"])
                long = pd.concat([m.assign(scan=1, value=m["a"]), m.assign(scan=2, value=m["b"])])
                ic = icc(long, subject="patient", rater="scan", value="value")
                stats["icc_a1"] = float(ic.loc[ic["type"] == "ICC2", "icc"].iloc[0])
                rows.append({"protocol": protocol, "method": method, "quantity": q, **stats})
                for ref_q in ("agatston", q):
                    ref = clinical[ref_q][clinical[ref_q]["protocol"] == protocol]
                    if method == "clinical" and ref_q == q:
                        continue
                    r, lo, hi, n = ratio_of_means(ref.reset_index(drop=True),
                                                  t.reset_index(drop=True))
                    halving.append({"protocol": protocol, "method": method, "quantity": q,
                                    "reference": f"clinical {ref_q}", "n_pairs": n,
                                    "ratio": r, "ratio_ci_low": lo, "ratio_ci_high": hi})
    return pd.DataFrame(rows), pd.DataFrame(halving).drop_duplicates()


def run(out, n_patients, workers, points=None):
    """Run every point (resuming) and return the summary table and the per-patient totals."""
    from pvcalc.study import parse_spec, run_study

    out = Path(out)
    rows, per_patient, base = [], [], None
    for i in DEFAULT_POINTS if points is None else points:
        factor, level = POINTS[i][:2]
        folder = out / f"point_{i:02d}"
        t0 = time.perf_counter()
        run_study(parse_spec(spec_text(i, n_patients)), folder, workers=workers,
                  progress=False)
        seconds = time.perf_counter() - t0
        totals = patient_totals(folder)
        base = totals if base is None else base
        stats = summary(totals["a"], totals["b"])
        change = paired_change(base, totals) if i else (0.0, 0.0, 0.0)
        rows.append({"point": i, "factor": factor, "level": level, **stats,
                     "mean_change_pct": change[0], "mean_change_ci_low": change[1],
                     "mean_change_ci_high": change[2]})
        per_patient.append(totals.assign(point=i))
        print(f"{i:2d} {factor:16s} {level:34s} mean {stats['mean_pct']:6.1f}% "
              f"[{stats['mean_ci_low']:.1f}, {stats['mean_ci_high']:.1f}] median "
              f"{stats['median_pct']:5.1f}% reclassified {100 * stats['reclassified_jacobs']:4.1f}% "
              f"({seconds:.0f} s)", flush=True)
    return pd.DataFrame(rows), pd.concat(per_patient, ignore_index=True)


def figure(table, path):
    """Forest plot of the mean (dot) and median (cross) relative difference per point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table.iloc[::-1].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8.0, 0.32 * len(t) + 1.4))
    y = np.arange(len(t))
    ax.axvspan(61.0, 71.0, color="tab:red", alpha=0.15, label="published, non-gated (61-71%)")
    ax.axvline(t.loc[t["point"] == 0, "mean_pct"].iloc[0], color="0.5", lw=0.8, ls="--")
    ax.errorbar(t["mean_pct"], y, xerr=[t["mean_pct"] - t["mean_ci_low"],
                                        t["mean_ci_high"] - t["mean_pct"]],
                fmt="o", color="tab:blue", ms=4, capsize=2, label="mean [95% bootstrap CI]")
    ax.plot(t["median_pct"], y, "x", color="tab:orange", label="median")
    ax.set_yticks(y, [f"{f}: {lv}" for f, lv in zip(t["factor"], t["level"])], fontsize=8)
    ax.set_xlabel("relative interscan difference of the total Agatston score (%)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/interscan_sensitivity",
                        help="folder of the point studies (resumed if present)")
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--points", type=int, nargs="*",
                        help="run these points (indices into POINTS; default DEFAULT_POINTS)")
    parser.add_argument("--results", default=None,
                        help="write sensitivity.csv, per_patient.csv.gz and sensitivity.png here")
    parser.add_argument("--summarise", metavar="STUDY_DIR", default=None,
                        help="instead: per-patient tables of a finished study (e.g. the "
                             "interscan_population study) into --results")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.summarise:
        table, halving = summarise_population(args.summarise)
        folder = Path(args.results or args.summarise)
        folder.mkdir(parents=True, exist_ok=True)
        table.to_csv(folder / "patient_interscan.csv", index=False, lineterminator="\n")
        halving.to_csv(folder / "patient_halving.csv", index=False, lineterminator="\n")
        print(table.round(3).to_string(index=False))
        print(halving.round(3).to_string(index=False))
        return 0
    table, per_patient = run(args.out, args.patients, args.workers, args.points)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.results:
        folder = Path(args.results)
        folder.mkdir(parents=True, exist_ok=True)
        table.to_csv(folder / "sensitivity.csv", index=False, lineterminator="\n")
        per_patient.to_csv(folder / "per_patient.csv.gz", index=False, lineterminator="\n")
        figure(table, folder / "sensitivity.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
