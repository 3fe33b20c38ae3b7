"""The statistics tables of a study report, computed with :mod:`pvcalc.stats`.

Every function takes the prepared long table of :func:`prepare` (one row per
scan x lesion x method x quantity) and returns tidy DataFrames (written as CSV
beside the report). Conventions, stated again in the report itself:

- an estimate below 0 (the unclipped integrated methods give one for a faint
  or absent lesion) is used as it is (accuracy, repeatability, ICC,
  Bland-Altman, method comparisons: clipping would bias them upwards); only the
  relative interscan difference ``|A - B| / ((A + B) / 2)``, defined for
  non-negative scores, counts it as 0, "no calcium found"; ``n_clipped``
  counts these estimates;
- a quantity a method does not define (``MethodSpec.defines``, e.g. the
  Agatston score of ``integrated``, anything of ``swcs``) is left out; a NaN
  of a quantity it defines (a lesion it could not measure, with a ``reason``)
  is counted in ``n_not_measured``;
- detection rate = share of the method's own ``detected`` flags (Wilson CI);
- paired interscan statistics compare repeat 1 with repeat 2; repeatability
  and ICC use every repeat of the subjects measured on all of them;
- a subject of the interscan statistics is one lesion of one condition; a
  subject of the per-subject and risk statistics is one phantom (patient) of one
  condition, scored by the total of its lesions
  (:func:`pvcalc.study._report_subjects.subject_tables`; the risk categories by the
  total Agatston score).
"""

from __future__ import annotations

import warnings

import pandas as pd

from pvcalc import stats

__all__ = ["QUANTITY_UNITS", "SUBJECT_QUANTITIES", "accuracy_tables", "comparison_tables",
           "interscan_tables", "prepare", "strata"]

#: Quantities of the report with their unit (no true value exists for Agatston).
QUANTITY_UNITS = {"mass_mg": "mg", "volume_mm3": "mm³", "agatston": ""}
_WITH_TRUTH = ("mass_mg", "volume_mm3")
#: Quantities summed over a subject's lesions
#: (:func:`pvcalc.study._report_subjects.subject_tables`).
SUBJECT_QUANTITIES = ("agatston", "mass_mg", "volume_mm3")
_REQUIRED = ("method", "lesion", "true_volume_mm3", "true_mass_mg")
#: Descriptor columns of the results that stratify accuracy: (stratum name, column).
_DESCRIPTORS = (("size", "true_diameter_mm"), ("density", "true_density_mg_cm3"),
                ("motion", "true_peak_velocity_mm_s"))
_CONDITION_GUESS = ("phantom", "body", "heart_rate_bpm", "velocity_mm_s", "protocol")
#: Most distinct values a numeric descriptor may have before it is cut into tertiles.
_MAX_LEVELS = 8


def _require(results):
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame (pvcalc.study.read_results), got "
                        f"{type(results).__name__}")
    missing = [c for c in _REQUIRED if c not in results.columns]
    if missing and len(results):
        raise ValueError(f"results lack the columns {missing}; pass the frame of "
                         "pvcalc.study.read_results(DIR) (one row per scan x lesion x method, "
                         "with the true_* columns of the lesions' truth)")


def _condition_columns(df, spec):
    """Columns that tell conditions apart and stratify the statistics (phantom last)."""
    if spec is not None:
        cols = [c for c in spec.condition_columns if c in df.columns]
    else:
        cols = [c for c in _CONDITION_GUESS if c in df.columns and df[c].nunique() > 1]
        explained = df.groupby(cols, dropna=False).ngroups if cols else 1
        for c in sorted(c for c in df.columns if c.startswith("protocol_")):
            if df[c].nunique(dropna=False) > 1 and \
                    df.groupby([*cols, c], dropna=False).ngroups > explained:
                cols.append(c)
                explained = df.groupby(cols, dropna=False).ngroups
    # a population of patients is many subjects, not a stratum
    if "phantom" in cols and ("patient_index" in df.columns and df["patient_index"].notna().any()
                              or df["phantom"].nunique() > _MAX_LEVELS):
        cols.remove("phantom")
    cols = [c for c in cols if df[c].nunique(dropna=False) > 1]
    return [c for c in cols if c != "phantom"] + (["phantom"] if "phantom" in cols else [])


