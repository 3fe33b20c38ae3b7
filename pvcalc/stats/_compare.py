"""Paired comparison of methods and a linear mixed model (statsmodels)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats as _st

from pvcalc.stats._validate import (
    _as_groupby,
    _check_alpha,
    _check_frame,
    _finite_values,
    _groups,
    _pairs,
    _where,
)

__all__ = ["compare_methods", "compare_methods_mixed"]


def compare_methods(data: pd.DataFrame, *, subject: str = "subject",
                    method: str = "method", value: str = "value", groupby=None,
                    pairs=None, alpha: float = 0.05) -> pd.DataFrame:
    """Paired t test and Wilcoxon signed-rank test for every pair of methods.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table with one row per (subject, method): ``value`` is what is
        compared, typically an absolute error |estimate - truth| or an
        interscan difference, computed per lesion beforehand.
    subject, method, value : str
        Column names of the paired unit (lesion), the method and the value.
    groupby : str or list of str, optional
        Strata tested separately (size, protocol...).
    pairs : list of (str, str), optional
        Method pairs to test; default all pairs (sorted labels).
    alpha : float
        CI level 1 - alpha for the mean difference.

    Returns
    -------
    pandas.DataFrame
        Group columns, ``method_a``, ``method_b``, ``n_subjects``, ``mean_a``,
        ``mean_b``, ``mean_difference`` (a - b) with ``ci_low`` / ``ci_high``
        (t), ``median_difference``, ``t_statistic``, ``t_p_value``,
        ``wilcoxon_statistic``, ``wilcoxon_p_value`` (two-sided; NaN when all
        differences are 0), and ``t_p_value_holm`` / ``wilcoxon_p_value_holm``
        (Holm-adjusted over the pairs of the group).

    Notes
    -----
    ``scipy.stats.ttest_rel`` and ``scipy.stats.wilcoxon`` (zero
    differences dropped, "wilcox" zero method) on the per-subject paired
    values; Holm adjustment by ``statsmodels.stats.multitest.multipletests``.
    Checked against direct scipy calls (tests).

    Examples
    --------
    >>> import pandas as pd
    >>> from pvcalc.stats import compare_methods
    >>> df = pd.DataFrame({"lesion": [1, 2, 3, 4] * 2, "method": ["a"] * 4 + ["b"] * 4,
    ...                    "abs_error": [1.0, 2.0, 3.0, 4.0, 0.5, 1.0, 2.5, 2.0]})
    >>> r = compare_methods(df, subject="lesion", value="abs_error")
    >>> float(r["mean_difference"][0])
    1.0
    """
    from statsmodels.stats.multitest import multipletests

    func = "compare_methods"
    alpha = _check_alpha(alpha)
    groupby = _as_groupby(groupby)
    _check_frame(data, {"subject": subject, "method": method, "value": value,
                        "groupby": groupby}, func=func)
    out = []
    for key, sub in _groups(data, groupby):
        labels = sorted(pd.unique(sub[method]), key=str)
        use = list(pairs) if pairs is not None else list(itertools.combinations(labels, 2))
        if not use:
            raise ValueError(
                f"{func}: need at least 2 methods in group {_where(key)}, got {labels!r}.")
        rows = []
        for pair in use:
            (_, a, b, _, _), = _pairs(sub, None, subject=subject, rater=method,
                                      value=value, groupby=None, raters=tuple(pair),
                                      func=func)
            d = a - b
            n = d.size
            t_crit = _st.t.ppf(1 - alpha / 2, n - 1)
            half = t_crit * d.std(ddof=1) / np.sqrt(n)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_res = _st.ttest_rel(a, b)
                if np.all(d == 0):
                    w_stat, w_p = np.nan, np.nan
                else:
                    w = _st.wilcoxon(a, b)
                    w_stat, w_p = float(w.statistic), float(w.pvalue)
            row = dict(key)
            row.update(method_a=pair[0], method_b=pair[1], n_subjects=n, mean_a=a.mean(),
                       mean_b=b.mean(), mean_difference=d.mean(),
                       ci_low=d.mean() - half, ci_high=d.mean() + half,
                       median_difference=float(np.median(d)),
                       t_statistic=float(t_res.statistic), t_p_value=float(t_res.pvalue),
                       wilcoxon_statistic=w_stat, wilcoxon_p_value=w_p)
            rows.append(row)
        for col in ("t_p_value", "wilcoxon_p_value"):
            p = np.array([r[col] for r in rows], dtype=float)
            adj = np.full_like(p, np.nan)
            ok = np.isfinite(p)
            if ok.any():
                adj[ok] = multipletests(p[ok], method="holm")[1]
            for r, v in zip(rows, adj):
                r[col + "_holm"] = float(v)
        out.extend(rows)
    return pd.DataFrame(out)


def compare_methods_mixed(data: pd.DataFrame, *, subject: str = "subject",
                          method: str = "method", value: str = "value",
                          stratum=None, reference=None,
                          alpha: float = 0.05) -> pd.DataFrame:
    """Linear mixed model value ~ method x stratum with a random subject intercept.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per (subject, method[, scan]); unbalanced is fine.
    subject, method, value : str
        Column names: random-effect grouping (lesion), fixed factor (method),
        response (e.g. absolute error in mg).
    stratum : str, optional
        Second fixed factor (size class, protocol...) crossed with method;
        None fits value ~ method.
    reference : str, optional
        Reference level of the method factor (default: first sorted label).
    alpha : float
        Wald CI level 1 - alpha.

    Returns
    -------
    pandas.DataFrame
        One row per fixed-effect term plus one for the subject variance:
        ``term`` (patsy names, e.g. ``C(method)[T.b]``, ``C(method)[T.b]:
        C(stratum)[T.5]``; ``subject_variance``), ``estimate``,
        ``std_error``, ``z``, ``p_value``, ``ci_low``, ``ci_high``,
        ``n_observations``, ``n_subjects``, ``converged``.

    Notes
    -----
    Fitted by REML with ``statsmodels.formula.api.mixedlm("value ~
    C(method) * C(stratum)", groups=subject)``; z, p and CIs are Wald
    statistics from statsmodels. Checked against a direct statsmodels fit
    (tests).

    References
    ----------
    Seabold S, Perktold J. statsmodels: econometric and statistical modeling
    with python. Proc 9th Python in Science Conf, 2010.
    doi:10.25080/Majora-92bf1922-011

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from pvcalc.stats import compare_methods_mixed
    >>> rng = np.random.default_rng(0)
    >>> lesion = np.repeat(np.arange(30), 2)
    >>> meth = np.tile(["a", "b"], 30)
    >>> y = rng.normal(size=30)[lesion] + (meth == "b") * 2.0 + rng.normal(0, .1, 60)
    >>> df = pd.DataFrame({"lesion": lesion, "method": meth, "err": y})
    >>> t = compare_methods_mixed(df, subject="lesion", value="err")
    >>> bool(abs(t.set_index("term").loc["C(method)[T.b]", "estimate"] - 2) < 0.1)
    True
    """
    import statsmodels.formula.api as smf

    func = "compare_methods_mixed"
    alpha = _check_alpha(alpha)
    _check_frame(data, {"subject": subject, "method": method, "value": value,
                        "stratum": stratum}, func=func)
    y = _finite_values(data[value].to_numpy(), name=f"column {value!r}", func=func)
    d = pd.DataFrame({"y": y, "subject": data[subject].to_numpy(),
                      "method": data[method].astype(str).to_numpy()})
    levels = sorted(d["method"].unique())
    if len(levels) < 2:
        raise ValueError(f"{func}: need at least 2 methods, got {levels!r}.")
    if d["subject"].nunique() < 2:
        raise ValueError(f"{func}: need at least 2 subjects, got {d['subject'].nunique()}.")
    if reference is not None:
        if str(reference) not in levels:
            raise ValueError(f"{func}: reference {reference!r} is not a method; methods "
                             f"are {levels!r}.")
        levels = [str(reference)] + [m for m in levels if m != str(reference)]
    d["method"] = pd.Categorical(d["method"], categories=levels)
    formula = "y ~ C(method)"
    if stratum is not None:
        d["stratum"] = data[stratum].to_numpy()
        formula = "y ~ C(method) * C(stratum)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = smf.mixedlm(formula, d, groups="subject").fit(reml=True)
    fe = res.fe_params
    se = res.bse_fe
    z = fe / se
    crit = _st.norm.ppf(1 - alpha / 2)
    table = pd.DataFrame({"term": list(fe.index), "estimate": fe.to_numpy(),
                          "std_error": se.to_numpy(), "z": z.to_numpy(),
                          "p_value": 2 * _st.norm.sf(np.abs(z.to_numpy())),
                          "ci_low": (fe - crit * se).to_numpy(),
                          "ci_high": (fe + crit * se).to_numpy()})
    var_row = pd.DataFrame({"term": ["subject_variance"],
                            "estimate": [float(res.cov_re.iloc[0, 0])],
                            "std_error": [np.nan], "z": [np.nan], "p_value": [np.nan],
                            "ci_low": [np.nan], "ci_high": [np.nan]})
    table = pd.concat([table, var_row], ignore_index=True)
    table["n_observations"] = len(d)
    table["n_subjects"] = d["subject"].nunique()
    table["converged"] = bool(res.converged)
    return table
