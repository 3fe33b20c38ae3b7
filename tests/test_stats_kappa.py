"""Kappa, reclassification and transition table."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import cohens_kappa

from pvcalc.stats import kappa, reclassification, transition_table, weighted_kappa


def _expand(table, labels):
    a, b = [], []
    for i, row in enumerate(table):
        for j, c in enumerate(row):
            a += [labels[i]] * c
            b += [labels[j]] * c
    return np.array(a, dtype=object), np.array(b, dtype=object)


def test_hand_computed_unweighted_linear_quadratic():
    # table (0,0), (1,1), (2,3), (3,3): p_o = 3/4, p_e = 1/4 -> 2/3; linear
    # disagreement 0.25 / expected 1.375 -> 9/11; quadratic 0.25 / 3 -> 11/12
    r = kappa([0, 1, 2, 3], [0, 1, 3, 3]).set_index("weights")
    np.testing.assert_allclose(r.loc[["none", "linear", "quadratic"], "kappa"],
                               [2 / 3, 9 / 11, 11 / 12], rtol=1e-12)
    assert weighted_kappa([0, 1, 2, 3], [0, 1, 3, 3])["kappa"].iloc[0] == pytest.approx(9 / 11)


def test_published_irr_kappa2_values():
    # irr::kappa2 printouts in dwoll/RExRepos md/interRaterICC.md
    a, b = _expand([[53, 5, 2], [11, 14, 5], [1, 6, 3]], ["V", "N", "P"])
    r = kappa(a, b, categories=["V", "N", "P"], weights="none").iloc[0]
    assert r["kappa"] == pytest.approx(0.429, abs=5e-4)
    assert r["z"] == pytest.approx(5.46, abs=5e-3)
    assert r["p_value"] == pytest.approx(4.79e-08, rel=2e-3)
    t6 = [[5, 8, 1, 2, 4, 2], [3, 5, 3, 5, 5, 0], [1, 2, 6, 11, 2, 1],
          [0, 1, 5, 4, 3, 3], [0, 0, 1, 2, 5, 2], [0, 0, 1, 2, 1, 4]]
    a, b = _expand(t6, list(range(6)))
    r = weighted_kappa(a, b, weights="linear").iloc[0]
    assert r["kappa"] == pytest.approx(0.316, abs=5e-4)
    assert r["z"] == pytest.approx(5.38, abs=5e-3)
    assert r["p_value"] == pytest.approx(7.3e-08, rel=1e-2)


@pytest.mark.parametrize("w", ["none", "linear", "quadratic"])
def test_matches_statsmodels_directly(w):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 5, 200)
    b = np.clip(a + rng.integers(-1, 2, 200), 0, 4)
    table = pd.crosstab(a, b).reindex(index=range(5), columns=range(5), fill_value=0)
    ref = cohens_kappa(table.to_numpy(), wt=None if w == "none" else w)
    r = kappa(a, b, weights=w).iloc[0]
    assert r["kappa"] == pytest.approx(ref.kappa, rel=1e-12)
    assert r["std_error"] == pytest.approx(ref.std_kappa, rel=1e-12)
    assert r["ci_low"] == pytest.approx(ref.kappa_low, rel=1e-9)
    assert r["ci_high"] == pytest.approx(ref.kappa_upp, rel=1e-9)


def test_ordered_categorical_column_and_groupby():
    cats = pd.CategoricalDtype(["0", "1-10", "11-100", "101-400", ">400"], ordered=True)
    df = pd.DataFrame({
        "method": ["m"] * 8, "patient": [1, 1, 2, 2, 3, 3, 4, 4],
        "scan": ["A", "B"] * 4,
        "risk": pd.Categorical(["0", "1-10", "11-100", "11-100", ">400", "101-400",
                                "1-10", "1-10"], dtype=cats)})
    k = kappa(df, subject="patient", rater="scan", value="risk", groupby="method")
    assert (k["n_categories"] == 5).all() and (k["method"] == "m").all()
    rc = reclassification(df, subject="patient", rater="scan", value="risk").iloc[0]
    assert (rc["n_reclassified"], rc["n_up"], rc["n_down"]) == (2, 1, 1)
    assert rc["reclassified_share"] == 0.5
    t = transition_table(df, subject="patient", rater="scan", value="risk")
    assert len(t) == 25 and t["count"].sum() == 4
    cell = t[(t.category_a == ">400") & (t.category_b == "101-400")]
    assert cell["count"].iloc[0] == 1 and cell["row_share"].iloc[0] == 1.0
    # nobody is in 101-400 on scan A: that row's shares are undefined (NaN)
    assert t[t.category_a == "101-400"]["row_share"].isna().all()
    assert not t[t.category_a == "0"]["row_share"].isna().any()


def test_transition_table_matches_crosstab_and_wilson_ci():
    from statsmodels.stats.proportion import proportion_confint
    rng = np.random.default_rng(8)
    a = rng.integers(0, 4, 300)
    b = np.clip(a + rng.integers(-1, 2, 300), 0, 3)
    t = transition_table(a, b)
    wide = t.pivot(index="category_a", columns="category_b", values="count")
    np.testing.assert_array_equal(wide.to_numpy(), pd.crosstab(a, b).to_numpy())
    r = reclassification(a, b).iloc[0]
    moved = int((a != b).sum())
    lo, hi = proportion_confint(moved, 300, alpha=0.05, method="wilson")
    # Wilson interval by hand for the same count
    p, z, n = moved / 300, 1.959963984540054, 300
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert r["ci_low"] == pytest.approx(centre - half) == pytest.approx(lo)
    assert r["ci_high"] == pytest.approx(centre + half)


def test_unknown_category_is_an_error():
    with pytest.raises(ValueError, match="not in categories"):
        kappa(["a", "b", "c"], ["a", "b", "b"], categories=["a", "b"])
