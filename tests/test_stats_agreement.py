"""Interscan difference, repeatability, Bland-Altman and MESA limits."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pvcalc.stats import (
    bland_altman,
    interscan_difference,
    interscan_summary,
    mesa_change_exceeds_limit,
    mesa_repeatability_limit,
    repeatability,
)

scores = arrays(np.float64, st.integers(2, 30), elements=st.floats(0, 1e4, width=32))


# ---------------------------------------------------------------- interscan
def test_interscan_hand_values_and_both_zero():
    r = interscan_difference([100.0, 0.0, 10.0, 0.0], [80.0, 0.0, 30.0, 5.0])
    np.testing.assert_allclose(r["relative_difference_pct"], [20 / 90 * 100, 0, 100, 200])
    assert r["both_zero"].tolist() == [False, True, False, False]
    np.testing.assert_allclose(r["abs_difference"], [20, 0, 20, 5])


@given(scores, st.data())
def test_interscan_symmetric_scale_invariant_zero_for_identical(a, data):
    b = data.draw(arrays(np.float64, a.size, elements=st.floats(0, 1e4, width=32)))
    ab = interscan_difference(a, b)["relative_difference_pct"].to_numpy()
    ba = interscan_difference(b, a)["relative_difference_pct"].to_numpy()
    np.testing.assert_allclose(ab, ba, rtol=1e-12)
    scaled = interscan_difference(a * 3.7, b * 3.7)["relative_difference_pct"].to_numpy()
    np.testing.assert_allclose(scaled, ab, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(interscan_difference(a, a)["relative_difference_pct"], 0.0)
    assert (ab <= 200.0 + 1e-9).all()


def test_interscan_long_frame_groupby_and_summary():
    df = pd.DataFrame({
        "method": ["m1"] * 6 + ["m2"] * 6,
        "lesion": [1, 1, 2, 2, 3, 3] * 2,
        "scan": ["s1", "s2"] * 6,
        "agatston": [100, 80, 0, 0, 10, 30, 100, 100, 50, 60, 0, 0.0]})
    per = interscan_difference(df, subject="lesion", rater="scan", value="agatston",
                               groupby="method")
    assert len(per) == 6 and per["subject"].tolist() == [1, 2, 3] * 2
    s = interscan_summary(df, subject="lesion", rater="scan", value="agatston",
                          groupby="method")
    assert s["n_both_zero"].tolist() == [1, 1]
    m1 = np.array([20 / 90 * 100, 0.0, 100.0])
    np.testing.assert_allclose(s["mean_relative_difference_pct"].iloc[0], m1.mean())
    np.testing.assert_allclose(s["median_relative_difference_pct"].iloc[0], np.median(m1))
    ex = interscan_summary(df, subject="lesion", rater="scan", value="agatston",
                           groupby="method", exclude_both_zero=True)
    assert ex["n_subjects"].tolist() == [2, 2]
    np.testing.assert_allclose(ex["mean_relative_difference_pct"].iloc[0], m1[[0, 2]].mean())


def test_interscan_median_ci_uses_order_statistics():
    # for n = 20 the distribution-free 95 % CI of the median is (x_(6), x_(15))
    x = np.arange(1.0, 21.0)
    a = np.full(20, 100.0)
    b = 100.0 - x  # relative differences increasing with x
    rel = interscan_difference(a, b)["relative_difference_pct"].sort_values().to_numpy()
    s = interscan_summary(a, b)
    assert s["median_ci_low"].iloc[0] == rel[5] and s["median_ci_high"].iloc[0] == rel[14]


# ------------------------------------------------------------ repeatability
def test_repeatability_two_repeats_equals_sum_d2_over_2n():
    rng = np.random.default_rng(0)
    y = rng.normal(50, 10, (30, 1)) + rng.normal(0, 2, (30, 2))
    r = repeatability(y)
    d = y[:, 0] - y[:, 1]
    sw = np.sqrt(np.sum(d ** 2) / (2 * 30))
    np.testing.assert_allclose(r["within_subject_sd"], sw, rtol=1e-12)
    np.testing.assert_allclose(r["repeatability_coefficient"], 1.959963984540054 * np.sqrt(2) * sw)
    np.testing.assert_allclose(r["repeatability_coefficient"] / r["within_subject_sd"], 2.77,
                               atol=0.002)


def test_repeatability_unbalanced_against_loop_and_chi2_ci():
    from scipy import stats
    rows = [("a", 1.0), ("a", 1.5), ("a", 0.7), ("b", 4.0), ("b", 5.0), ("c", 9.0),
            ("d", 2.0), ("d", 2.2), ("d", 2.1), ("d", 1.8)]
    df = pd.DataFrame(rows, columns=["lesion", "v"])
    r = repeatability(df, subject="lesion", value="v")
    ss = 0.0
    for _, g in df.groupby("lesion"):
        ss += ((g.v - g.v.mean()) ** 2).sum()
    dof = len(df) - 4
    assert r["df"].iloc[0] == dof == 6
    np.testing.assert_allclose(r["within_subject_sd"], np.sqrt(ss / dof))
    np.testing.assert_allclose(r["within_subject_sd_ci_low"],
                               np.sqrt(ss / stats.chi2.ppf(0.975, dof)))
    np.testing.assert_allclose(r["within_subject_sd_ci_high"],
                               np.sqrt(ss / stats.chi2.ppf(0.025, dof)))


def test_repeatability_ci_coverage_monte_carlo():
    rng = np.random.default_rng(11)
    n_rep = 400
    y = rng.normal(0, 5, (n_rep, 10, 1)) + rng.normal(0, 1.0, (n_rep, 10, 3))
    df = pd.DataFrame({"rep": np.repeat(np.arange(n_rep), 30),
                       "subject": np.tile(np.repeat(np.arange(10), 3), n_rep),
                       "v": y.ravel()})
    r = repeatability(df, subject="subject", value="v", groupby="rep")
    cover = ((r["within_subject_sd_ci_low"] < 1) & (r["within_subject_sd_ci_high"] > 1)).mean()
    assert 0.92 < cover < 0.98


# ------------------------------------------------------------- Bland-Altman
def test_bland_altman_hand_computation():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    b = np.array([1.5, 1.5, 3.5, 3.0, 6.0])
    r = bland_altman(a, b).iloc[0]
    # d = [-0.5, 0.5, -0.5, 1, -1]; mean -0.1; sum of squared deviations 2.7
    sd = np.sqrt(2.7 / 4)
    t4, z = 2.7764451051977987, 1.959963984540054
    assert r["bias"] == pytest.approx(-0.1)
    assert r["sd_difference"] == pytest.approx(sd)
    assert r["bias_ci_low"] == pytest.approx(-0.1 - t4 * sd / np.sqrt(5))
    assert r["loa_low"] == pytest.approx(-0.1 - z * sd)
    assert r["loa_high"] == pytest.approx(-0.1 + z * sd)
    se = np.sqrt(3 * sd ** 2 / 5)
    assert r["loa_high_ci_low"] == pytest.approx(-0.1 + z * sd - t4 * se)
    assert r["loa_low_ci_high"] == pytest.approx(-0.1 - z * sd + t4 * se)


@given(scores, st.data())
def test_bland_altman_mirror(a, data):
    b = data.draw(arrays(np.float64, a.size, elements=st.floats(0, 1e4, width=32)))
    if np.ptp(a - b) == 0:
        return
    for transform in ("none", "percent"):
        ab = bland_altman(a, b, transform=transform).iloc[0]
        ba = bland_altman(b, a, transform=transform).iloc[0]
        assert ba["bias"] == pytest.approx(-ab["bias"], abs=1e-9)
        assert ba["sd_difference"] == pytest.approx(ab["sd_difference"])
        assert ba["loa_low"] == pytest.approx(-ab["loa_high"], abs=1e-9)
        assert ba["loa_high_ci_high"] == pytest.approx(-ab["loa_low_ci_low"], abs=1e-9)


def test_bland_altman_log_and_percent():
    rng = np.random.default_rng(2)
    a = rng.uniform(10, 100, 50)
    b = a * rng.lognormal(0.05, 0.1, 50)
    r = bland_altman(a, b, transform="log").iloc[0]
    d = np.log(a) - np.log(b)
    assert r["scale"] == "ratio"
    assert r["bias"] == pytest.approx(np.exp(d.mean()))
    assert r["loa_high"] == pytest.approx(np.exp(d.mean() + 1.959963984540054 * d.std(ddof=1)))
    p = bland_altman(a, b, transform="percent").iloc[0]
    assert p["bias"] == pytest.approx(np.mean((a - b) / ((a + b) / 2) * 100))


def test_bland_altman_exact_loa_ci_close_to_approx_for_large_n_and_covers():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, 3000)
    ex = bland_altman(a, np.zeros_like(a), loa_ci="exact").iloc[0]
    ap = bland_altman(a, np.zeros_like(a)).iloc[0]
    width_ex = ex["loa_high_ci_high"] - ex["loa_high_ci_low"]
    width_ap = ap["loa_high_ci_high"] - ap["loa_high_ci_low"]
    assert width_ex == pytest.approx(width_ap, rel=0.05)
    # coverage of the true upper limit (mu + 1.96 sigma = 1.96) with n = 10
    n_rep = 600
    d = rng.normal(0, 1, (n_rep, 10))
    df = pd.DataFrame({"rep": np.repeat(np.arange(n_rep), 20),
                       "subject": np.tile(np.repeat(np.arange(10), 2), n_rep),
                       "scan": np.tile(["a", "b"], 10 * n_rep),
                       "v": np.stack([d, np.zeros_like(d)], axis=-1).ravel()})
    r = bland_altman(df, subject="subject", rater="scan", value="v", groupby="rep",
                     loa_ci="exact")
    true = 1.959963984540054
    cover = ((r["loa_high_ci_low"] < true) & (r["loa_high_ci_high"] > true)).mean()
    assert 0.92 < cover < 0.98


def test_bland_altman_long_frame_rater_order():
    df = pd.DataFrame({"lesion": [1, 1, 2, 2, 3, 3], "scan": ["s2", "s1"] * 3,
                       "v": [2.0, 1.0, 4.0, 3.5, 6.0, 6.5]})
    r = bland_altman(df, subject="lesion", rater="scan", value="v").iloc[0]
    assert (r["rater_a"], r["rater_b"]) == ("s1", "s2")
    assert r["bias"] == pytest.approx(np.mean([1 - 2, 3.5 - 4, 6.5 - 6]))
    r2 = bland_altman(df, subject="lesion", rater="scan", value="v",
                      raters=("s2", "s1")).iloc[0]
    assert r2["bias"] == pytest.approx(-r["bias"])


# --------------------------------------------------------------------- MESA
def test_mesa_limits_hand_values():
    # Chung et al. 2008: 0.17 AS + 4.89 sqrt(AS) + 0.44 BMI - 10.84
    assert mesa_repeatability_limit(100.0, 25.0) == pytest.approx(17 + 48.9 + 11 - 10.84)
    assert mesa_repeatability_limit(400.0, 30.0, score_type="volume") == pytest.approx(
        0.16 * 400 + 4.30 * 20 + 0.23 * 30 - 5.00)
    lim = mesa_repeatability_limit([0.0, 100.0], [25.0, 25.0])
    assert lim.shape == (2,)
    assert mesa_change_exceeds_limit([100.0, 100.0, 100.0], [160.0, 170.0, 30.0], 25.0).tolist() \
        == [False, True, True]


def test_mesa_rejects_negative_scores_and_bmi():
    with pytest.raises(ValueError, match="score must be non-negative"):
        mesa_repeatability_limit(-1.0, 25.0)
    with pytest.raises(ValueError, match="bmi must be strictly positive"):
        mesa_repeatability_limit(10.0, 0.0)
    with pytest.raises(ValueError, match="score_type must be"):
        mesa_repeatability_limit(10.0, 20.0, score_type="mass")


@pytest.mark.parametrize("n, k_published", [(10, 2.911), (20, 2.396)])
def test_exact_loa_bound_equals_published_one_sided_tolerance_factor(n, k_published):
    # With alpha = 0.10 the limit is mean + 1.645 SD (95 % content) and the
    # upper 95 % confidence bound of it is mean + k SD with k the exact
    # one-sided normal tolerance factor (95 % content, 95 % confidence),
    # tabulated e.g. in Odeh & Owen (1980) and ISO 16269-6: 2.911 (n = 10),
    # 2.396 (n = 20).
    a = np.linspace(-1.0, 1.0, n)
    a = (a - a.mean()) / a.std(ddof=1)  # mean 0, SD 1 exactly
    r = bland_altman(a, np.zeros(n), alpha=0.10, loa_ci="exact").iloc[0]
    assert r["loa_high_ci_high"] == pytest.approx(k_published, abs=5e-4)
    assert r["loa_low_ci_low"] == pytest.approx(-k_published, abs=5e-4)
