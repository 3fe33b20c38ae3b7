"""Bad input gives clear errors naming the parameter and the fix."""

import numpy as np
import pandas as pd
import pytest

from pvcalc import stats

LONG = pd.DataFrame({"lesion": [1, 1, 2, 2, 3, 3], "scan": ["a", "b"] * 3,
                     "v": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0]})


@pytest.mark.parametrize("func", [stats.bland_altman, stats.interscan_difference])
def test_nan_rejected(func):
    with pytest.raises(ValueError, match=r"a contains 1 NaN or infinite value\(s\)"):
        func([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])


def test_nan_in_frame_rejected():
    bad = LONG.assign(v=[1.0, np.nan, 3.0, 4.0, 5.0, 6.0])
    with pytest.raises(ValueError, match="column 'v' contains 1 NaN"):
        stats.icc(bad, subject="lesion", rater="scan", value="v")
    with pytest.raises(ValueError, match="column 'v' contains 1 NaN"):
        stats.repeatability(bad, subject="lesion", value="v")
    with pytest.raises(ValueError, match="contains 1 NaN"):
        stats.accuracy([1.0, np.nan], [1.0, 2.0])


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="a and b must have the same length.*got 3 and 2"):
        stats.bland_altman([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="estimates and truth must have the same length"):
        stats.accuracy([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        stats.kappa([1, 2, 3], [1, 2])


def test_single_subject():
    with pytest.raises(ValueError, match="at least 2 subjects are needed, got 1"):
        stats.bland_altman([1.0], [2.0])
    with pytest.raises(ValueError, match="at least 2 subjects are needed, got 1"):
        stats.icc([[1.0, 2.0]])
    one = LONG[LONG.lesion == 1]
    with pytest.raises(ValueError, match="at least 2 subjects"):
        stats.repeatability(one, subject="lesion", value="v")
    with pytest.raises(ValueError, match="at least 2 subjects"):
        stats.interscan_summary(one, subject="lesion", rater="scan", value="v")


def test_negative_scores_where_meaningless():
    with pytest.raises(ValueError, match="b must be non-negative.*clip estimates at 0"):
        stats.interscan_difference([1.0, 2.0], [1.0, -2.0])
    with pytest.raises(ValueError, match="must be non-negative"):
        stats.bland_altman([1.0, 2.0], [1.0, -2.0], transform="percent")
    with pytest.raises(ValueError, match="strictly positive.*log transform"):
        stats.bland_altman([1.0, 2.0], [1.0, 0.0], transform="log")
    with pytest.raises(ValueError, match="truth must be strictly positive"):
        stats.accuracy([1.0, 2.0], [0.0, 2.0])
    # accuracy takes an estimate below 0 (an unclipped integrated mass) as it is
    assert stats.accuracy([-1.0, 2.0], [1.0, 2.0])["bias"].iloc[0] == -1.0
    # Bland-Altman on raw differences accepts negative values (e.g. HU)
    assert len(stats.bland_altman([-1.0, 2.0, 0.5], [1.0, -2.0, 0.4])) == 1


def test_frame_problems():
    with pytest.raises(ValueError, match="column 'mass' given as value= is not in data"):
        stats.icc(LONG, subject="lesion", rater="scan", value="mass")
    with pytest.raises(TypeError, match="data must be a pandas DataFrame"):
        stats.compare_methods({"a": [1]}, value="a")
    dup = pd.concat([LONG, LONG.iloc[:1]])
    with pytest.raises(ValueError, match="subject 1 has 2 rows for scan='a'"):
        stats.icc(dup, subject="lesion", rater="scan", value="v")
    three = pd.concat([LONG, LONG.iloc[:1].assign(scan="c")])
    with pytest.raises(ValueError, match="exactly 2 distinct values.*raters="):
        stats.bland_altman(three, subject="lesion", rater="scan", value="v")
    incomplete = LONG.iloc[:-1]
    with pytest.raises(ValueError, match="1 subject\\(s\\) in group all lack a measurement"):
        stats.bland_altman(incomplete, subject="lesion", rater="scan", value="v")
    nolabel = LONG.assign(scan=["a", None, "a", "b", "a", "b"])
    with pytest.raises(ValueError, match="columns must not contain missing labels"):
        stats.icc(nolabel, subject="lesion", rater="scan", value="v")
    with pytest.raises(ValueError, match=r"raters \['c'\] do not occur in column 'scan'"):
        stats.bland_altman(LONG, subject="lesion", rater="scan", value="v", raters=("a", "c"))
    with pytest.raises(TypeError, match="b must be None"):
        stats.bland_altman(LONG, [1.0, 2.0], subject="lesion", rater="scan", value="v")
    with pytest.raises(TypeError, match="or two arrays a and b"):
        stats.bland_altman([1.0, 2.0])


def test_option_values():
    with pytest.raises(ValueError, match="alpha must be in \\(0, 1\\), got 1.5"):
        stats.icc(np.eye(3) + 1, alpha=1.5)
    with pytest.raises(TypeError, match="alpha must be a float"):
        stats.bland_altman([1.0, 2.0], [2.0, 1.0], alpha="0.05")
    with pytest.raises(ValueError, match="transform must be one of"):
        stats.bland_altman([1.0, 2.0], [2.0, 1.0], transform="sqrt")
    with pytest.raises(ValueError, match="method must be 'anova' or 'mixed'"):
        stats.icc(np.eye(3) + 1, method="reml")
    with pytest.raises(ValueError, match="weights must be among"):
        stats.kappa([0, 1], [1, 0], weights="cubic")
    with pytest.raises(ValueError, match="icc: an array input must be 2-D"):
        stats.icc([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="all values are identical"):
        stats.icc(np.ones((4, 2)))


def test_categorical_ratings_problems():
    with pytest.raises(ValueError, match="a contains 1 missing rating"):
        stats.kappa([0, None, 1], [0, 1, 1])
    df = pd.DataFrame({"p": [1, 1, 1, 2, 2], "scan": ["a", "b", "b", "a", "b"],
                       "risk": ["0", "1-10", "0", "0", "0"]})
    with pytest.raises(ValueError, match="subject 1 has several rows for scan='b'"):
        stats.reclassification(df, subject="p", rater="scan", value="risk")
    with pytest.raises(ValueError, match="lack|incomplete"):
        stats.kappa(df.iloc[[0, 1, 3]], subject="p", rater="scan", value="risk")
