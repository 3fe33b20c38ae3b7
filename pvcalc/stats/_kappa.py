"""Cohen's kappa (statsmodels), risk-category reclassification and transitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _st

from pvcalc.stats._validate import _check_alpha, _pairs

__all__ = ["kappa", "weighted_kappa", "reclassification", "transition_table"]

_WEIGHTS = ("none", "linear", "quadratic")


def _categories(a, b, categories, data, value):
    if categories is not None:
        cats = list(categories)
        if len(set(cats)) != len(cats):
            raise ValueError(f"categories must be distinct, got {cats!r}.")
    elif (isinstance(data, pd.DataFrame) and isinstance(data[value].dtype, pd.CategoricalDtype)):
        cats = list(data[value].cat.categories)
    else:
        seen = pd.unique(np.concatenate([a, b]))
        try:
            cats = sorted(seen)
        except TypeError:
            cats = sorted(seen, key=str)
    index = {c: i for i, c in enumerate(cats)}
    unknown = [x for x in pd.unique(np.concatenate([a, b])) if x not in index]
    if unknown:
        raise ValueError(
            f"ratings contain {unknown[:5]!r}, not in categories {cats!r}; add them to "
            "categories= (in their order) or recode the ratings.")
    ia = np.fromiter((index[x] for x in a), dtype=np.int64, count=len(a))
    ib = np.fromiter((index[x] for x in b), dtype=np.int64, count=len(b))
    return cats, ia, ib


def _table(ia, ib, n_cat):
    return np.bincount(ia * n_cat + ib, minlength=n_cat * n_cat).reshape(n_cat, n_cat)


def kappa(data, b=None, *, subject: str = "subject", rater: str = "rater",
          value: str = "value", groupby=None, raters=None, categories=None,
          weights=("none", "linear", "quadratic"), alpha: float = 0.05) -> pd.DataFrame:
    """Cohen's kappa between two ratings, unweighted and weighted.

    Parameters
    ----------
    data : pandas.DataFrame or array_like
        Long table with one row per (subject, rater) holding a category
        label, or the first rater's labels ``a`` (1-D).
    b : array_like, optional
        Second rater's labels when ``data`` is an array.
    subject, rater, value : str
        Column names (value holds category labels, e.g. risk categories).
    groupby, raters
        As in :func:`pvcalc.stats.bland_altman`.
    categories : sequence, optional
        All categories in their order (matters for weighted kappa).
        Default: the categories of an ordered ``pandas.Categorical`` value
        column, else the sorted observed labels.
    weights : str or sequence of {"none", "linear", "quadratic"}
        Which weightings to report; one row each.
    alpha : float
        CI level 1 - alpha.

    Returns
    -------
    pandas.DataFrame
        Group columns, ``weights``, ``n_subjects``, ``n_categories``,
        ``observed_agreement`` (share on the diagonal), ``kappa``,
        ``std_error``, ``ci_low``, ``ci_high`` (kappa -/+ z_{1-alpha/2} SE,
        identical to statsmodels' ``kappa_low`` / ``kappa_upp`` at alpha =
        0.05), ``z``
        (kappa / SE under H0: kappa = 0) and ``p_value`` (two-sided).

    Notes
    -----
    kappa_w = 1 - sum(w_ij p_ij) / sum(w_ij p_i. p_.j) with disagreement
    weights w_ij = 0 (i = j) / 1 (unweighted), |i - j| (linear) or
    (i - j)^2 (quadratic). Computed by
    ``statsmodels.stats.inter_rater.cohens_kappa`` (Fleiss, Cohen & Everitt
    1969 variances).

    Checked against statsmodels directly, a hand computation, and the
    published irr::kappa2 outputs for two example tables (unweighted 0.429,
    z = 5.46; linear "equal" weights 0.316, z = 5.38).

    References
    ----------
    Cohen J. Weighted kappa. Psychol Bull 1968;70:213-220. doi:10.1037/h0026256

    Examples
    --------
    >>> from pvcalc.stats import kappa
    >>> r = kappa([0, 1, 2, 2, 1], [0, 1, 2, 1, 1], weights="none")
    >>> round(float(r["kappa"][0]), 4)
    0.6875
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    func = "kappa"
    alpha = _check_alpha(alpha)
    if isinstance(weights, str):
        weights = (weights,)
    for w in weights:
        if w not in _WEIGHTS:
            raise ValueError(f"kappa: weights must be among {_WEIGHTS}, got {w!r}.")
    rows = []
    for key, a, bb, _, pair in _pairs(data, b, subject=subject, rater=rater, value=value,
                                      groupby=groupby, raters=raters, func=func,
                                      categorical=True):
        cats, ia, ib = _categories(a, bb, categories, data, value)
        n_cat = len(cats)
        if n_cat < 2:
            raise ValueError(
                f"kappa: at least 2 categories are needed, got {cats!r}; pass "
                "categories= listing every possible category.")
        table = _table(ia, ib, n_cat)
        for w in weights:
            res = cohens_kappa(table, wt=None if w == "none" else w)
            half = _st.norm.ppf(1 - alpha / 2) * float(res.std_kappa)
            row = dict(key)
            row.update(rater_a=pair[0], rater_b=pair[1], weights=w, n_subjects=len(a),
                       n_categories=n_cat,
                       observed_agreement=float(np.trace(table)) / len(a),
                       kappa=float(res.kappa), std_error=float(res.std_kappa),
                       ci_low=float(res.kappa) - half, ci_high=float(res.kappa) + half,
                       z=float(res.z_value), p_value=float(res.pvalue_two_sided))
            rows.append(row)
    return pd.DataFrame(rows)


