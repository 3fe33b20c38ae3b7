"""Tables shared by the validation studies of the partial-volume methods.

Used by ``validation/methods_cci.py`` and ``validation/methods_motion.py``: errors
beside the truth per group (:func:`error_statistics`, through
``pvcalc.stats.accuracy``), detection rates with Wilson intervals, and the markdown
tables the study pages quote.
"""

from __future__ import annotations

import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from pvcalc import stats
from pvcalc.methods import METHODS

__all__ = ["by_method", "defined_rows", "detection_rates", "error_statistics", "md_table"]


def error_statistics(long: pd.DataFrame, keys) -> pd.DataFrame:
    """Mean error, its SD and the CV of the estimates per group of a beside_truth table.

    ``pvcalc.stats.accuracy`` gives bias, ``sd_error`` and ``relative_error_pct``
    for every group with at least 2 estimates, all >= 0. The integrated methods
    may return negative masses (noise in the ROI sum of a faint insert, unbiased
    by design): those groups (``n_negative`` > 0), and groups with a single
    estimate (SD NaN), get the same three statistics from pandas. Rows without an
    estimate (NaN: the method failed on that scan, see ``reason``) are counted in
    ``n_missing``; a group without any estimate is kept with ``n_scans`` 0 and NaN
    statistics.
    Added: ``truth``, ``mean_estimate`` = truth + bias, ``relative_sd_pct`` =
    100 sd_error / truth and ``cv_pct`` = 100 sd_error / mean_estimate (the
    interscan coefficient of variation; the truth is the same in every scan).
    """
    keys = list(keys)
    missing = long["estimate"].isna().groupby([long[k] for k in keys]).sum()
    valid = long.dropna(subset=["estimate"])
    grouped = valid.groupby(keys)["estimate"]
    negative = grouped.transform("min") < 0
    # accuracy needs >= 2 estimates >= 0 per group; the others are computed directly
    direct = negative | (grouped.transform("size") < 2)
    parts = []
    if (~direct).any():
        acc = stats.accuracy(valid[~direct], groupby=keys)
        parts.append(acc[keys + ["n_lesions", "bias", "sd_error", "relative_error_pct"]])
    if direct.any():
        neg = valid[direct].assign(error=lambda d: d["estimate"] - d["truth"],
                                   rel=lambda d: 100.0 * d["error"] / d["truth"])
        parts.append(neg.groupby(keys, sort=False).agg(
            n_lesions=("error", "size"), bias=("error", "mean"), sd_error=("error", "std"),
            relative_error_pct=("rel", "mean")).reset_index())
    out = pd.concat(parts, ignore_index=True).rename(columns={"n_lesions": "n_scans"})
    extra = valid.groupby(keys).agg(truth=("truth", "first"),
                                    n_negative=("estimate", lambda v: int((v < 0).sum())))
    out = out.merge(extra.reset_index(), on=keys)
    # groups without any estimate (e.g. a volume a method never resolves) stay, as n_scans = 0
    empty = (long.groupby(keys, sort=False)["truth"].first().reset_index()
             .merge(out[keys], on=keys, how="left", indicator=True))
    empty = empty[empty["_merge"] == "left_only"].drop(columns="_merge")
    if len(empty):
        out = pd.concat([out, empty.assign(n_scans=0, n_negative=0)], ignore_index=True)
    out["n_missing"] = missing.reindex(pd.MultiIndex.from_frame(out[keys])).to_numpy()
    out["mean_estimate"] = out["truth"] + out["bias"]
    out["relative_sd_pct"] = 100.0 * out["sd_error"] / out["truth"]
    out["cv_pct"] = 100.0 * out["sd_error"] / out["mean_estimate"]
    return out


def defined_rows(long):
    """Rows of quantities the row's method defines (others are NaN by definition)."""
    return long[[q in METHODS[m].defines if m in METHODS else True
                 for m, q in zip(long["method"], long["quantity"])]]


def detection_rates(rows: pd.DataFrame, keys) -> pd.DataFrame:
    """Share of rows with ``detected`` True per group, with the Wilson 95% CI (as
    ``pvcalc.stats.accuracy`` gives detection rates); NA (no result) counts as not found."""
    g = rows.assign(found=rows["detected"].fillna(False).astype(bool),
                    failed=rows["detected"].isna()).groupby(keys, sort=False)
    out = g.agg(n=("found", "size"), n_detected=("found", "sum"),
                n_failed=("failed", "sum")).reset_index()
    out["rate"] = out["n_detected"] / out["n"]
    out["rate_ci_low"], out["rate_ci_high"] = proportion_confint(
        out["n_detected"], out["n"], alpha=0.05, method="wilson")
    return out


def md_table(frame) -> str:
    """A DataFrame as a markdown table (index levels first, cells as printed)."""
    frame = frame.reset_index()
    rows = ["| " + " | ".join(map(str, r)) + " |" for r in frame.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(map(str, frame.columns)) + " |",
                      "|" + "---|" * frame.shape[1], *rows])


def by_method(table, rows, cell) -> pd.DataFrame:
    """One row per ``rows`` key, one column per method, cells ``cell(row)`` (study order)."""
    t = table.assign(_cell=[cell(r) for r in table.itertuples()])
    order = pd.MultiIndex.from_tuples(list(dict.fromkeys(map(tuple, t[rows].to_numpy()))),
                                      names=rows)
    wide = t.set_index([*rows, "method"])["_cell"].unstack("method")
    return wide.reindex(index=order, columns=list(dict.fromkeys(t["method"]))).fillna("")