def _defined(long):
    """Per row: whether its method defines its quantity (``MethodSpec.defines``; for a
    method not in the registry: whether it gave the quantity for any lesion)."""
    from pvcalc.methods import METHODS

    finite = long.groupby(["method", "quantity"])["estimate"].transform(
        lambda e: e.notna().any())
    known = long["method"].isin(list(METHODS))
    by_registry = [q in METHODS[m].defines if m in METHODS else False
                   for m, q in zip(long["method"], long["quantity"])]
    return pd.Series(by_registry, index=long.index).where(known, finite).astype(bool)


def prepare(results, spec=None):
    """The long table of the results and the condition strata.

    Returns
    -------
    (pandas.DataFrame, list of str)
        Long table (:func:`pvcalc.evaluation.beside_truth` of the results)
        with ``value`` = the estimate, ``value_nonneg`` = the estimate clipped
        at 0 (for the relative interscan difference), ``clipped`` (estimate
        below 0), ``scan``,
        ``subject`` (condition and lesion) and ``lesion_id`` (phantom and
        lesion), rows without an estimate dropped (``not_measured`` rows are
        kept with ``value`` NaN); and the condition columns that stratify.
    """
    from pvcalc.evaluation import beside_truth

    _require(results)
    df = results.copy()
    defaults = {"repeat": 1, "condition": "all", "phantom": "phantom"}
    for column, value in defaults.items():
        if column not in df.columns:
            df[column] = value
    if "task_key" not in df.columns:
        df["task_key"] = df["condition"].astype(str) + "|r" + df["repeat"].astype(str)
    strata = _condition_columns(df, spec)
    quantities = [q for q in QUANTITY_UNITS if q in df.columns and df[q].notna().any()]
    keep = list(dict.fromkeys(["task_key", "condition", "repeat", "phantom", *strata, "lesion",
                               "method", *quantities, *_REQUIRED[2:],
                               *(c for _, c in _DESCRIPTORS if c in df.columns),
                               *(c for c in ("detected", "reason", "phantom_name")
                                 if c in df.columns)]))
    long = beside_truth(df[keep], descriptors=())
    long["repeat"] = long["repeat"].astype("int64")
    est = long["estimate"].astype(float)
    defined = _defined(long.assign(estimate=est))
    long["not_measured"] = est.isna() & defined
    long = long[est.notna() | long["not_measured"]].reset_index(drop=True)
    est = long["estimate"].astype(float)
    long["clipped"] = est < 0
    long["value"] = est
    long["value_nonneg"] = est.clip(lower=0.0)
    long["scan"] = long["task_key"].astype(str)
    long["subject"] = long["condition"].astype(str) + "|" + long["lesion"].astype(str)
    long["lesion_id"] = long["phantom"].astype(str) + "|" + long["lesion"].astype(str)
    if "detected" in long:
        long["detected"] = long["detected"].astype("boolean").fillna(False).astype(bool)
    else:
        long["detected"] = long["value"] > 0
    return long, strata


def _level_labels(values: pd.Series, unit: str) -> pd.Series:
    """Descriptor values as stratum labels: the value itself, or tertile ranges."""
    v = values.astype(float)
    if v.nunique() <= _MAX_LEVELS:
        return v.map(lambda x: f"{x:g} {unit}".strip())
    bins = pd.qcut(v, 3, duplicates="drop")
    # a lesion without the descriptor (NaN, e.g. the diameter of an ellipsoid) is "n/a"
    return bins.map(lambda iv: f"{iv.left:.3g}-{iv.right:.3g} {unit}".strip()
                    if isinstance(iv, pd.Interval) else "n/a").astype(str)


