"""Agatston risk categories."""

from __future__ import annotations

import numpy as np

#: Named risk schemes: (category labels, bin edges, edge rule).
#: ``"upper"``: categories are (edge_i, edge_i+1] (e.g. 10 is "1-10", 10.4 is
#: "11-100"); ``"lower"``: categories are [edge_i, edge_i+1) (e.g. 100 is
#: "100-299"). A score of exactly 0 is always the first category.
RISK_SCHEMES = {
    # Rumberger et al., Mayo Clin Proc 1999;74:243 (doi:10.4065/74.3.243)
    "standard": (("0", "1-10", "11-100", "101-400", ">400"), (0.0, 10.0, 100.0, 400.0), "upper"),
    # CAC-DRS A0-A3, Hecht et al., J Cardiovasc Comput Tomogr 2018;12:185
    # (doi:10.1016/j.jcct.2018.03.008)
    "cac_drs": (("0", "1-99", "100-299", ">=300"), (0.0, 100.0, 300.0), "lower"),
    # 2018 AHA/ACC cholesterol guideline (Grundy et al., J Am Coll Cardiol
    # 2019;73:e285): CAC 0, 1-99, >= 100
    "acc_aha_2018": (("0", "1-99", ">=100"), (0.0, 100.0), "lower"),
}


def risk_category(agatston, scheme="standard", *, round_first=False):
    """Risk category of an Agatston score.

    Parameters
    ----------
    agatston : float or array_like of float
        Agatston score(s), >= 0 (dimensionless).
    scheme : {"standard", "cac_drs", "acc_aha_2018"}
        "standard": 0, 1-10, 11-100, 101-400, >400 (Rumberger et al. 1999).
        "cac_drs": 0, 1-99, 100-299, >=300 (CAC-DRS, Hecht et al. 2018).
        "acc_aha_2018": 0, 1-99, >=100.
    round_first : bool, optional
        Round half up to an integer before classifying, as a report printing
        integer scores would (then 0.4 is "0" and 10.4 is "1-10").

    Returns
    -------
    str or numpy.ndarray of str
        The category label(s).

    Notes
    -----
    Agatston scores are not integers, so the integer ranges of the schemes are
    read as intervals on the real line. "standard" is upper-inclusive:
    0 is "0", (0, 10] is "1-10", (10, 100] is "11-100", (100, 400] is
    "101-400", above 400 is ">400"; so 10.4 is "11-100" and 0.3 is "1-10".
    "cac_drs" and "acc_aha_2018" are lower-inclusive: (0, 100) is "1-99",
    [100, 300) is "100-299", and so on.

    Examples
    --------
    >>> risk_category(10.0), risk_category(10.4), risk_category(10.4, round_first=True)
    ('1-10', '11-100', '1-10')
    >>> risk_category([0, 99.5, 100, 300], scheme="cac_drs").tolist()
    ['0', '1-99', '100-299', '>=300']
    """
    if scheme not in RISK_SCHEMES:
        raise ValueError(
            f"unknown risk scheme {scheme!r}; valid schemes are {sorted(RISK_SCHEMES)}")
    try:
        x = np.asarray(agatston, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"agatston must be a number or an array of numbers, got {agatston!r}") from None
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(
            f"agatston must be finite and >= 0, got {agatston!r}")
    if round_first:
        x = np.floor(x + 0.5)
    names, edges, rule = RISK_SCHEMES[scheme]
    side = "left" if rule == "upper" else "right"
    idx = np.searchsorted(np.asarray(edges), x, side=side)
    idx = np.where(x == 0, 0, np.maximum(idx, 1))
    if x.ndim == 0:
        return names[int(idx)]
    return np.asarray(names, dtype=object)[idx]
