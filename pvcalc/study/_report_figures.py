"""Figures of a study report, drawn with the plots of :mod:`pvcalc.stats` (no pyplot).

Each function returns a ``matplotlib.figure.Figure`` (or None when there is
nothing to draw) with one panel per method or per level of the first
condition stratum (e.g. the protocol); axes carry words and units.
"""

from __future__ import annotations

import math

from pvcalc import stats

__all__ = ["bland_altman_figure", "error_figure", "interscan_figure", "transition_figure"]

#: Most panels of one figure; further levels are pooled into one panel.
MAX_PANELS = 6
#: Upper end (%) of the relative-error axis; points above it are counted in the title.
Y_CAP_PCT = 300.0


def _panels(n, *, width=4.6, height=3.9):
    from matplotlib.figure import Figure

    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.remove()
    return fig, list(axes[:n])


def _levels(frame, strata):
    """[(title, sub-frame)] per level of the first stratum, or one pooled panel."""
    if strata:
        column = strata[0]
        groups = [(str(k), sub) for k, sub in frame.groupby(column, sort=True, dropna=False)]
        if 1 < len(groups) <= MAX_PANELS:
            return groups
    return [("all conditions", frame)]


def error_figure(long, strata, quantity="mass_mg"):
    """Relative error against the true value: one panel per method, one series per level
    of the first condition stratum (lines: means per true value)."""
    data = long[(long["quantity"] == quantity) & ~long["not_measured"]].copy()
    if data.empty:
        return None
    data["relative_error_pct"] = 100.0 * (data["value"] - data["truth"]) / data["truth"]
    size = "true_mass_mg" if quantity == "mass_mg" else "true_volume_mm3"
    data[size] = data["truth"].astype(float)
    series = strata[0] if strata and data[strata[0]].nunique() > 1 else "_series"
    data["_series"] = "all conditions"
    data[series] = data[series].astype(str)
    methods = list(dict.fromkeys(data["method"]))[:3 * MAX_PANELS]
    fig, axes = _panels(len(methods))
    for ax, method in zip(axes, methods):
        sub = data[data["method"] == method]
        stats.plot_error_vs_size(sub, size=size, error="relative_error_pct", method=series,
                                 logx=True, ax=ax)
        if series == "_series":
            ax.get_legend().remove()
        # a few huge relative errors of tiny lesions would flatten the rest: cap the axis
        above = int((sub["relative_error_pct"] > Y_CAP_PCT).sum())
        top = min(Y_CAP_PCT, max(50.0, float(sub["relative_error_pct"].max()) * 1.08))
        ax.set_ylim(-108.0, top)
        # negative estimates (the unclipped integrated sums of faint lesions) lie below -100%
        below = int((sub["relative_error_pct"] < -108.0).sum())
        hidden = [f"{n} {where} not shown" for n, where in
                  ((above, f"above {Y_CAP_PCT:g}%"), (below, "below -100%")) if n]
        title = method + (f"\n({', '.join(hidden)})" if hidden else "")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="major", lw=0.3, alpha=0.5)
    return fig


def bland_altman_figure(long, quantity="mass_mg", raters=(1, 2), unit="mg"):
    """Bland-Altman plot of repeat 1 vs 2 per method, all conditions pooled."""
    data = long[(long["quantity"] == quantity) & ~long["not_measured"]
                & long["repeat"].isin(raters)]
    panels = []
    for method, sub in data.groupby("method", sort=False):
        both = sub.groupby("subject")["repeat"].transform("nunique") == 2
        sub = sub[both]
        if sub["subject"].nunique() >= 2:
            panels.append((method, sub.assign(scan=sub["repeat"].map(lambda r: f"scan {r}"))))
    if not panels:
        return None
    fig, axes = _panels(len(panels))
    for ax, (method, sub) in zip(axes, panels):
        stats.plot_bland_altman(
            sub, subject="subject", rater="scan", value="value",
            raters=tuple(f"scan {r}" for r in raters), ax=ax, units=unit)
        ax.set_title(f"{method}\n{ax.get_title()} ({unit})", fontsize=10)
        ax.grid(True, lw=0.3, alpha=0.5)
    return fig


def interscan_figure(per_subject, strata, quantity="mass_mg"):
    """Relative interscan difference per method (boxes), one panel per stratum level."""
    if per_subject.empty:
        return None
    data = per_subject[(per_subject["quantity"] == quantity) & ~per_subject["both_zero"]]
    if data.empty:
        return None
    groups = _levels(data, strata)
    fig, axes = _panels(len(groups))
    for ax, (title, sub) in zip(axes, groups):
        stats.plot_interscan_difference(sub, ax=ax)
        for label in ax.get_xticklabels():   # method names would overlap side by side
            label.set_rotation(30)
            label.set_horizontalalignment("right")
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(True, axis="y", lw=0.3, alpha=0.5)
    return fig


def transition_figure(transitions, keys):
    """Risk-category transition heat maps (repeat 1 vs 2), one per method and stratum."""
    if transitions.empty:
        return None
    groups = list(transitions.groupby(keys, sort=True, dropna=False))[:MAX_PANELS]
    fig, axes = _panels(len(groups), width=4.8, height=4.2)
    for ax, (key, sub) in zip(axes, groups):
        key = key if isinstance(key, tuple) else (key,)
        stats.plot_transition_heatmap(sub, ax=ax, title=" | ".join(str(k) for k in key))
        ax.set_xlabel("risk category, scan 2")
        ax.set_ylabel("risk category, scan 1")
    return fig
