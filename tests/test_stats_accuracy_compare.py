"""Accuracy against truth and method comparison."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from pvcalc.stats import accuracy, compare_methods, compare_methods_mixed


def _study(seed=0):
    rng = np.random.default_rng(seed)
    true = np.tile([0.785, 21.21, 98.17], 20)
    lesion_effect = rng.normal(0, 2.0, true.size)  # shared by all methods
    rows = []
    for m, gain, sd in (("clinical", 0.8, 3.0), ("em", 1.0, 1.0)):
        est = np.clip(gain * true + lesion_effect + rng.normal(0, sd, true.size), 0, None)
        rows.append(pd.DataFrame({"method": m, "lesion": np.arange(true.size),
                                  "size_mm": np.tile([1, 3, 5], 20),
                                  "true_volume_mm3": true, "volume_mm3": est}))
    return pd.concat(rows, ignore_index=True)


def test_accuracy_against_numpy_and_statsmodels_ols():
    df = _study()
    r = accuracy(df, estimate="volume_mm3", true="true_volume_mm3", groupby="method")
    assert r["method"].tolist() == ["clinical", "em"]
    for _, row in r.iterrows():
        sub = df[df.method == row["method"]]
        e, t = sub.volume_mm3.to_numpy(), sub.true_volume_mm3.to_numpy()
        assert row["bias"] == pytest.approx(np.mean(e - t))
        assert row["rmse"] == pytest.approx(np.sqrt(np.mean((e - t) ** 2)))
        assert row["relative_error_pct"] == pytest.approx(np.mean((e - t) / t) * 100)
        assert row["abs_relative_error_pct"] == pytest.approx(np.mean(np.abs(e - t) / t) * 100)
        assert row["detection_rate"] == pytest.approx(np.mean(e > 0))
        ols = sm.OLS(e, sm.add_constant(t)).fit()
        ci = ols.conf_int(0.05)
        assert row["intercept"] == pytest.approx(ols.params[0])
        assert row["slope"] == pytest.approx(ols.params[1])
        assert row["slope_ci_low"] == pytest.approx(ci[1, 0])
        assert row["intercept_ci_high"] == pytest.approx(ci[0, 1])
        assert row["r2"] == pytest.approx(ols.rsquared)
        lo, hi = stats.t.interval(0.95, len(e) - 1, loc=np.mean(e - t),
                                  scale=stats.sem(e - t))
        assert (row["bias_ci_low"], row["bias_ci_high"]) == pytest.approx((lo, hi))


def test_accuracy_stratified_by_two_columns_and_detection_threshold():
    df = _study(1)
    r = accuracy(df, estimate="volume_mm3", true="true_volume_mm3",
                 groupby=["method", "size_mm"], detection_threshold=5.0)
    assert len(r) == 6 and (r["n_lesions"] == 20).all()
    small = r[(r.method == "em") & (r.size_mm == 1)].iloc[0]
    assert small["detection_rate"] < 0.2  # 0.785 mm3 rarely exceeds 5
    assert r[(r.size_mm == 5)]["detection_rate"].eq(1.0).all()


def test_accuracy_exact_estimates():
    t = np.array([1.0, 2.0, 5.0, 10.0])
    r = accuracy(t.copy(), t).iloc[0]
    assert r["bias"] == 0 and r["rmse"] == 0 and r["slope"] == pytest.approx(1.0)
    assert r["r2"] == pytest.approx(1.0) and r["detection_rate"] == 1.0


def test_accuracy_takes_negative_estimates_as_they_are():
    """An integrated method's unclipped mass: -0.3 mg on a 0.157 mg insert (hand values)."""
    est = np.array([-0.3, 0.1, 4.5, 19.0])
    true = np.array([0.157, 0.314, 4.24, 19.63])
    r = accuracy(pd.DataFrame({"e": est, "t": true}), estimate="e", true="t").iloc[0]
    err = est - true
    assert r["bias"] == pytest.approx(err.mean(), rel=1e-14)
    assert r["bias"] == pytest.approx((-0.457 - 0.214 + 0.26 - 0.63) / 4, rel=1e-12)
    assert r["relative_error_pct"] == pytest.approx(100 * np.mean(err / true), rel=1e-14)
    assert r["relative_error_pct"] < -80          # the -291% of the first lesion counts
    assert r["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-14)
    assert r["detected"] == 3 and r["detection_rate"] == 0.75   # -0.3 mg is not detected
    clipped = accuracy(np.clip(est, 0, None), true).iloc[0]
    assert clipped["bias"] > r["bias"]            # clipping would bias the mean error upwards
    with pytest.raises(ValueError, match="finite"):
        accuracy([np.nan, 1.0], [1.0, 1.0])


def test_compare_methods_matches_scipy_and_holm():
    from statsmodels.stats.multitest import multipletests
    df = _study(2)
    df["abs_error"] = (df.volume_mm3 - df.true_volume_mm3).abs()
    df = pd.concat([df, df[df.method == "em"].assign(
        method="em2", abs_error=lambda d: d.abs_error * 1.1 + 0.01)], ignore_index=True)
    r = compare_methods(df, subject="lesion", method="method", value="abs_error")
    assert list(zip(r.method_a, r.method_b)) == [("clinical", "em"), ("clinical", "em2"),
                                                 ("em", "em2")]
    for _, row in r.iterrows():
        a = df[df.method == row.method_a].sort_values("lesion").abs_error.to_numpy()
        b = df[df.method == row.method_b].sort_values("lesion").abs_error.to_numpy()
        assert row["t_p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
        assert row["wilcoxon_p_value"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
        assert row["mean_difference"] == pytest.approx(np.mean(a - b))
    np.testing.assert_allclose(r["t_p_value_holm"],
                               multipletests(r["t_p_value"], method="holm")[1])


def test_compare_methods_mixed_matches_statsmodels():
    df = _study(3)
    df["abs_error"] = (df.volume_mm3 - df.true_volume_mm3).abs()
    t = compare_methods_mixed(df, subject="lesion", method="method", value="abs_error",
                              stratum="size_mm")
    ref = smf.mixedlm("abs_error ~ C(method) * C(size_mm)", df, groups="lesion").fit(reml=True)
    fe = t[t.term != "subject_variance"]
    np.testing.assert_allclose(fe["estimate"], ref.fe_params.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(fe["std_error"], ref.bse_fe.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(fe["p_value"], ref.pvalues[:len(fe)].to_numpy(), rtol=1e-6)
    assert fe["term"].iloc[1] == "C(method)[T.em]"
    assert set(["term", "estimate", "std_error", "z", "p_value", "ci_low",
                "ci_high"]) <= set(t.columns)
    ci = ref.conf_int().iloc[:len(fe)]
    np.testing.assert_allclose(fe["ci_low"], ci[0].to_numpy(), rtol=1e-6)