def strata(long, condition_strata):
    """(stratum name, column) pairs for accuracy, with their level columns added to ``long``."""
    out = [("all", "_all")]
    long["_all"] = "all"
    patients = "phantom_name" in long and (long["phantom_name"] == "patients").any()
    names = long["lesion"].astype(str)
    if not patients and names.nunique() <= 30 and long.groupby("lesion")["scan"].nunique().min() > 1:
        out.append(("lesion", "lesion"))
    for name, column in _DESCRIPTORS:
        if column in long and long[column].nunique() > 1:
            unit = {"size": "mm", "density": "mg/cm³", "motion": "mm/s"}[name]
            long[f"_{name}"] = _level_labels(long[column], unit)
            out.append((name, f"_{name}"))
    for column in condition_strata:
        long[f"_{column}"] = long[column].map(lambda x: f"{x:g}" if isinstance(x, float)
                                              else str(x))
        out.append((column, f"_{column}"))
    return _distinct_strata(long, out, condition_strata)


def _distinct_strata(long, pairs, condition_strata):
    """Leave out a descriptor stratum that groups the rows exactly as a condition column
    does (the true peak velocity of the motion phantom is its grid speed)."""
    conditions = [c for name, c in pairs if name in condition_strata]
    out = []
    for name, column in pairs:
        if name in dict(_DESCRIPTORS):
            # the raw values, rounded: a truth variable carries rounding noise (1e-14 mm/s)
            raw = long[dict(_DESCRIPTORS)[name]].astype(float).round(6).rename("_raw")
            n = raw.nunique(dropna=False)
            if any(long[c].nunique(dropna=False) == n
                   and long.groupby([raw, long[c]], dropna=False).ngroups == n
                   for c in conditions):
                continue
        out.append((name, column))
    return out


def _wilson(k, n):
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    return float(lo), float(hi)


def accuracy_tables(long, stratum_columns):
    """Accuracy per quantity x method x stratum level (one tidy table)."""
    rows = []
    data = long[long["quantity"].isin(_WITH_TRUTH)]
    for name, column in stratum_columns:
        for (quantity, method, level), sub in data.groupby(["quantity", "method", column],
                                                           sort=True):
            used = sub[~sub["not_measured"]]
            head = {"quantity": quantity, "method": method, "stratum": name, "level": level,
                    "n_not_measured": int(sub["not_measured"].sum()),
                    "n_clipped": int(used["clipped"].sum())}
            if len(used) < 2:
                continue
            acc = stats.accuracy(used, estimate="value", true="truth").to_dict("records")[0]
            k, n = int(used["detected"].sum()), len(used)
            lo, hi = _wilson(k, n)
            acc.update(detected=k, detection_rate=k / n, detection_rate_ci_low=lo,
                       detection_rate_ci_high=hi)
            rows.append({**head, **acc})
    return pd.DataFrame(rows)


def _complete(frame, keys, subject, repeats):
    """Rows of subjects measured on every one of ``repeats`` within their group ``keys``."""
    frame = frame[frame["repeat"].isin(repeats) & ~frame["not_measured"]]
    n = frame.groupby([*keys, subject])["repeat"].transform("nunique")
    return frame[n == len(repeats)]


def _enough(frame, keys, subject, minimum=2):
    counts = frame.groupby(keys, dropna=False)[subject].transform("nunique")
    return frame[counts >= minimum]


