"""Agreement plots (matplotlib); each returns the Figure and never calls show()."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pvcalc.stats._bland_altman import bland_altman, bland_altman_differences
from pvcalc.stats._validate import _check_frame, _pairs

__all__ = ["plot_bland_altman", "plot_error_vs_size", "plot_interscan_difference",
           "plot_transition_heatmap"]


#: Axis labels of the columns pvcalc's tables use (docs/stats.md and docs/scoring.md,
#: glossaries); other column names are read by :func:`_axis_label`'s rule.
_LABELS = {
    "agatston": "Agatston score",
    "relative_difference_pct": "relative difference between the scans (%)",
    "abs_difference": "absolute difference between the scans",
    "mean_value": "mean of the two scans",
    "count": "number of subjects",
    "share": "share of all subjects",
    "row_share": "share of the row's subjects (scan A category)",
    "method": "method",
}
#: Unit suffixes of column names (house style: units in names) and how they are shown.
_UNITS = {"pct": "%", "mm3": "mm³", "mm2": "mm²", "mm": "mm", "cm3": "cm³", "mg": "mg",
          "hu": "HU", "s": "s", "ms": "ms", "mg_cm3": "mg HA/cm³", "bpm": "beats/min"}


def _axis_label(column: str) -> str:
    """Words and units for a column name, as an axis label.

    Known columns (``agatston``, ``relative_difference_pct``, ``count``...) have
    their own label; for the others underscores become spaces and a unit suffix
    becomes a unit in parentheses, so the house naming (units in names) reads as text.

    Parameters
    ----------
    column : str
        A column name such as ``"true_volume_mm3"``.

    Returns
    -------
    str

    Examples
    --------
    >>> _axis_label("true_volume_mm3"), _axis_label("relative_error_pct")
    ('true volume (mm³)', 'relative error (%)')
    >>> _axis_label("density_mg_cm3"), _axis_label("agatston")
    ('density (mg HA/cm³)', 'Agatston score')
    """
    name = str(column)
    if name in _LABELS:
        return _LABELS[name]
    words = name.split("_")
    for n_unit in (2, 1):
        unit = "_".join(words[-n_unit:]).lower()
        if len(words) > n_unit and unit in _UNITS:
            text = " ".join(words[:-n_unit]).replace("agatston", "Agatston")
            return f"{text} ({_UNITS[unit]})"
    return " ".join(words).replace("agatston", "Agatston")


def _unit_of(column: str) -> str:
    """The unit of a value column for Bland-Altman axes ("Agatston" for Agatston scores)."""
    name = str(column).lower()
    if name.startswith("agatston") or name.endswith("agatston"):
        return "Agatston"
    label = _axis_label(column)
    return label[label.rindex("(") + 1:-1] if label.endswith(")") else ""


def _new_axes(ax, figsize=(5.0, 4.0)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    # A bare Figure (no pyplot) works under any backend, including Agg, and
    # is not kept alive by pyplot's figure registry.
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_bland_altman(data, b=None, *, subject: str = "subject", rater: str = "rater",
                      value: str = "value", raters=None, transform: str = "none",
                      loa_ci: str = "approximate", alpha: float = 0.05, ax=None,
                      units: str = ""):
    """Bland-Altman plot: difference vs mean with bias, limits and their CIs.

    Parameters
    ----------
    data, b, subject, rater, value, raters, transform, loa_ci, alpha
        As in :func:`pvcalc.stats.bland_altman` (single group).
    ax : matplotlib.axes.Axes, optional
        Draw into this axes; default a new Figure.
    units : str
        Unit for the axes (e.g. "mg"); default: read from the ``value`` column's
        name (``volume_mm3`` -> mm³, ``agatston`` -> Agatston), none if it has none.

    Returns
    -------
    matplotlib.figure.Figure
        Scatter of the pairs, solid line at the bias, dashed lines at the two
        limits of agreement (labelled ``"bias"``, ``"loa_low"``,
        ``"loa_high"``) and shaded CI bands. x axis: "mean of A and B (unit)";
        y axis: "difference, A - B (unit)", or the ratio A / B for
        ``transform="log"``, or the difference in % of the mean for
        ``transform="percent"``.

    Examples
    --------
    >>> from pvcalc.stats import plot_bland_altman
    >>> fig = plot_bland_altman([10.0, 12.0, 9.0, 11.0], [9.0, 12.5, 8.0, 10.0])
    >>> sorted(l.get_label() for l in fig.axes[0].lines)
    ['bias', 'loa_high', 'loa_low']
    """
    res = bland_altman(data, b, subject=subject, rater=rater, value=value, raters=raters,
                       transform=transform, loa_ci=loa_ci, alpha=alpha)
    if len(res) != 1:
        raise ValueError("plot_bland_altman: draws one pair; filter the data to one group.")
    (_, a, bb, _, pair), = _pairs(data, b, subject=subject, rater=rater, value=value,
                                  groupby=None, raters=raters, func="plot_bland_altman")
    mean, diff = bland_altman_differences(a, bb, transform)
    if transform == "log":
        diff = np.exp(diff)
    r = res.iloc[0]
    fig, ax = _new_axes(ax)
    ax.scatter(mean, diff, s=12, alpha=0.7, color="C0")
    ax.axhline(r["bias"], color="k", lw=1.2, label="bias")
    ax.axhline(r["loa_low"], color="C3", ls="--", lw=1.0, label="loa_low")
    ax.axhline(r["loa_high"], color="C3", ls="--", lw=1.0, label="loa_high")
    for lo, hi, col in ((r["bias_ci_low"], r["bias_ci_high"], "0.5"),
                        (r["loa_low_ci_low"], r["loa_low_ci_high"], "C3"),
                        (r["loa_high_ci_low"], r["loa_high_ci_high"], "C3")):
        ax.axhspan(lo, hi, color=col, alpha=0.12, lw=0)
    unit = units or _unit_of(value)
    u = f" ({unit})" if unit else ""
    ax.set_xlabel(f"mean of {pair[0]} and {pair[1]}{u}")
    ylab = {"none": f"difference, {pair[0]} - {pair[1]}{u}",
            "log": f"ratio, {pair[0]} / {pair[1]}",
            "percent": f"difference, ({pair[0]} - {pair[1]}) / mean (%)"}[transform]
    ax.set_ylabel(ylab)
    ax.set_title(f"bias {r['bias']:.3g}, limits [{r['loa_low']:.3g}, {r['loa_high']:.3g}]")
    return fig


def plot_error_vs_size(data: pd.DataFrame, *, size: str, error: str,
                       method: str = "method", ax=None, logx: bool = False):
    """Error against lesion size, one series (mean line + points) per method.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per (lesion, scan, method).
    size, error, method : str
        Column names: lesion size (e.g. ``true_volume_mm3`` or diameter in
        mm), error (e.g. relative error in %), method label.
    ax : matplotlib.axes.Axes, optional
    logx : bool
        Logarithmic size axis.

    Returns
    -------
    matplotlib.figure.Figure
        One line (mean error per distinct size) and one scatter per method,
        lines labelled by method, a horizontal reference line at 0; axes
        labelled in words and units (:func:`_axis_label`).

    Examples
    --------
    >>> import pandas as pd
    >>> from pvcalc.stats import plot_error_vs_size
    >>> df = pd.DataFrame({"d_mm": [1, 3, 5] * 2, "err": [-90, -20, -5, -40, -5, 1],
    ...                    "method": ["clinical"] * 3 + ["em"] * 3})
    >>> fig = plot_error_vs_size(df, size="d_mm", error="err")
    >>> [l.get_label() for l in fig.axes[0].lines][:2]
    ['clinical', 'em']
    """
    _check_frame(data, {"size": size, "error": error, "method": method},
                 func="plot_error_vs_size")
    fig, ax = _new_axes(ax)
    for i, (name, sub) in enumerate(data.groupby(method, sort=True)):
        m = sub.groupby(size, sort=True)[error].mean()
        ax.plot(m.index.to_numpy(float), m.to_numpy(float), "-o", color=f"C{i}", ms=4,
                label=str(name))
        ax.scatter(sub[size].to_numpy(float), sub[error].to_numpy(float), s=8,
                   color=f"C{i}", alpha=0.3)
    ax.axhline(0.0, color="k", lw=0.8, label="_zero")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(_axis_label(size))
    ax.set_ylabel(_axis_label(error))
    ax.legend(title=_axis_label(method))
    return fig


def plot_interscan_difference(data: pd.DataFrame, *, value: str = "relative_difference_pct",
                              method: str = "method", ax=None):
    """Box plot of per-subject interscan differences, one box per method.

    Parameters
    ----------
    data : pandas.DataFrame
        Typically the output of :func:`pvcalc.stats.interscan_difference`
        with ``groupby=[method]``.
    value, method : str
        Column names of the difference (%) and the method.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One box per method (tick labels = method names) with the mean as a
        marker; y axis e.g. "relative difference between the scans (%)".

    Examples
    --------
    >>> import pandas as pd
    >>> from pvcalc.stats import plot_interscan_difference
    >>> df = pd.DataFrame({"method": ["a", "a", "b", "b"],
    ...                    "relative_difference_pct": [10.0, 20.0, 5.0, 7.0]})
    >>> fig = plot_interscan_difference(df)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a', 'b']
    """
    _check_frame(data, {"value": value, "method": method},
                 func="plot_interscan_difference")
    fig, ax = _new_axes(ax)
    names, series = [], []
    for name, sub in data.groupby(method, sort=True):
        names.append(str(name))
        series.append(sub[value].to_numpy(float))
    ax.boxplot(series, showmeans=True)
    ax.set_xticks(np.arange(1, len(names) + 1), names)
    ax.set_xlabel(_axis_label(method))
    ax.set_ylabel(_axis_label(value))
    return fig


def plot_transition_heatmap(table: pd.DataFrame, *, value: str = "count", ax=None,
                            title: str | None = None):
    """Heat map of a category transition table (e.g. risk reclassification).

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`pvcalc.stats.transition_table` for one group
        (columns ``category_a``, ``category_b`` and ``value``).
    value : {"count", "share", "row_share"}
        What to colour and annotate.
    ax : matplotlib.axes.Axes, optional
    title : str, optional
        Axes title (e.g. the kappa of the same data).

    Returns
    -------
    matplotlib.figure.Figure
        An image (``AxesImage``) of the square table with each cell
        annotated, a colour bar, categories of scan A on the y axis.

    Examples
    --------
    >>> from pvcalc.stats import transition_table, plot_transition_heatmap
    >>> fig = plot_transition_heatmap(transition_table([0, 0, 1], [0, 1, 1]))
    >>> len(fig.axes[0].images), len(fig.axes[0].texts)
    (1, 4)
    """
    _check_frame(table, {"category_a": "category_a", "category_b": "category_b",
                         "value": value}, func="plot_transition_heatmap")
    wide = table.pivot_table(index="category_a", columns="category_b", values=value,
                             observed=False, aggfunc="sum", dropna=False)
    fig, ax = _new_axes(ax, figsize=(5.0, 4.2))
    mat = wide.to_numpy(float)
    im = ax.imshow(mat, cmap="Blues", origin="upper")
    vmax = np.nanmax(mat) if np.isfinite(mat).any() else 1.0
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            txt = "" if not np.isfinite(v) else (f"{v:.0f}" if value == "count" else f"{v:.2f}")
            ax.text(j, i, txt, ha="center", va="center",
                    color="white" if np.isfinite(v) and v > 0.6 * vmax else "black")
    ax.set_xticks(np.arange(mat.shape[1]), [str(c) for c in wide.columns])
    ax.set_yticks(np.arange(mat.shape[0]), [str(c) for c in wide.index])
    ax.set_xlabel("category, scan B")
    ax.set_ylabel("category, scan A")
    fig.colorbar(im, ax=ax, label=_axis_label(value))
    if title:
        ax.set_title(title)
    return fig
