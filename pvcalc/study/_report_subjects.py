"""Per-subject tables of a study report (private): totals per phantom and scan, risk
categories.

A subject here is one phantom (virtual patient) of one condition, scored by the
total of its lesions on each scan; the conventions are those of
:mod:`pvcalc.study._report_tables`, whose helpers these tables share.
"""

from __future__ import annotations

import warnings

import pandas as pd

from pvcalc import stats
from pvcalc.scoring import RISK_SCHEMES, risk_category
from pvcalc.study._report_tables import SUBJECT_QUANTITIES, _complete, _enough

__all__ = ["risk_tables", "subject_tables"]


def _subject_totals(long, strata_, scans):
    """Per quantity, method, subject (condition) and scan: the total of the lesions.

    Parameters
    ----------
    long : pandas.DataFrame
        The long table of :func:`pvcalc.study._report_tables.prepare`.
    strata_ : list of str
        Condition columns kept as group columns (without ``phantom``).
    scans : pandas.DataFrame or None
        :func:`pvcalc.study.read_scans`: its scans without lesions get a total
        of 0 for every (quantity, method) of ``long``.

    Returns
    -------
    pandas.DataFrame
        ``quantity``, ``method``, ``strata_``, ``condition``, ``phantom``,
        ``scan``, ``repeat``, ``n_lesions``, ``not_measured`` (a lesion of the
        scan has no value), ``clipped`` (the sum was below 0), ``total`` (the
        sum clipped at 0, in the unit of the quantity: Agatston, mg or mm³;
        NaN when not measured) and ``subject`` (the condition).
    """
    data = long[long["quantity"].isin(SUBJECT_QUANTITIES)]
    keys = ["quantity", "method", *strata_, "condition", "phantom", "scan", "repeat"]
    g = data.groupby(keys, dropna=False, sort=True)
    totals = pd.DataFrame({"n_lesions": g.size(), "not_measured": g["not_measured"].any(),
                           "raw": g["value"].sum()}).reset_index()
    raw = totals.pop("raw").where(~totals["not_measured"])
    totals["clipped"] = raw < 0
    totals["total"] = raw.clip(lower=0.0)
    if scans is not None and len(scans) and "n_lesions" in scans and len(totals):
        empty_scans = scans[(scans["n_lesions"] == 0)
                            & ~scans["task_key"].astype(str).isin(set(long["scan"]))]
        cols = [c for c in ["condition", "phantom", *strata_, "repeat"] if c in empty_scans]
        base = empty_scans[cols].assign(scan=empty_scans["task_key"].astype(str), n_lesions=0,
                                        not_measured=False, clipped=False, total=0.0)
        zero = [base.assign(quantity=q, method=m)
                for q, m in dict.fromkeys(zip(totals["quantity"], totals["method"]))]
        if len(empty_scans):
            totals = pd.concat([totals, *zero], ignore_index=True)[totals.columns]
            totals["repeat"] = totals["repeat"].astype("int64")
            totals = totals.sort_values(["quantity", "method", *strata_, "condition", "scan"],
                                        kind="stable", ignore_index=True)
    totals["subject"] = totals["condition"].astype(str)
    return totals