def interscan_tables(long, condition_strata):
    """Interscan reproducibility per quantity x method x condition stratum.

    Returns a dict: ``interscan`` (interscan_summary of repeat 1 vs 2, both-zero
    pairs excluded from the mean / median, merged with the repeatability of all
    repeats), ``per_subject`` (interscan_difference), ``icc``, ``bland_altman``;
    empty frames when fewer than two repeats exist.
    """
    keys = ["quantity", "method", *condition_strata]
    repeats = sorted(long["repeat"].unique())
    empty = {k: pd.DataFrame() for k in ("interscan", "per_subject", "icc", "bland_altman")}
    if len(repeats) < 2:
        return empty
    pair = _enough(_complete(long, keys, "subject", repeats[:2]), keys, "subject")
    every = _enough(_complete(long, keys, "subject", repeats), keys, "subject")
    if pair.empty:
        return empty
    common = {"subject": "subject", "rater": "repeat", "value": "value", "groupby": keys}
    raters = (int(repeats[0]), int(repeats[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        relative = {**common, "value": "value_nonneg"}   # defined for scores >= 0
        summary = stats.interscan_summary(pair, raters=raters, exclude_both_zero=True,
                                          **relative)
        per = stats.interscan_difference(pair, raters=raters, **relative)
        rep = stats.repeatability(every, subject="subject", value="value", groupby=keys)
        icc = stats.icc(every, **common)
        ba = stats.bland_altman(pair, raters=raters, **common)
    rep = rep.rename(columns={"n_subjects": "n_subjects_all_repeats"})
    summary = summary.merge(rep, on=keys, how="left")
    summary.insert(len(keys), "repeats_compared", f"{raters[0]} vs {raters[1]}")
    return {"interscan": summary, "per_subject": per,
            "icc": icc[icc["type"].isin(["ICC1", "ICC2", "ICC3"])].reset_index(drop=True),
            "bland_altman": ba}


def comparison_tables(long, condition_strata, per_subject):
    """Method comparisons: paired tests of absolute errors and of interscan differences,
    and a mixed model of absolute errors with the lesion as random effect.
    """
    out = {"accuracy": pd.DataFrame(), "interscan": pd.DataFrame(), "mixed": pd.DataFrame()}
    if long["method"].nunique() < 2:
        return out
    keys = ["quantity", *condition_strata]
    err = long[long["quantity"].isin(_WITH_TRUTH) & ~long["not_measured"]].copy()
    err["abs_error"] = (err["value"] - err["truth"]).abs()
    err["pair_subject"] = err["scan"] + "|" + err["lesion"].astype(str)
    frames = []
    for _, sub in err.groupby(keys, sort=True, dropna=False):
        n_methods = sub["method"].nunique()
        full = sub.groupby("pair_subject")["method"].transform("nunique") == n_methods
        if n_methods >= 2 and sub.loc[full, "pair_subject"].nunique() >= 2:
            frames.append(sub[full])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if frames:
            out["accuracy"] = stats.compare_methods(pd.concat(frames), subject="pair_subject",
                                                    value="abs_error", groupby=keys)
        if not per_subject.empty:
            d = per_subject.copy()
            drop = d.groupby([*keys, "subject"])["both_zero"].transform("any")
            d = d[~drop]
            frames = []
            for _, sub in d.groupby(keys, sort=True, dropna=False):
                n_methods = sub["method"].nunique()
                full = sub.groupby("subject")["method"].transform("nunique") == n_methods
                if n_methods >= 2 and sub.loc[full, "subject"].nunique() >= 2:
                    frames.append(sub[full])
            if frames:
                out["interscan"] = stats.compare_methods(
                    pd.concat(frames), subject="subject", value="relative_difference_pct",
                    groupby=keys)
        mixed = []
        methods = sorted(err["method"].unique())
        reference = "clinical" if "clinical" in methods else methods[0]
        for quantity, sub in err.groupby("quantity", sort=True):
            if sub["method"].nunique() >= 2 and sub["lesion_id"].nunique() >= 2:
                table = stats.compare_methods_mixed(sub, subject="lesion_id", value="abs_error",
                                                    reference=reference)
                table.insert(0, "quantity", quantity)
                mixed.append(table)
        if mixed:
            out["mixed"] = pd.concat(mixed, ignore_index=True)
    return out


def condition_table(results, condition_strata):
    """One row per condition: its strata, scans and lesions."""
    if results.empty:
        return pd.DataFrame()
    df = results.assign(condition=results.get("condition", "all"))
    cols = [c for c in ["condition", "phantom", *condition_strata, "protocol",
                        "protocol_kvp", "protocol_slice_thickness_mm", "protocol_noise_sd_hu",
                        "protocol_gated"] if c in df.columns]
    cols = list(dict.fromkeys(cols))
    scan = df["task_key"] if "task_key" in df else df["condition"].astype(str)
    g = df.assign(_scan=scan).groupby(cols, sort=False, dropna=False)
    return g.agg(n_scans=("_scan", "nunique"), n_lesions=("lesion", "nunique"),
                 methods=("method", lambda m: ", ".join(dict.fromkeys(m)))).reset_index()


def as_float(frame):
    """Nullable numeric columns as plain floats (for plotting and formatting)."""
    return frame.apply(lambda c: c.astype(float) if pd.api.types.is_numeric_dtype(c)
                       and not pd.api.types.is_bool_dtype(c) else c)

