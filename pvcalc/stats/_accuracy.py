"""Accuracy of estimates against ground truth."""

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
    _where,
)

__all__ = ["accuracy"]


def _accuracy_row(est: np.ndarray, true: np.ndarray, alpha: float,
                  detection_threshold: float) -> dict:
    from statsmodels.stats.proportion import proportion_confint

    n = est.size
    err = est - true
    rel = err / true * 100.0
    t = _st.t.ppf(1 - alpha / 2, n - 1)
    bias = err.mean()
    sd = err.std(ddof=1)
    rel_mean = rel.mean()
    rel_sd = rel.std(ddof=1)
    detected = int((est > detection_threshold).sum())
    det_lo, det_hi = proportion_confint(detected, n, alpha=alpha, method="wilson")
    row = dict(n_lesions=n, bias=bias, bias_ci_low=bias - t * sd / np.sqrt(n),
               bias_ci_high=bias + t * sd / np.sqrt(n), sd_error=sd,
               relative_error_pct=rel_mean,
               relative_error_pct_ci_low=rel_mean - t * rel_sd / np.sqrt(n),
               relative_error_pct_ci_high=rel_mean + t * rel_sd / np.sqrt(n),
               abs_relative_error_pct=np.abs(rel).mean(),
               rmse=float(np.sqrt(np.mean(err * err))),
               detected=detected, detection_rate=detected / n,
               detection_rate_ci_low=float(det_lo), detection_rate_ci_high=float(det_hi))
    if n >= 3 and np.ptp(true) > 0:
        lr = _st.linregress(true, est)
        t2 = _st.t.ppf(1 - alpha / 2, n - 2)
        row.update(slope=lr.slope, slope_ci_low=lr.slope - t2 * lr.stderr,
                   slope_ci_high=lr.slope + t2 * lr.stderr, intercept=lr.intercept,
                   intercept_ci_low=lr.intercept - t2 * lr.intercept_stderr,
                   intercept_ci_high=lr.intercept + t2 * lr.intercept_stderr,
                   r2=lr.rvalue ** 2)
    else:
        row.update(slope=np.nan, slope_ci_low=np.nan, slope_ci_high=np.nan,
                   intercept=np.nan, intercept_ci_low=np.nan, intercept_ci_high=np.nan,
                   r2=np.nan)
    return row


def accuracy(data, truth=None, *, estimate: str = "estimate", true: str = "truth",
             groupby=None, detection_threshold: float = 0.0,
             alpha: float = 0.05) -> pd.DataFrame:
    """Bias, relative error, RMSE, regression on truth and detection rate.

    Parameters
    ----------
    data : pandas.DataFrame or array_like
        Long table with one row per (lesion, scan, method), or the estimates
        (1-D array, any unit: mm3, mg, Agatston).
    truth : array_like, optional
        True values (same unit, > 0) when ``data`` is an array.
    estimate, true : str
        Column names of the estimate (any finite value: an undetected lesion
        is 0, not NaN, and the unclipped integrated-intensity methods give
        negative estimates on calcium-free or faint ROIs, which are used as
        they are) and the true value (> 0, so the relative error is defined).
    groupby : str or list of str, optional
        Strata (method, size, density, velocity, protocol...), one row each.
    detection_threshold : float
        A lesion counts as detected when estimate > this (default 0).
    alpha : float
        CIs at level 1 - alpha.

    Returns
    -------
    pandas.DataFrame
        Group columns, ``n_lesions``, ``bias`` (mean of estimate - truth,
        value unit) with ``bias_ci_low`` / ``bias_ci_high`` (t), ``sd_error``
        (ddof=1), ``relative_error_pct`` (mean of 100 (est - true) / true) with
        CI, ``abs_relative_error_pct`` (mean of its absolute value), ``rmse``,
        ``detected``, ``detection_rate`` with Wilson CI, ``slope``,
        ``intercept`` (ordinary least squares of estimate on truth, t CIs)
        and ``r2`` (NaN with fewer than 3 lesions or constant truth).

    Notes
    -----
    RMSE = sqrt(mean((est - true)^2)). Slope / intercept CIs: coefficient
    -/+ t_{n-2} SE (``scipy.stats.linregress``). Detection rate: share of
    true lesions whose estimate exceeds ``detection_threshold``; its CI is
    the Wilson score interval. Negative estimates are not clipped: clipping at 0
    would bias the mean error upwards wherever noise can push an unbiased
    estimate below 0 (Black, Molloi et al., Med Phys 2023, sum the excess
    unclipped for this reason); such an estimate counts as not detected.

    Checked against numpy hand computations and statsmodels OLS CIs (tests).

    Examples
    --------
    >>> from pvcalc.stats import accuracy
    >>> r = accuracy([0.0, 21.0, 100.0], [0.785, 21.21, 98.17])
    >>> round(float(r["bias"][0]), 4), float(r["detection_rate"][0])
    (0.2783, 0.6666666666666666)
    """
    func = "accuracy"
    alpha = _check_alpha(alpha)
    if not isinstance(data, pd.DataFrame):
        if truth is None:
            raise TypeError(
                "accuracy: pass either a DataFrame plus estimate= and true= column names, "
                f"or two arrays (estimates, truth); got {type(data).__name__} and "
                "truth=None.")
        est = _finite_values(data, name="estimates", func=func)
        tru = _finite_values(truth, name="truth", func=func, positive=True)
        if est.shape != tru.shape:
            raise ValueError(
                f"accuracy: estimates and truth must have the same length, got "
                f"{est.size} and {tru.size}; pass one estimate per true lesion.")
        data = pd.DataFrame({"estimate": est, "truth": tru})
        estimate, true, groupby = "estimate", "truth", None
    elif truth is not None:
        raise TypeError("accuracy: with a DataFrame, truth must be None; name the truth "
                        "column with true=.")
    groupby = _as_groupby(groupby)
    _check_frame(data, {"estimate": estimate, "true": true, "groupby": groupby}, func=func)
    rows = []
    for key, sub in _groups(data, groupby):
        est = _finite_values(sub[estimate].to_numpy(), name=f"column {estimate!r}",
                             func=func)
        tru = _finite_values(sub[true].to_numpy(), name=f"column {true!r}", func=func,
                             positive=True)
        if est.size < 2:
            raise ValueError(
                f"accuracy: at least 2 lesions are needed in group {_where(key)}, got "
                f"{est.size}; merge strata or drop the group.")
        row = dict(key)
        row.update(_accuracy_row(est, tru, alpha, float(detection_threshold)))
        rows.append(row)
    return pd.DataFrame(rows)
