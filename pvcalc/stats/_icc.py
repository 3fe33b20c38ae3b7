"""Intraclass correlation coefficients (Shrout & Fleiss 1979; McGraw & Wong 1996)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as _st

from pvcalc.stats._validate import (
    _as_groupby,
    _check_alpha,
    _check_frame,
    _groups,
    _matrix_to_long,
    _pivot_wide,
    _where,
)

__all__ = ["icc"]

_TYPES = ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
_SHROUT_FLEISS = ["ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)"]
_MCGRAW_WONG = ["ICC(1)", "ICC(A,1)", "ICC(C,1)", "ICC(k)", "ICC(A,k)", "ICC(C,k)"]
_DESCRIPTION = ["single_raters_absolute", "single_random_raters", "single_fixed_raters",
                "average_raters_absolute", "average_random_raters", "average_fixed_raters"]


def _mean_squares(y: np.ndarray):
    """Two-way ANOVA mean squares of a complete (n, k) matrix (vectorised)."""
    n, k = y.shape
    grand = y.mean()
    row = y.mean(axis=1)
    col = y.mean(axis=0)
    ss_total = np.square(y - grand).sum()
    ss_rows = k * np.square(row - grand).sum()
    ss_cols = n * np.square(col - grand).sum()
    ss_err = max(ss_total - ss_rows - ss_cols, 0.0)
    ss_within = max(ss_total - ss_rows, 0.0)
    return dict(msr=ss_rows / (n - 1), msc=ss_cols / (k - 1),
                mse=ss_err / ((n - 1) * (k - 1)), msw=ss_within / (n * (k - 1)),
                ss_total=ss_total)


def _icc_anova_table(y: np.ndarray, alpha: float) -> pd.DataFrame:
    """The six ICCs with F tests and F-based CIs from an (n, k) complete matrix."""
    n, k = y.shape
    m = _mean_squares(y)
    msr, msc, mse, msw = m["msr"], m["msc"], m["mse"], m["msw"]
    if m["ss_total"] <= 0.0:
        raise ValueError(
            "icc: all values are identical, so every variance is 0 and the ICC is "
            "undefined (0/0); check that the value column holds the measurements.")
    with np.errstate(divide="ignore", invalid="ignore"):
        icc1 = (msr - msw) / (msr + (k - 1) * msw)
        icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        icc3 = (msr - mse) / (msr + (k - 1) * mse)
        icc1k = (msr - msw) / msr
        icc2k = (msr - mse) / (msr + (msc - mse) / n)
        icc3k = (msr - mse) / msr
        f1 = msr / msw
        f3 = msr / mse
    df1 = n - 1
    df2_1 = n * (k - 1)
    df2_3 = (n - 1) * (k - 1)
    q = 1.0 - alpha / 2.0
    # One-way (case 1) and consistency (case 3): exact F intervals (S&F eq. 6-7,
    # 12-13; McGraw & Wong Table 7). Written as 1 - k/(F + k - 1) so that F = inf
    # (perfect agreement) gives the limit 1 instead of inf/inf.
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_low = f1 / _st.f.ppf(q, df1, df2_1)
        f1_up = f1 * _st.f.ppf(q, df2_1, df1)
        f3_low = f3 / _st.f.ppf(q, df1, df2_3)
        f3_up = f3 * _st.f.ppf(q, df2_3, df1)
        ci1 = (1 - k / (f1_low + k - 1), 1 - k / (f1_up + k - 1))
        ci3 = (1 - k / (f3_low + k - 1), 1 - k / (f3_up + k - 1))
        ci1k = (1 - 1 / f1_low, 1 - 1 / f1_up)
        ci3k = (1 - 1 / f3_low, 1 - 1 / f3_up)
    # Absolute agreement, random raters (case 2): Satterthwaite approximate
    # degrees of freedom v (S&F eq. 10-11; McGraw & Wong 1996 Table 7, case 2A).
    # Perfect agreement: both error mean squares vanish (up to rounding of the
    # sums of squares, relative to the between-subject mean square); the
    # Satterthwaite df is then 0/0 and the interval is the point 1.
    if mse <= 1e-12 * msr and msc <= 1e-12 * msr:
        ci2 = (1.0, 1.0)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            a = k * icc2 / (n * (1 - icc2))
            b = 1 + k * icc2 * (n - 1) / (n * (1 - icc2))
            v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1)
                                            + (b * mse) ** 2 / ((n - 1) * (k - 1)))
            f_star = _st.f.ppf(q, df1, v)
            f_2star = _st.f.ppf(q, v, df1)
            denom = k * msc + (k * n - k - n) * mse
            low = n * (msr - f_star * mse) / (f_star * denom + n * msr)
            up = n * (f_2star * msr - mse) / (denom + n * f_2star * msr)
        ci2 = (low, up)
    # Average of k raters, case 2: Spearman-Brown step-up of the single-rater
    # limits (as psych::ICC reports them).
    ci2k = tuple(c * k / (1 + (k - 1) * c) for c in ci2)
    p1 = _st.f.sf(f1, df1, df2_1) if np.isfinite(f1) else 0.0
    p3 = _st.f.sf(f3, df1, df2_3) if np.isfinite(f3) else 0.0
    return pd.DataFrame({
        "type": _TYPES,
        "shrout_fleiss": _SHROUT_FLEISS,
        "mcgraw_wong": _MCGRAW_WONG,
        "description": _DESCRIPTION,
        "icc": [icc1, icc2, icc3, icc1k, icc2k, icc3k],
        "f": [f1, f3, f3, f1, f3, f3],
        "df1": [float(df1)] * 6,
        "df2": [float(df2_1), float(df2_3), float(df2_3)] * 2,
        "p_value": [p1, p3, p3, p1, p3, p3],
        "ci_low": [ci1[0], ci2[0], ci3[0], ci1k[0], ci2k[0], ci3k[0]],
        "ci_high": [ci1[1], ci2[1], ci3[1], ci1k[1], ci2k[1], ci3k[1]],
        "n_subjects": n,
        "n_raters": k,
        "estimator": "anova",
    })


def _icc_mixed_table(sub: pd.DataFrame, subject: str, rater: str, value: str):
    """ICC(1), ICC(A,1), ICC(C,1) from REML variance components (statsmodels)."""
    import statsmodels.formula.api as smf

    d = pd.DataFrame({"y": sub[value].to_numpy(float),
                      "subject": pd.factorize(sub[subject])[0],
                      "rater": pd.factorize(sub[rater])[0], "one": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = smf.mixedlm("y ~ 1", d, groups="subject").fit(reml=True)
        two = smf.mixedlm("y ~ 1", d, groups="one", re_formula="0", use_sparse=True,
                          vc_formula={"subject": "0 + C(subject)",
                                      "rater": "0 + C(rater)"}).fit(reml=True)
    var_s1 = float(one.cov_re.iloc[0, 0])
    var_e1 = float(one.scale)
    names = list(two.model.exog_vc.names)
    var_r = float(two.vcomp[names.index("rater")])
    var_s = float(two.vcomp[names.index("subject")])
    var_e = float(two.scale)
    n = d["subject"].nunique()
    k = d["rater"].nunique()
    return pd.DataFrame({
        "type": _TYPES[:3],
        "shrout_fleiss": _SHROUT_FLEISS[:3],
        "mcgraw_wong": _MCGRAW_WONG[:3],
        "description": _DESCRIPTION[:3],
        "icc": [var_s1 / (var_s1 + var_e1), var_s / (var_s + var_r + var_e),
                var_s / (var_s + var_e)],
        "f": np.nan, "df1": np.nan, "df2": np.nan, "p_value": np.nan,
        "ci_low": np.nan, "ci_high": np.nan,
        "n_subjects": n, "n_raters": k, "estimator": "mixed",
        "var_subject": [var_s1, var_s, var_s],
        "var_rater": [0.0, var_r, var_r],
        "var_residual": [var_e1, var_e, var_e],
    })


def icc(data, *, subject: str = "subject", rater: str = "rater", value: str = "value",
        groupby=None, method: str = "anova", missing: str = "raise",
        alpha: float = 0.05) -> pd.DataFrame:
    """Intraclass correlation coefficients, psych::ICC style, one row per form.

    Parameters
    ----------
    data : pandas.DataFrame or (n_subjects, n_raters) array_like
        Long (tidy) table with one row per (subject, rater) measurement, or a
        wide matrix with subjects in rows and raters / repeats in columns.
    subject, rater, value : str
        Column names of the subject (lesion, patient), the rater (scan
        repeat, reader, method) and the measurement (any unit; the ICC is
        dimensionless). Ignored for array input.
    groupby : str or list of str, optional
        Columns that split the table; one block of rows per group.
    method : {"anova", "mixed"}
        ``"anova"``: two-way ANOVA mean squares (balanced complete data), all
        six forms with F tests and 95% CIs. ``"mixed"``: REML variance
        components from statsmodels ``MixedLM`` (subject random intercept for
        ICC(1); crossed subject and rater random effects for ICC(A,1) and
        ICC(C,1)); accepts unbalanced / missing data, gives the three
        single-measurement forms, no F test and no CI (NaN).
    missing : {"raise", "drop"}
        What ``method="anova"`` does with subjects lacking a rating: raise
        (default) or drop them (complete cases, as psych does).
    alpha : float
        Two-sided CIs at level ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        Group columns, then ``type`` (psych name: ICC1, ICC2, ICC3, ICC1k,
        ICC2k, ICC3k), ``shrout_fleiss`` (ICC(1,1) ... ICC(3,k)),
        ``mcgraw_wong`` (ICC(1), ICC(A,1), ICC(C,1), ICC(k), ICC(A,k),
        ICC(C,k)), ``description``, ``icc``, ``f``, ``df1``, ``df2``,
        ``p_value`` (H0: ICC = 0), ``ci_low``, ``ci_high``, ``n_subjects``,
        ``n_raters``, ``estimator``; for ``method="mixed"`` also
        ``var_subject``, ``var_rater``, ``var_residual``.

    Notes
    -----
    With ``n`` subjects, ``k`` raters and mean squares MSR (rows / subjects),
    MSC (columns / raters), MSE (residual) and MSW (within subjects):

    - ICC(1,1) = (MSR - MSW) / (MSR + (k-1) MSW), ICC(1,k) = (MSR - MSW) / MSR
    - ICC(2,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n),
      ICC(2,k) = (MSR - MSE) / (MSR + (MSC - MSE) / n)
    - ICC(3,1) = (MSR - MSE) / (MSR + (k-1) MSE), ICC(3,k) = (MSR - MSE) / MSR

    F = MSR / MSW (case 1) or MSR / MSE (cases 2, 3). CIs for cases 1 and 3 are
    exact F intervals; case 2 uses the Satterthwaite degrees of freedom of
    Shrout & Fleiss (1979) / McGraw & Wong (1996); the ICC(2,k) limits are the
    Spearman-Brown step-up of the ICC(2,1) limits, as in psych::ICC.

    Checked against the Shrout & Fleiss (1979) 6 x 4 example (0.1657,
    0.2898, 0.7148, 0.4428, 0.6201, 0.9093) and psych::ICC's printed F,
    p-values and CIs for it; the mixed path against the ANOVA path on
    balanced data.

    References
    ----------
    Shrout PE, Fleiss JL. Intraclass correlations: uses in assessing rater
    reliability. Psychol Bull 1979;86:420-428. doi:10.1037/0033-2909.86.2.420
    McGraw KO, Wong SP. Forming inferences about some intraclass correlation
    coefficients. Psychol Methods 1996;1:30-46. doi:10.1037/1082-989X.1.1.30

    Examples
    --------
    >>> import numpy as np
    >>> from pvcalc.stats import icc
    >>> y = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
    ...               [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    >>> icc(y)["icc"].round(4).tolist()
    [0.1657, 0.2898, 0.7148, 0.4428, 0.6201, 0.9093]
    """
    func = "icc"
    alpha = _check_alpha(alpha)
    if method not in ("anova", "mixed"):
        raise ValueError(f"icc: method must be 'anova' or 'mixed', got {method!r}.")
    if missing not in ("raise", "drop"):
        raise ValueError(f"icc: missing must be 'raise' or 'drop', got {missing!r}.")
    if not isinstance(data, pd.DataFrame):
        data = _matrix_to_long(data, func=func, columns="n_raters")
        subject, rater, value, groupby = "subject", "rater", "value", None
    groupby = _as_groupby(groupby)
    _check_frame(data, {"subject": subject, "rater": rater, "value": value,
                        "groupby": groupby}, func=func)
    tables = []
    for key, sub in _groups(data, groupby):
        mat, _, _ = _pivot_wide(sub, subject=subject, rater=rater, value=value, func=func)
        n, k = mat.shape
        complete = ~np.isnan(mat).any(axis=1)
        if k < 2:
            raise ValueError(
                f"icc: at least 2 raters / repeats are needed, got {k} distinct value(s) "
                f"of {rater!r} in group {_where(key)}.")
        if method == "anova":
            if not complete.all():
                if missing == "raise":
                    raise ValueError(
                        f"icc: {int((~complete).sum())} subject(s) in group {_where(key)} "
                        "lack a rating from some rater; the ANOVA ICC needs complete "
                        "data. Use method='mixed' (unbalanced data) or missing='drop' "
                        "(complete cases only).")
                mat = mat[complete]
            if mat.shape[0] < 2:
                raise ValueError(
                    f"icc: at least 2 subjects are needed, got {mat.shape[0]} in group "
                    f"{_where(key)}; a single subject has no between-subject variance.")
            table = _icc_anova_table(mat, alpha)
        else:
            if n < 2:
                raise ValueError(
                    f"icc: at least 2 subjects are needed, got {n} in group "
                    f"{_where(key)}; a single subject has no between-subject variance.")
            table = _icc_mixed_table(sub, subject, rater, value)
        for col, val in reversed(list(key.items())):
            table.insert(0, col, val)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