def subject_tables(long, condition_strata, scans=None):
    """Interscan statistics of per-subject totals, per quantity x method x condition stratum.

    A subject is one phantom (virtual patient) of one condition; its total on a
    scan is the sum of its lesions' values of one quantity (Agatston score,
    mass in mg, volume in mm³), for each quantity of :data:`SUBJECT_QUANTITIES`
    the method gives. A total below 0 (unclipped integrated methods on faint
    lesions) counts as 0, "no calcium found", in every statistic here. A scan
    on which a lesion of the method could not be measured has no total, and
    its subject is counted as not measured. ``scans``
    (:func:`pvcalc.study.read_scans`) adds the scans without lesions (a virtual
    patient without calcium) with a total of 0 for every method and quantity.
    The strata are ``condition_strata`` without ``phantom`` (the phantoms are
    the subjects); a group needs at least 2 subjects measured on repeats 1 and 2.

    Parameters
    ----------
    long : pandas.DataFrame
        The long table of :func:`pvcalc.study._report_tables.prepare`.
    condition_strata : list of str
        Condition columns that stratify (the second output of
        :func:`~pvcalc.study._report_tables.prepare`).
    scans : pandas.DataFrame, optional
        One row per completed scan with ``task_key`` and ``n_lesions``.

    Returns
    -------
    dict of pandas.DataFrame
        ``totals``: one row per quantity, method, subject and scan, with
        ``n_lesions``, ``not_measured``, ``clipped`` (the sum was below 0) and
        ``total`` (the unit of the quantity; NaN when not measured).
        ``interscan``: :func:`pvcalc.stats.interscan_summary` of the totals,
        repeat 1 vs 2, subjects with a total of 0 on both scans left out of the
        mean and median and counted in ``n_both_zero`` (as in published
        repeat-scan studies of patients), plus ``repeats_compared``,
        ``n_not_measured`` (subjects without a total on repeat 1 or 2) and
        ``n_clipped`` (totals of the paired subjects below 0, counted as 0).
        ``icc``: the ICC2 row (ICC(A,1), two-way random, absolute agreement,
        with ``ci_low`` / ``ci_high``) of :func:`pvcalc.stats.icc` of the
        totals of repeats 1 and 2, both-zero subjects included.
        Frames are empty where nothing applies (one repeat, one subject per group).

    Notes
    -----
    Relative difference per subject: ``|A - B| / ((A + B) / 2) x 100`` (%), as in
    ``validation/interscan_sensitivity.py`` (``patient_totals``, ``summary``).
    Checked against hand computation in ``tests/test_report_subjects.py``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [{"condition": p, "phantom": p, "repeat": r, "lesion": "l0",
    ...          "method": "clinical", "agatston": a, "mass_mg": a / 4, "volume_mm3": a / 2,
    ...          "true_mass_mg": 1.0, "true_volume_mm3": 1.0}
    ...         for p, pair in {"p0": (30.0, 40.0), "p1": (100.0, 50.0)}.items()
    ...         for r, a in zip((1, 2), pair)]
    >>> from pvcalc.study._report_tables import prepare
    >>> long, strata = prepare(pd.DataFrame(rows))
    >>> inter = subject_tables(long, strata)["interscan"]
    >>> inter[["quantity", "n_subjects", "mean_relative_difference_pct"]].round(2).values.tolist()
    [['agatston', 2, 47.62], ['mass_mg', 2, 47.62], ['volume_mm3', 2, 47.62]]
    """
    out = {k: pd.DataFrame() for k in ("totals", "interscan", "icc")}
    strata_ = [c for c in condition_strata if c != "phantom"]
    keys = ["quantity", "method", *strata_]
    repeats = sorted(long["repeat"].unique())
    if len(repeats) < 2:
        return out
    totals = _subject_totals(long, strata_, scans)
    out["totals"] = totals
    pair = _enough(_complete(totals, keys, "subject", repeats[:2]), keys, "subject")
    if pair.empty:
        return out
    raters = (int(repeats[0]), int(repeats[1]))
    common = {"subject": "subject", "rater": "repeat", "value": "total", "groupby": keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        inter = stats.interscan_summary(pair, raters=raters, exclude_both_zero=True, **common)
        icc = stats.icc(pair, **common)
    inter.insert(len(keys), "repeats_compared", f"{raters[0]} vs {raters[1]}")
    scanned = totals[totals["repeat"].isin(repeats[:2])]
    counts = pd.DataFrame({
        "n_not_measured": scanned[scanned["not_measured"]].groupby(keys, dropna=False)
        ["subject"].nunique(),
        "n_clipped": pair.groupby(keys, dropna=False)["clipped"].sum()}).reset_index()
    inter = inter.merge(counts, on=keys, how="left")
    for c in ("n_not_measured", "n_clipped"):
        inter[c] = inter[c].fillna(0).astype("int64")
    out["interscan"] = inter
    out["icc"] = icc[icc["type"] == "ICC2"].reset_index(drop=True)
    return out


def risk_tables(long, condition_strata, scans=None, scheme="standard"):
    """Risk categories of per-subject total Agatston scores, repeat 1 vs 2.

    A subject is one phantom of one condition, scored by its total Agatston
    score as :func:`subject_tables` sums it (scans with a lesion not measured
    left out; ``scans``, :func:`pvcalc.study.read_scans`, adds the scans without
    lesions, a virtual patient of category 0, with a total of 0 for every
    method); computed where a method gives Agatston scores and a group has at
    least 2 subjects with both repeats. Returns ``totals`` (per subject, method
    and repeat), ``kappa`` (linearly weighted), ``reclassification`` and
    ``transitions``; empty frames otherwise.
    """
    empty = {k: pd.DataFrame() for k in ("totals", "kappa", "reclassification", "transitions")}
    strata_ = [c for c in condition_strata if c != "phantom"]
    keys = ["method", *strata_]
    repeats = sorted(long["repeat"].unique())
    if len(repeats) < 2:
        return empty
    totals = _subject_totals(long[long["quantity"] == "agatston"], strata_, scans)
    if totals.empty:
        return empty
    totals = totals[~totals["not_measured"]].rename(columns={"total": "total_agatston"})
    totals = totals[[*keys, "condition", "phantom", "scan", "repeat", "total_agatston"]]
    if totals.empty:
        return empty
    labels = RISK_SCHEMES[scheme][0]
    totals["risk_category"] = pd.Categorical(risk_category(totals["total_agatston"].to_numpy(),
                                                           scheme), categories=labels,
                                             ordered=True)
    totals["subject"] = totals["condition"].astype(str)
    totals["not_measured"] = False
    pair = _enough(_complete(totals, keys, "subject", repeats[:2]), keys, "subject")
    totals = totals.drop(columns=["not_measured"]).reset_index(drop=True)
    if pair.empty:
        return {**empty, "totals": totals}
    common = {"subject": "subject", "rater": "repeat", "value": "risk_category", "groupby": keys,
              "raters": (int(repeats[0]), int(repeats[1])), "categories": list(labels)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kap = stats.weighted_kappa(pair, weights="linear", **common)
        rec = stats.reclassification(pair, **common)
        trans = stats.transition_table(pair, **common)
    return {"totals": totals, "kappa": kap, "reclassification": rec, "transitions": trans}
