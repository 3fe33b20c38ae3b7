"""Interscan (test-retest) difference and within-subject repeatability."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _st

from pvcalc.stats._validate import (
    _as_groupby,
    _check_alpha,
    _check_frame,
    _finite_values,
    _groups,
    _matrix_to_long,
    _pairs,
    _where,
)

__all__ = ["interscan_difference", "interscan_summary", "repeatability"]


def _relative_difference_pct(a: np.ndarray, b: np.ndarray):
    """|a - b| / ((a + b) / 2) * 100, with both-zero pairs defined as 0."""
    mean = 0.5 * (a + b)
    both_zero = mean == 0.0  # a, b >= 0, so mean 0 <=> both 0
    rel = np.zeros_like(mean)
    np.divide(np.abs(a - b), mean, out=rel, where=~both_zero)
    return rel * 100.0, both_zero


def interscan_difference(data, b=None, *, subject: str = "subject",
                         rater: str = "rater", value: str = "value", groupby=None,
                         raters=None) -> pd.DataFrame:
    """Per-subject relative interscan difference between two scans.

    Parameters
    ----------
    data : pandas.DataFrame or array_like
        Long table, one row per (subject, scan) with the scan label in
        ``rater``; or the first scan's values ``a`` (1-D array).
    b : array_like, optional
        Second scan's values when ``data`` is an array (same length).
    subject, rater, value : str
        Column names: subject (lesion / patient), scan label (repeat), and a
        non-negative score (Agatston, volume in mm3, mass in mg).
    groupby : str or list of str, optional
        Columns (method, protocol, ...) evaluated separately.
    raters : (str, str), optional
        The two scan labels to compare (default: the only two present).

    Returns
    -------
    pandas.DataFrame
        One row per subject (and group): group columns, ``subject``,
        ``value_a``, ``value_b``, ``mean_value``, ``abs_difference``,
        ``relative_difference_pct`` and ``both_zero`` (bool).

    Notes
    -----
    relative_difference_pct = |A - B| / ((A + B) / 2) x 100. It is symmetric in
    A and B, scale invariant, and 0 for identical scans. When A = B = 0 the
    ratio is 0/0; such pairs are defined as 0 (perfect agreement: both scans
    find no calcium) and flagged in ``both_zero`` so they can be excluded
    (:func:`interscan_summary` counts them). Negative scores are rejected.

    Checked against hand computation and the symmetry / scale / identity
    properties (tests).

    Examples
    --------
    >>> from pvcalc.stats import interscan_difference
    >>> interscan_difference([100.0, 0.0], [80.0, 0.0])["relative_difference_pct"].tolist()
    [22.22222222222222, 0.0]
    """
    func = "interscan_difference"
    rows = []
    for key, a, bb, labels, _ in _pairs(data, b, subject=subject, rater=rater,
                                        value=value, groupby=groupby, raters=raters,
                                        func=func, value_kw={"nonnegative": True}):
        rel, both_zero = _relative_difference_pct(a, bb)
        frame = pd.DataFrame({"subject": np.asarray(labels), "value_a": a, "value_b": bb,
                              "mean_value": 0.5 * (a + bb),
                              "abs_difference": np.abs(a - bb),
                              "relative_difference_pct": rel, "both_zero": both_zero})
        for col, val in reversed(list(key.items())):
            frame.insert(0, col, val)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def _median_ci(x: np.ndarray, alpha: float):
    """Distribution-free CI of the median from binomial order statistics."""
    n = x.size
    xs = np.sort(x)
    # x_(l) .. x_(n-l+1) covers the median with probability 1 - 2 P(Bin <= l-1)
    lo = int(_st.binom.ppf(alpha / 2, n, 0.5))
    if lo < 1:
        return np.nan, np.nan
    return xs[lo - 1], xs[n - lo]


def interscan_summary(data, b=None, *, subject: str = "subject", rater: str = "rater",
                      value: str = "value", groupby=None, raters=None,
                      exclude_both_zero: bool = False,
                      alpha: float = 0.05) -> pd.DataFrame:
    """Mean and median relative interscan difference, one row per group.

    Parameters
    ----------
    data, b, subject, rater, value, groupby, raters
        As in :func:`interscan_difference`.
    exclude_both_zero : bool
        If True, pairs with A = B = 0 are left out of the mean / median
        (they are still counted in ``n_both_zero``). Default False: they
        enter as 0 % difference.
    alpha : float
        CIs at level 1 - alpha.

    Returns
    -------
    pandas.DataFrame
        Group columns, ``n_subjects`` (pairs used), ``n_both_zero``,
        ``mean_relative_difference_pct`` with ``mean_ci_low`` /
        ``mean_ci_high`` (t interval), ``median_relative_difference_pct``
        with ``median_ci_low`` / ``median_ci_high`` (binomial order-statistic
        interval, NaN when n is too small), ``sd_relative_difference_pct``
        (ddof=1), ``mean_abs_difference``.

    Notes
    -----
    The per-pair quantity is defined in :func:`interscan_difference`.
    Checked against hand computation (tests).

    Examples
    --------
    >>> from pvcalc.stats import interscan_summary
    >>> s = interscan_summary([100.0, 50.0, 0.0], [80.0, 50.0, 0.0])
    >>> int(s["n_both_zero"][0]), float(s["mean_relative_difference_pct"][0])
    (1, 7.407407407407407)
    """
    alpha = _check_alpha(alpha)
    per = interscan_difference(data, b, subject=subject, rater=rater, value=value,
                               groupby=groupby, raters=raters)
    gcols = _as_groupby(groupby) if isinstance(data, pd.DataFrame) else []
    out = []
    for key, sub in _groups(per, gcols):
        n_zero = int(sub["both_zero"].sum())
        use = sub[~sub["both_zero"]] if exclude_both_zero else sub
        x = use["relative_difference_pct"].to_numpy()
        n = x.size
        row = dict(key)
        row["n_subjects"] = n
        row["n_both_zero"] = n_zero
        if n >= 2:
            mean = x.mean()
            sd = x.std(ddof=1)
            half = _st.t.ppf(1 - alpha / 2, n - 1) * sd / np.sqrt(n)
            med_lo, med_hi = _median_ci(x, alpha)
        else:
            mean = x.mean() if n else np.nan
            sd = half = med_lo = med_hi = np.nan
        row.update(mean_relative_difference_pct=mean, mean_ci_low=mean - half,
                   mean_ci_high=mean + half,
                   median_relative_difference_pct=np.median(x) if n else np.nan,
                   median_ci_low=med_lo, median_ci_high=med_hi,
                   sd_relative_difference_pct=sd,
                   mean_abs_difference=use["abs_difference"].mean())
        out.append(row)
    return pd.DataFrame(out)


def repeatability(data, *, subject: str = "subject", value: str = "value",
                  groupby=None, alpha: float = 0.05) -> pd.DataFrame:
    """Within-subject SD and repeatability coefficient, one row per group.

    Parameters
    ----------
    data : pandas.DataFrame or (n_subjects, n_repeats) array_like
        Long table with one row per measurement (any number of repeats per
        subject, unbalanced allowed), or a complete wide matrix.
    subject, value : str
        Column names of the subject and the measurement (the result has the
        measurement's unit).
    groupby : str or list of str, optional
        Columns evaluated separately.
    alpha : float
        CIs at level 1 - alpha.

    Returns
    -------
    pandas.DataFrame
        Group columns, ``n_subjects``, ``n_measurements``, ``df``
        (N - n), ``within_subject_sd`` with ``within_subject_sd_ci_low`` /
        ``_ci_high``, ``repeatability_coefficient`` with
        ``repeatability_coefficient_ci_low`` / ``_ci_high``, ``mean_value``.

    Notes
    -----
    One-way ANOVA residual: s_w^2 = sum_i sum_j (y_ij - ybar_i)^2 / (N - n)
    with N measurements on n subjects (subjects measured once add nothing).
    CI: df s_w^2 / s^2 ~ chi2(df), so s_w in
    [sqrt(df s_w^2 / chi2_{1-alpha/2}), sqrt(df s_w^2 / chi2_{alpha/2})].
    Repeatability coefficient RC = z_{1-alpha/2} sqrt(2) s_w: the difference
    between two measurements of the same subject is below RC for 95 % of
    pairs. For alpha = 0.05, z sqrt(2) = 1.95996 x 1.41421 = 2.7718, usually
    rounded to 2.77 (Bland & Altman 1996); the unrounded constant is used.

    Checked against a direct loop computation and, for two repeats, against
    s_w^2 = sum(d^2) / (2 n) (tests).

    References
    ----------
    Bland JM, Altman DG. Measurement error. BMJ 1996;313:744.
    doi:10.1136/bmj.313.7059.744

    Examples
    --------
    >>> from pvcalc.stats import repeatability
    >>> r = repeatability([[10.0, 12.0], [20.0, 19.0], [5.0, 5.0]])
    >>> round(float(r["within_subject_sd"][0]), 4)
    0.9129
    """
    func = "repeatability"
    alpha = _check_alpha(alpha)
    if not isinstance(data, pd.DataFrame):
        data = _matrix_to_long(data, func=func, columns="n_repeats")
        subject, value, groupby = "subject", "value", None
    groupby = _as_groupby(groupby)
    _check_frame(data, {"subject": subject, "value": value, "groupby": groupby},
                 func=func)
    z = _st.norm.ppf(1 - alpha / 2) * np.sqrt(2.0)
    out = []
    for key, sub in _groups(data, groupby):
        y = _finite_values(sub[value].to_numpy(), name=f"column {value!r}", func=func)
        codes, labels = pd.factorize(sub[subject])
        n = len(labels)
        counts = np.bincount(codes, minlength=n)
        means = np.bincount(codes, weights=y, minlength=n) / counts
        ss = float(np.square(y - means[codes]).sum())
        df = y.size - n
        if n < 2 or df < 1:
            raise ValueError(
                f"repeatability: at least 2 subjects and one repeated measurement are "
                f"needed, got {n} subject(s) with {y.size} measurement(s) in group "
                f"{_where(key)}; the within-subject SD needs repeated measurements of "
                "several subjects.")
        sw = np.sqrt(ss / df)
        lo = np.sqrt(ss / _st.chi2.ppf(1 - alpha / 2, df))
        hi = np.sqrt(ss / _st.chi2.ppf(alpha / 2, df))
        row = dict(key)
        row.update(n_subjects=n, n_measurements=int(y.size), df=int(df),
                   within_subject_sd=sw, within_subject_sd_ci_low=lo,
                   within_subject_sd_ci_high=hi, repeatability_coefficient=z * sw,
                   repeatability_coefficient_ci_low=z * lo,
                   repeatability_coefficient_ci_high=z * hi, mean_value=y.mean())
        out.append(row)
    return pd.DataFrame(out)
