"""Per-lesion tables and trend figures of a study report.

For phantoms with a few named lesions (the insert replica, the motion phantom) the
report shows every lesion in every condition:

- accuracy over the lesion's repeated scans (:func:`pvcalc.stats.accuracy`: bias with
  CI, mean relative error, RMSE), the method's own detection rate (Wilson CI), and
- the interscan coefficient of variation, CV = SD / mean of the estimates over the
  repeats (ddof = 1), the spread a site would see scanning the same phantom again
  (as in McCollough et al., Radiology 2007;243:527-538,
  https://doi.org/10.1148/radiol.2432050808, and Groen et al., Med Phys
  2009;36(2):438-446);

and, when a numeric condition column has three or more values (the speed of the motion
phantom, the tube voltage), the relative error against it. The estimate is the report's
``value`` (:func:`pvcalc.study._report_tables.prepare`); the conventions are those of the
rest of the report.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pvcalc import stats

__all__ = ["MAX_LESIONS", "lesion_blocks", "lesion_table", "trend_column", "trend_figure"]

#: Most distinct lesion names for which the per-lesion table is made (a population of
#: virtual patients is summarised by the other tables instead).
MAX_LESIONS = 30
#: Fewest distinct values of a numeric condition column for a trend figure.
MIN_TREND_LEVELS = 3
_QUANTITIES = ("mass_mg", "volume_mm3")
_WORDS = {"mass_mg": "mass", "volume_mm3": "volume"}
_UNITS = {"mass_mg": "mg", "volume_mm3": "mm³"}


def applies(long) -> bool:
    """Whether the results have few named lesions, each scanned in several repeats."""
    if long.empty:
        return False
    if "phantom_name" in long and (long["phantom_name"] == "patients").any():
        return False
    return long["lesion"].nunique() <= MAX_LESIONS


def _order(values):
    """Position of each value in order of first appearance (for stable sorting)."""
    first = {v: i for i, v in enumerate(dict.fromkeys(values))}
    return values.map(first)


def lesion_table(long, condition_strata):
    """Accuracy, detection and interscan CV per quantity x method x condition x lesion.

    Parameters
    ----------
    long : pandas.DataFrame
        The report's long table (:func:`pvcalc.study._report_tables.prepare`).
    condition_strata : list of str
        The condition columns that tell the conditions apart.

    Returns
    -------
    pandas.DataFrame
        One row per group with at least 2 measured scans: the keys, ``n_scans``,
        ``n_not_measured``, ``n_clipped``, ``true_value``, ``mean_estimate``,
        ``sd_estimate``, ``cv_pct`` (100 SD / mean; NaN for a mean of 0), ``bias``
        with ``bias_ci_low`` / ``bias_ci_high``, ``relative_error_pct`` with its CI,
        ``relative_error_sd_pct``, ``abs_relative_error_pct``, ``rmse`` (the
        unit of the quantity), ``detected``, ``detection_rate`` with Wilson CI.
        Empty when :func:`applies` is false.
    """
    from pvcalc.study._report_tables import _wilson

    if not applies(long):
        return pd.DataFrame()
    data = long[long["quantity"].isin(_QUANTITIES)]
    keys = ["quantity", "method", *condition_strata, "lesion"]
    rows = []
    for key, sub in data.groupby(keys, sort=False, dropna=False):
        used = sub[~sub["not_measured"]]
        if len(used) < 2:
            continue
        acc = stats.accuracy(used, estimate="value", true="truth").iloc[0]
        est = used["value"].to_numpy(float)
        truth = used["truth"].to_numpy(float)
        mean, sd = float(est.mean()), float(est.std(ddof=1))
        k, n = int(used["detected"].sum()), len(used)
        lo, hi = _wilson(k, n)
        row = dict(zip(keys, key))
        row.update(n_scans=n, n_not_measured=int(sub["not_measured"].sum()),
                   n_clipped=int(used["clipped"].sum()), true_value=float(truth.mean()),
                   mean_estimate=mean, sd_estimate=sd,
                   cv_pct=100.0 * sd / mean if mean > 0 else math.nan,
                   bias=acc["bias"], bias_ci_low=acc["bias_ci_low"],
                   bias_ci_high=acc["bias_ci_high"],
                   relative_error_pct=acc["relative_error_pct"],
                   relative_error_pct_ci_low=acc["relative_error_pct_ci_low"],
                   relative_error_pct_ci_high=acc["relative_error_pct_ci_high"],
                   relative_error_sd_pct=float(np.std(100.0 * (est - truth) / truth, ddof=1)),
                   abs_relative_error_pct=acc["abs_relative_error_pct"], rmse=acc["rmse"],
                   detected=k, detection_rate=k / n, detection_rate_ci_low=lo,
                   detection_rate_ci_high=hi)
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    sort = {"_q": table["quantity"].map({q: i for i, q in enumerate(_QUANTITIES)}),
            "_m": _order(table["method"]), "_l": _order(table["lesion"])}
    table = table.assign(**sort).sort_values(["_q", "_m", *condition_strata, "_l"],
                                             kind="stable", na_position="last")
    return table.drop(columns=list(sort)).reset_index(drop=True)


def _value_text(value):
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def lesion_blocks(table, condition_strata, label, figures=()):
    """Report blocks of the per-lesion section (``label``: column name -> words)."""
    from pvcalc.study._report_render import fmt, fmt_pct

    if table.empty:
        return []
    blocks = [("h", 2, "Each lesion in each condition"),
              ("p", "Mean over the repeated scans of each lesion in each condition: relative "
               "error = 100 (estimate - truth) / truth, and in parentheses the interscan "
               "coefficient of variation CV = 100 SD / mean of the estimates (ddof = 1). "
               "Bias, RMSE and every CI are in lesions.csv.")]
    row_keys = [*condition_strata, "lesion"]
    methods = list(dict.fromkeys(table["method"]))

    def wide(sub, extra, cell):
        out = []
        for key, rows in sub.groupby(row_keys, sort=False, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            line = {label(c): _value_text(v) for c, v in zip(row_keys, key)}
            line.update(extra(rows))
            by_method = {r["method"]: r for r in rows.to_dict("records")}
            for m in methods:
                line[f"`{m}`"] = cell(by_method[m]) if m in by_method else ""
            out.append(line)
        return pd.DataFrame(out)

    for quantity in _QUANTITIES:
        sub = table[table["quantity"] == quantity]
        if sub.empty:
            continue
        unit = _UNITS[quantity]

        def true_value(rows, unit=unit):
            return {f"true ({unit})": fmt(float(rows["true_value"].iloc[0]))}

        frame = wide(sub, true_value,
                     lambda r: f"{fmt(r['relative_error_pct'])} ({fmt(r['cv_pct'])})")
        blocks.append(("h", 3, f"{_WORDS[quantity].capitalize()}: relative error % (CV %)"))
        blocks.append(("table", frame, (f"Mean relative {_WORDS[quantity]} error over the "
                       "repeats and, in parentheses, the interscan CV (n/a when the mean "
                       "estimate is not above 0); estimates as in the Conventions.")))
    mass = table[table["quantity"] == "mass_mg"]
    missed = mass.groupby(row_keys, sort=False, dropna=False)["detection_rate"].transform("min")
    mass = mass[missed < 1.0]
    if not mass.empty:
        frame = wide(mass, lambda rows: {"scans": fmt(int(rows["n_scans"].max()))},
                     lambda r: fmt_pct(100.0 * r["detection_rate"]))
        blocks.append(("h", 3, "Detection rate, lesions some method missed"))
        blocks.append(("table", frame, ("Share of the repeats in which the method's own "
                       "`detected` decision found the lesion (Wilson CIs in lesions.csv); "
                       "lesions every method found in every scan are left out.")))
    for name, png, caption in figures:
        blocks.append(("figure", name, png, caption))
    return blocks


def trend_column(long, condition_strata):
    """The numeric condition column with the most values (at least three), or None."""
    best, most = None, MIN_TREND_LEVELS - 1
    for column in condition_strata:
        values = long[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue
        n = values.dropna().nunique()
        if n > most:
            best, most = column, n
    return best


def trend_figure(long, condition_strata, quantity, label):
    """Relative error against the trend column: one panel per method, one line per
    combination of the other condition columns (means over the scans with their 95% CIs)."""
    from scipy import stats as st

    from pvcalc.study._report_figures import MAX_PANELS, _panels

    column = trend_column(long, condition_strata)
    data = long[(long["quantity"] == quantity) & ~long["not_measured"]].copy()
    if column is None or data.empty or not applies(long):
        return None
    data = data[data[column].notna()]
    data["_x"] = data[column].astype(float)
    data["_error"] = 100.0 * (data["value"] - data["truth"]) / data["truth"]
    others = [c for c in condition_strata if c != column and data[c].nunique(dropna=False) > 1]
    data["_series"] = ([", ".join(_value_text(v) for v in vals)
                        for vals in zip(*(data[c].tolist() for c in others))]
                       if others else "all")
    series = list(dict.fromkeys(data.sort_values(others, kind="stable")["_series"])) \
        if others else ["all"]
    methods = list(dict.fromkeys(data["method"]))[:3 * MAX_PANELS]
    fig, axes = _panels(len(methods))
    span = float(np.ptp(data["_x"].unique())) or 1.0
    for ax, method in zip(axes, methods):
        sub = data[data["method"] == method]
        for i, name in enumerate(series):
            g = sub[sub["_series"] == name].groupby("_x", sort=True)["_error"]
            mean, sd, n = g.mean(), g.std(ddof=1), g.count()
            half = st.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
            shift = (i - (len(series) - 1) / 2) * 0.006 * span   # keep the bars apart
            ax.errorbar(mean.index.to_numpy(float) + shift, mean.to_numpy(float),
                        yerr=half.fillna(0.0).to_numpy(float), fmt="-o", ms=3, lw=1,
                        capsize=2, color=f"C{i % 10}", label=name)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xlabel(label(column))
        ax.set_ylabel(f"relative {_WORDS[quantity]} error (%)")
        ax.set_title(method, fontsize=10)
        ax.grid(True, lw=0.3, alpha=0.5)
    if others:
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncols=min(4, len(names)),
                   fontsize=8, title=", ".join(label(c) for c in others), title_fontsize=8)
    return fig
