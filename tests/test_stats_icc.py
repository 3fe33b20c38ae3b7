"""ICC: published Shrout & Fleiss / psych values, slow reference, mixed path."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pvcalc.stats import icc

# Shrout & Fleiss (1979) Table 2: 6 targets x 4 judges.
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
               [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float)


def test_shrout_fleiss_published_icc_values():
    r = icc(SF)
    assert r["type"].tolist() == ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
    assert r["mcgraw_wong"].tolist() == ["ICC(1)", "ICC(A,1)", "ICC(C,1)", "ICC(k)",
                                         "ICC(A,k)", "ICC(C,k)"]
    np.testing.assert_allclose(r["icc"], [0.1657, 0.2898, 0.7148, 0.4428, 0.6201, 0.9093],
                               atol=5e-5)


def test_shrout_fleiss_matches_psych_printed_f_p_and_ci():
    # psych::ICC(ratings) output for the same table as printed in
    # dwoll/RExRepos md/interRaterICC.md (psych rounds its printout).
    r = icc(SF)
    np.testing.assert_allclose(r["f"], [1.8, 11.0, 11.0, 1.8, 11.0, 11.0], atol=0.05)
    np.testing.assert_array_equal(r["df1"], [5] * 6)
    np.testing.assert_array_equal(r["df2"], [18, 15, 15, 18, 15, 15])
    np.testing.assert_allclose(r["p_value"], [0.16477, 0.00013, 0.00013, 0.16477,
                                              0.00013, 0.00013], atol=5e-6)
    np.testing.assert_allclose(r["ci_low"], [-0.133, 0.019, 0.342, -0.884, 0.071, 0.676],
                               atol=5e-4)
    np.testing.assert_allclose(r["ci_high"], [0.72, 0.76, 0.95, 0.91, 0.93, 0.99],
                               atol=5e-3)


def _slow_icc(y):
    """Loop-based two-way ANOVA, written from the textbook definitions."""
    n, k = y.shape
    grand = sum(y[i, j] for i in range(n) for j in range(k)) / (n * k)
    rows = [sum(y[i, j] for j in range(k)) / k for i in range(n)]
    cols = [sum(y[i, j] for i in range(n)) / n for j in range(k)]
    bms = k * sum((r - grand) ** 2 for r in rows) / (n - 1)
    jms = n * sum((c - grand) ** 2 for c in cols) / (k - 1)
    wms = sum((y[i, j] - rows[i]) ** 2 for i in range(n) for j in range(k)) / (n * (k - 1))
    ems = sum((y[i, j] - rows[i] - cols[j] + grand) ** 2
              for i in range(n) for j in range(k)) / ((n - 1) * (k - 1))
    return [(bms - wms) / (bms + (k - 1) * wms),
            (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n),
            (bms - ems) / (bms + (k - 1) * ems),
            (bms - wms) / bms,
            (bms - ems) / (bms + (jms - ems) / n),
            (bms - ems) / bms]


@pytest.mark.parametrize("shape", [(7, 2), (15, 3), (30, 5)])
def test_against_slow_reference(shape):
    rng = np.random.default_rng(sum(shape))
    y = rng.normal(size=(shape[0], 1)) * 2 + rng.normal(size=shape) + rng.normal(size=shape[1])
    np.testing.assert_allclose(icc(y)["icc"], _slow_icc(y), rtol=1e-10)


def test_long_frame_and_groupby_match_array_input():
    rng = np.random.default_rng(1)
    frames = []
    for m in ("em", "clinical"):
        y = rng.normal(size=(12, 1)) + rng.normal(size=(12, 3))
        frames.append(pd.DataFrame({"method": m, "lesion": np.repeat(np.arange(12), 3),
                                    "repeat": np.tile(["r1", "r2", "r3"], 12),
                                    "mass_mg": y.ravel()}))
    df = pd.concat(frames).sample(frac=1.0, random_state=0)  # row order must not matter
    r = icc(df, subject="lesion", rater="repeat", value="mass_mg", groupby=["method"])
    assert r["method"].tolist() == ["clinical"] * 6 + ["em"] * 6
    for m, sub in r.groupby("method"):
        wide = (df[df.method == m].pivot(index="lesion", columns="repeat", values="mass_mg")
                .to_numpy())
        ref = icc(wide)
        np.testing.assert_allclose(sub["icc"], ref["icc"], rtol=1e-12)
        np.testing.assert_allclose(sub["ci_low"], ref["ci_low"], rtol=1e-12)


def test_ci_contains_estimate_and_levels_nest():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(25, 1)) + 0.5 * rng.normal(size=(25, 3))
    r95, r80 = icc(y), icc(y, alpha=0.2)
    assert (r95["ci_low"] <= r95["icc"]).all() and (r95["icc"] <= r95["ci_high"]).all()
    assert (r95["ci_low"] <= r80["ci_low"]).all() and (r80["ci_high"] <= r95["ci_high"]).all()


@given(arrays(np.float64, st.integers(2, 20), elements=st.floats(0, 1e4, width=32),
              unique=True), st.integers(2, 5))
@example(subjects=np.array([8486.0, 1e-5]), k=5)  # rounding left mse ~ 1e-13, not 0
def test_identical_ratings_give_one(subjects, k):
    y = np.repeat(subjects[:, None], k, axis=1)
    r = icc(y)
    np.testing.assert_allclose(r["icc"], 1.0)
    np.testing.assert_allclose(r["ci_low"], 1.0)
    np.testing.assert_allclose(r["ci_high"], 1.0)


@given(arrays(np.float64, st.tuples(st.integers(3, 12), st.integers(2, 5)),
              elements=st.floats(-100, 100, allow_nan=False, width=32)),
       st.randoms(use_true_random=False))
def test_rater_permutation_invariance(y, rnd):
    resid = y - y.mean(axis=1, keepdims=True)
    # degenerate draws (no between-subject or no residual variance) are not examples
    assume(np.ptp(y.mean(axis=1)) >= 1e-3 and np.var(resid) >= 1e-3)
    base = icc(y)
    cols = list(range(y.shape[1]))
    rnd.shuffle(cols)
    perm = icc(y[:, cols])
    np.testing.assert_allclose(perm["icc"], base["icc"], rtol=1e-7, atol=1e-9)
    # per-subject reshuffling of the ratings leaves the one-way ICC(1) unchanged
    z = y.copy()
    for row in z:
        rnd.shuffle(row)
    np.testing.assert_allclose(icc(z)["icc"].iloc[[0, 3]], base["icc"].iloc[[0, 3]],
                               rtol=1e-7, atol=1e-9)


def _balanced_frame(n=40, k=3, seed=3):
    rng = np.random.default_rng(seed)
    y = (rng.normal(0, 2, (n, 1)) + rng.normal(0, 1.0, (1, k))
         + rng.normal(0, 1, (n, k)))
    return y, pd.DataFrame({"lesion": np.repeat(np.arange(n), k),
                            "repeat": np.tile(np.arange(k), n), "v": y.ravel()})


def test_mixed_agrees_with_anova_on_balanced_data():
    y, df = _balanced_frame()
    a = icc(y).set_index("type")
    m = icc(df, subject="lesion", rater="repeat", value="v", method="mixed").set_index("type")
    assert list(m.index) == ["ICC1", "ICC2", "ICC3"]
    np.testing.assert_allclose(m["icc"], a.loc[["ICC1", "ICC2", "ICC3"], "icc"], atol=2e-3)
    assert (m["estimator"] == "mixed").all() and m["ci_low"].isna().all()


def test_mixed_handles_missing_cells_anova_refuses():
    _, df = _balanced_frame(seed=4)
    holes = df.drop(index=[1, 5, 20, 44]).reset_index(drop=True)
    with pytest.raises(ValueError, match="lack a rating.*method='mixed'"):
        icc(holes, subject="lesion", rater="repeat", value="v")
    m = icc(holes, subject="lesion", rater="repeat", value="v", method="mixed")
    full = icc(df, subject="lesion", rater="repeat", value="v")
    np.testing.assert_allclose(m["icc"], full["icc"].iloc[:3], atol=0.05)
    dropped = icc(holes, subject="lesion", rater="repeat", value="v", missing="drop")
    assert dropped["n_subjects"].iloc[0] == 40 - 4
