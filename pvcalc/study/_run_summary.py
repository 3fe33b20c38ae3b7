"""The short table ``pvcalc study run`` prints at the end: per method, the mass error by
lesion size and the interscan difference of the mass, per condition.

The numbers follow the report's conventions (:mod:`pvcalc.study._report_tables`):
the mass error is the mean of ``100 (estimate - truth) / truth`` over the scans and
lesions measured (:func:`pvcalc.stats.accuracy`, estimates below 0 as they are); the
interscan difference is the mean of ``|A - B| / ((A + B) / 2) x 100`` of each lesion's
mass on repeat 1 and 2 (:func:`pvcalc.stats.interscan_summary`, an estimate below 0
counted as 0, lesions with 0 on both scans left out). The report has every statistic
with confidence intervals; this table is what fits on a terminal.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pvcalc import stats
from pvcalc.study import _report_tables as T

__all__ = ["format_summary", "summary_table"]

#: Lesion sizes get their own columns when there are at most this many distinct true
#: diameters; lesions below ``MIN_DIAMETER_MM`` (which no method measures well: the
#: 1 mm inserts of the CCI replica) are then left out of the table when larger ones exist.
MAX_SIZES = 4
MIN_DIAMETER_MM = 2.0
#: Conditions get their own column groups up to this many; more are pooled.
MAX_CONDITIONS = 3


def _sizes(mass):
    """The diameters (mm) shown as columns, or None for one column of every lesion."""
    if "true_diameter_mm" not in mass:
        return None
    d = mass["true_diameter_mm"].astype(float)
    values = sorted(d.dropna().unique())
    if not values or len(values) > MAX_SIZES:
        return None
    shown = [v for v in values if v >= MIN_DIAMETER_MM] or values
    return shown


def _condition_label(long, strata):
    """One label per row for the condition groups, and the group order."""
    keys = [c for c in strata if c in long and c != "phantom"] or ["condition"]
    labels = pd.Series([", ".join("-" if pd.isna(v) else str(v) for v in row)
                        for row in long[keys].itertuples(index=False)], index=long.index)
    order = list(dict.fromkeys(labels))
    if len(order) > MAX_CONDITIONS:
        return pd.Series("all conditions", index=long.index), ["all conditions"]
    return labels, order


def summary_table(results, spec=None) -> pd.DataFrame:
    """Per method and condition group: mean relative mass error per size and interscan difference.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`pvcalc.study.read_results` of a study.
    spec : StudySpec, optional
        Its condition columns name the groups.

    Returns
    -------
    pandas.DataFrame
        One row per method and condition group: ``method``, ``group`` (the
        condition's label, or "all conditions" when there are more than
        :data:`MAX_CONDITIONS`), per size shown (``"3 mm"``, ``"5 mm"``, ... or
        ``"all"``; listed in ``attrs["sizes"]``) the mean relative mass error in %
        (NaN with fewer than 2 lesion-scans) and ``"n <size>"`` the lesion-scans
        it averages, and ``interscan``: the mean relative interscan difference of
        the mass in % (NaN without two repeats). Empty when no method gives a mass.
    """
    if results.empty:
        return pd.DataFrame()
    long, strata = T.prepare(results, spec)
    mass = long[(long["quantity"] == "mass_mg") & ~long["not_measured"]].copy()
    if mass.empty:
        return pd.DataFrame()
    mass["group"], groups = _condition_label(mass, strata)
    sizes = _sizes(mass)
    if sizes is None:
        mass["size"] = "all"
        size_labels = ["all"]
    else:
        d = mass["true_diameter_mm"].astype(float)
        mass = mass[d.isin(sizes)].copy()
        mass["size"] = [f"{v:g} mm" for v in mass["true_diameter_mm"].astype(float)]
        size_labels = [f"{v:g} mm" for v in sizes]
    methods = list(dict.fromkeys(results["method"]))
    rows = []
    for method in methods:
        for group in groups:
            sub = mass[(mass["method"] == method) & (mass["group"] == group)]
            if sub.empty:
                continue
            row = {"method": method, "group": group}
            for size in size_labels:
                part = sub[sub["size"] == size]
                row[size] = (float(stats.accuracy(part, estimate="value", true="truth")
                                   ["relative_error_pct"].iloc[0]) if len(part) >= 2 else np.nan)
                row[f"n {size}"] = len(part)
            row["interscan"] = _interscan(sub)
            rows.append(row)
    return _with_sizes(rows, size_labels)


def _with_sizes(rows, sizes):
    table = pd.DataFrame(rows)
    table.attrs["sizes"] = sizes
    return table


def _interscan(sub):
    """Mean relative interscan difference (%) of repeat 1 vs 2 of the lesions in ``sub``."""
    repeats = sorted(sub["repeat"].unique())
    if len(repeats) < 2:
        return np.nan
    pair = sub[sub["repeat"].isin(repeats[:2])]
    complete = pair.groupby("subject")["repeat"].transform("nunique") == 2
    pair = pair[complete]
    if pair["subject"].nunique() < 2:
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = stats.interscan_summary(pair, subject="subject", rater="repeat",
                                      value="value_nonneg", raters=tuple(int(r) for r in
                                                                         repeats[:2]),
                                      exclude_both_zero=True)
    return float(out["mean_relative_difference_pct"].iloc[0])


def _cell(value):
    return "-" if not np.isfinite(value) else f"{value:+.1f}"


def format_summary(table, *, no_mass=()) -> str:
    """The table as fixed-width text: one row per method, a column block per condition."""
    if table.empty:
        return "no method gave a mass, so there is no mass summary"
    sizes = table.attrs.get("sizes", ["all"])
    groups = list(dict.fromkeys(table["group"]))
    heads = [f"err {s}" if s != "all" else "mass err" for s in sizes] + ["interscan"]
    width = max(9, *(len(h) for h in heads))
    block = len(heads) * (width + 1) - 1
    name_w = max(6, *(len(m) for m in table["method"]))
    lines = [" " * name_w + "".join(f" | {g[:block]:^{block}s}" for g in groups),
             f"{'method':{name_w}s}" + "".join(" | " + " ".join(f"{h:>{width}s}" for h in heads)
                                               for _ in groups)]
    lines.append("-" * len(lines[1]))
    by = table.set_index(["method", "group"])
    for method in dict.fromkeys(table["method"]):
        cells = []
        for g in groups:
            if (method, g) in by.index:
                r = by.loc[(method, g)]
                vals = [_cell(r[s]) for s in sizes]
                inter = r["interscan"]
                vals.append("-" if not np.isfinite(inter) else f"{inter:.1f}")
            else:
                vals = ["-"] * len(heads)
            cells.append(" | " + " ".join(f"{v:>{width}s}" for v in vals))
        lines.append(f"{method:{name_w}s}" + "".join(cells))
    if no_mass:
        lines.append(f"(no mass, not shown: {', '.join(no_mass)})")
    return "\n".join(line.rstrip() for line in lines)