def weighted_kappa(data, b=None, *, weights: str = "linear", **kwargs) -> pd.DataFrame:
    """Linearly (default) or quadratically weighted Cohen's kappa.

    Shorthand for :func:`kappa` with one weighting; same parameters.

    Examples
    --------
    >>> from pvcalc.stats import weighted_kappa
    >>> round(float(weighted_kappa([0, 1, 2, 3], [0, 1, 3, 3])["kappa"][0]), 4)
    0.8182
    """
    return kappa(data, b, weights=weights, **kwargs)


def reclassification(data, b=None, *, subject: str = "subject", rater: str = "rater",
                     value: str = "value", groupby=None, raters=None, categories=None,
                     alpha: float = 0.05) -> pd.DataFrame:
    """Share of subjects whose (ordered) category differs between A and B.

    Parameters
    ----------
    data, b, subject, rater, value, groupby, raters, categories
        As in :func:`kappa`; categories are ordered lowest to highest.
    alpha : float
        Wilson score CI level 1 - alpha.

    Returns
    -------
    pandas.DataFrame
        Group columns, ``rater_a``, ``rater_b``, ``n_subjects``,
        ``n_reclassified``, ``reclassified_share`` with ``ci_low`` /
        ``ci_high`` (Wilson score interval), ``n_up`` (B in a higher category
        than A), ``n_down``, ``n_more_than_one_category``.

    Notes
    -----
    reclassified_share = #(cat_A != cat_B) / n. Checked against hand counts
    (tests).

    Examples
    --------
    >>> from pvcalc.stats import reclassification
    >>> r = reclassification(["0", "1-10", "11-100"], ["0", "11-100", "11-100"],
    ...                      categories=["0", "1-10", "11-100"])
    >>> int(r["n_reclassified"][0]), int(r["n_up"][0])
    (1, 1)
    """
    from statsmodels.stats.proportion import proportion_confint

    func = "reclassification"
    alpha = _check_alpha(alpha)
    rows = []
    for key, a, bb, _, pair in _pairs(data, b, subject=subject, rater=rater, value=value,
                                      groupby=groupby, raters=raters, func=func,
                                      categorical=True):
        _, ia, ib = _categories(a, bb, categories, data, value)
        n = len(ia)
        moved = int((ia != ib).sum())
        lo, hi = proportion_confint(moved, n, alpha=alpha, method="wilson")
        row = dict(key)
        row.update(rater_a=pair[0], rater_b=pair[1], n_subjects=n, n_reclassified=moved,
                   reclassified_share=moved / n, ci_low=float(lo), ci_high=float(hi),
                   n_up=int((ib > ia).sum()), n_down=int((ib < ia).sum()),
                   n_more_than_one_category=int((np.abs(ib - ia) > 1).sum()))
        rows.append(row)
    return pd.DataFrame(rows)


def transition_table(data, b=None, *, subject: str = "subject", rater: str = "rater",
                     value: str = "value", groupby=None, raters=None,
                     categories=None) -> pd.DataFrame:
    """Category transition (confusion) table in long form.

    Parameters
    ----------
    data, b, subject, rater, value, groupby, raters, categories
        As in :func:`kappa`.

    Returns
    -------
    pandas.DataFrame
        One row per (group, category_a, category_b) over all category pairs
        (zeros included): ``category_a``, ``category_b`` (ordered
        ``pandas.Categorical``), ``count``, ``share`` (of all subjects in the
        group) and ``row_share`` (of the subjects in ``category_a``; NaN for
        an empty row). ``df.pivot(index="category_a", columns="category_b",
        values="count")`` gives the square table.

    Examples
    --------
    >>> from pvcalc.stats import transition_table
    >>> t = transition_table([0, 0, 1], [0, 1, 1])
    >>> t["count"].tolist()
    [1, 1, 0, 1]
    """
    func = "transition_table"
    frames = []
    for key, a, bb, _, _pair in _pairs(data, b, subject=subject, rater=rater, value=value,
                                       groupby=groupby, raters=raters, func=func,
                                       categorical=True):
        cats, ia, ib = _categories(a, bb, categories, data, value)
        k = len(cats)
        table = _table(ia, ib, k)
        row_tot = table.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            row_share = np.where(row_tot > 0, table / np.maximum(row_tot, 1), np.nan)
        ctype = pd.CategoricalDtype(cats, ordered=True)
        frame = pd.DataFrame({
            "category_a": pd.Categorical(np.repeat(cats, k) if k else [], dtype=ctype),
            "category_b": pd.Categorical(np.tile(cats, k) if k else [], dtype=ctype),
            "count": table.ravel(), "share": table.ravel() / len(ia),
            "row_share": row_share.ravel()})
        for col, val in reversed(list(key.items())):
            frame.insert(0, col, val)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
