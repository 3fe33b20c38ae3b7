"""Plots return Figures with the expected artists and save to PNG."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pvcalc import stats  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pairs_frame():
    rng = np.random.default_rng(0)
    n = 40
    truth = rng.uniform(5, 200, n)
    rows = []
    for method, sd in (("clinical", 0.15), ("em", 0.05)):
        for scan in ("s1", "s2"):
            rows.append(pd.DataFrame({
                "method": method, "lesion": np.arange(n), "scan": scan,
                "true_volume_mm3": truth,
                "volume_mm3": truth * rng.lognormal(0, sd, n)}))
    return pd.concat(rows, ignore_index=True)


def _saves(fig, path):
    fig.savefig(path, dpi=60)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_bland_altman_plot_has_lines_at_limits(tmp_path):
    df = _pairs_frame().query("method == 'em'")
    fig = stats.plot_bland_altman(df, subject="lesion", rater="scan", value="volume_mm3",
                                  units="mm3")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    res = stats.bland_altman(df, subject="lesion", rater="scan", value="volume_mm3").iloc[0]
    lines = {ln.get_label(): ln.get_ydata()[0] for ln in ax.lines}
    assert lines["bias"] == pytest.approx(res["bias"])
    assert lines["loa_low"] == pytest.approx(res["loa_low"])
    assert lines["loa_high"] == pytest.approx(res["loa_high"])
    assert len(ax.collections[0].get_offsets()) == 40  # one point per lesion
    assert len(ax.patches) == 3  # CI bands of bias and both limits
    _saves(fig, tmp_path / "ba.png")
    log = stats.plot_bland_altman(df, subject="lesion", rater="scan", value="volume_mm3",
                                  transform="log")
    assert log.axes[0].get_ylabel() == "ratio, s1 / s2"


def test_error_vs_size_and_interscan_plots(tmp_path):
    df = _pairs_frame()
    acc = df.assign(relative_error_pct=(df.volume_mm3 / df.true_volume_mm3 - 1) * 100)
    fig = stats.plot_error_vs_size(acc, size="true_volume_mm3", error="relative_error_pct",
                                   logx=True)
    labels = [ln.get_label() for ln in fig.axes[0].lines]
    assert labels[:2] == ["clinical", "em"] and fig.axes[0].get_xscale() == "log"
    _saves(fig, tmp_path / "err.png")
    per = stats.interscan_difference(df, subject="lesion", rater="scan", value="volume_mm3",
                                     groupby="method")
    fig = stats.plot_interscan_difference(per)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["clinical", "em"]
    flat = [tuple(np.round(ln.get_ydata(), 9)) for ln in ax.lines if len(ln.get_ydata()) == 2]
    for _, sub in per.groupby("method"):  # a horizontal median line per box
        med = round(float(sub.relative_difference_pct.median()), 9)
        assert (med, med) in flat
    _saves(fig, tmp_path / "interscan.png")


def test_transition_heatmap(tmp_path):
    a = np.array([0, 0, 1, 2, 2, 3, 3, 3])
    b = np.array([0, 1, 1, 2, 3, 3, 3, 2])
    t = stats.transition_table(a, b)
    k = stats.kappa(a, b, weights="linear")["kappa"].iloc[0]
    fig = stats.plot_transition_heatmap(t, title=f"linear kappa {k:.2f}")
    ax = fig.axes[0]
    img = ax.images[0].get_array()
    np.testing.assert_array_equal(img, t.pivot(index="category_a", columns="category_b",
                                               values="count").to_numpy())
    assert len(ax.texts) == 16 and len(fig.axes) == 2  # annotations + colour bar
    _saves(fig, tmp_path / "heat.png")


def test_axes_are_labelled_in_words_and_units():
    df = _pairs_frame()
    acc = df.assign(relative_error_pct=(df.volume_mm3 / df.true_volume_mm3 - 1) * 100)
    ax = stats.plot_error_vs_size(acc, size="true_volume_mm3", error="relative_error_pct").axes[0]
    assert ax.get_xlabel() == "true volume (mm³)"
    assert ax.get_ylabel() == "relative error (%)"
    assert ax.get_legend().get_title().get_text() == "method"

    per = stats.interscan_difference(df, subject="lesion", rater="scan", value="volume_mm3",
                                     groupby="method")
    ax = stats.plot_interscan_difference(per).axes[0]
    assert ax.get_ylabel() == "relative difference between the scans (%)"
    assert ax.get_xlabel() == "method"

    # units come from the value column's name unless given
    em = df.query("method == 'em'")
    ax = stats.plot_bland_altman(em, subject="lesion", rater="scan", value="volume_mm3").axes[0]
    assert ax.get_xlabel() == "mean of s1 and s2 (mm³)"
    assert ax.get_ylabel() == "difference, s1 - s2 (mm³)"
    scores = em.rename(columns={"volume_mm3": "agatston"})
    ax = stats.plot_bland_altman(scores, subject="lesion", rater="scan", value="agatston",
                                 transform="percent").axes[0]
    assert ax.get_xlabel() == "mean of s1 and s2 (Agatston)"
    assert ax.get_ylabel() == "difference, (s1 - s2) / mean (%)"
    ax = stats.plot_bland_altman(em, subject="lesion", rater="scan", value="volume_mm3",
                                 units="mL").axes[0]
    assert ax.get_xlabel() == "mean of s1 and s2 (mL)"

    table = stats.transition_table(np.array([0, 1, 1]), np.array([0, 1, 0]))
    fig = stats.plot_transition_heatmap(table, value="row_share")
    assert fig.axes[1].get_ylabel() == "share of the row's subjects (scan A category)"
    assert fig.axes[0].get_xlabel() == "category, scan B"


@pytest.mark.parametrize("column, label", [
    ("true_volume_mm3", "true volume (mm³)"),
    ("mass_score_mg", "mass score (mg)"),
    ("density_mg_cm3", "density (mg HA/cm³)"),
    ("diameter_mm", "diameter (mm)"),
    ("peak_hu", "peak (HU)"),
    ("agatston", "Agatston score"),
    ("count", "number of subjects"),
    ("volume_ratio", "volume ratio"),
    ("err", "err"),
])
def test_axis_label_reads_column_names(column, label):
    from pvcalc.stats._plots import _axis_label

    assert _axis_label(column) == label
