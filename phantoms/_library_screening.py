"""The coronary calcium burden of a lung-screening population, from published measurements.

Used by :func:`phantoms.library.virtual_patient` with ``population="screening"``: each
virtual patient draws its total Agatston score and its number of calcified lesions from
distributions set by what was measured in participants of the Dutch-Belgian NELSON
lung-cancer screening trial, the population of the interscan study that clinical scoring
in non-gated low-dose chest CT is compared with (``validation/interscan_population.md``).

Sources (each number below is quoted from them; nothing is fitted to interscan results):

- Jacobs PC et al., AJR Am J Roentgenol 2010;194:1244-9 (doi:10.2214/AJR.09.3047):
  584 NELSON participants scanned twice; an Agatston score > 0 in 75.8% of the baseline
  scans.
- Takx RAP et al., PLoS ONE 2014;9:e91239 (doi:10.1371/journal.pone.0091239): 1749
  NELSON low-dose chest CT scans; median Agatston score 39.6 (25th-75th percentile
  0-345.9), median number of calcifications 2 (0-4).

Model (the simplest one that reproduces these numbers):

- total = 0 with probability ``P_ZERO`` = 1 - 0.758; otherwise log-normal, with its two
  parameters solved so that the population's median is 39.6 and its 75th percentile
  345.9 (the share of zeros moves these to the conditional quantiles
  (0.5 - P_ZERO) / (1 - P_ZERO) and (0.75 - P_ZERO) / (1 - P_ZERO));
- number of lesions = 0 for a total of 0, else 1 + a geometric count with success
  probability ``p`` solved so that the population's 75th percentile is 4 lesions (its
  median is then 2, as measured);
- the two are comonotone (one uniform variate draws both): a patient with more calcium
  has at least as many lesions, which the medians and quartiles alone cannot fix; this
  is an assumption of the model, not a measurement.
"""

from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["SCREENING_SOURCES", "screening_burden", "screening_parameters"]

#: The published numbers the model is set from (see the module docstring).
SCREENING_SOURCES = {
    "share_with_calcium": 0.758,          # Jacobs et al. 2010, baseline scans with Agatston > 0
    "median_agatston": 39.6,              # Takx et al. 2014
    "p75_agatston": 345.9,                # Takx et al. 2014
    "median_n_lesions": 2,                # Takx et al. 2014
    "p75_n_lesions": 4,                   # Takx et al. 2014
}
#: Most lesions one screening patient gets (as the category-4 patients: 4-12); 3.6% of the
#: patients with calcium would have more.
MAX_SCREENING_LESIONS = 12


def screening_parameters(sources=None):
    """Parameters of the screening burden model solved from the published numbers.

    Parameters
    ----------
    sources : dict, optional
        The numbers of :data:`SCREENING_SOURCES` (default).

    Returns
    -------
    dict
        ``p_zero`` (share with total 0), ``mu`` and ``sigma`` (log-normal of a non-zero
        total, natural log of Agatston units) and ``p_geometric`` (success probability
        of the lesion count above one).

    Examples
    --------
    >>> p = screening_parameters()
    >>> round(p["p_zero"], 3), round(p["sigma"], 2), round(p["p_geometric"], 3)
    (0.242, 2.54, 0.242)
    """
    s = dict(SCREENING_SOURCES if sources is None else sources)
    p0 = 1.0 - s["share_with_calcium"]
    q50 = (0.5 - p0) / (1.0 - p0)
    q75 = (0.75 - p0) / (1.0 - p0)
    z50, z75 = NormalDist().inv_cdf(q50), NormalDist().inv_cdf(q75)
    sigma = math.log(s["p75_agatston"] / s["median_agatston"]) / (z75 - z50)
    mu = math.log(s["median_agatston"]) - sigma * z50
    # P(n <= k | calcium) = 1 - (1 - p)^k for n = 1 + geometric: the 75th percentile of
    # the population is p75_n_lesions where that conditional share reaches q75
    p_geo = 1.0 - (1.0 - q75) ** (1.0 / s["p75_n_lesions"])
    return {"p_zero": p0, "mu": mu, "sigma": sigma, "p_geometric": p_geo}


_PARAMETERS = screening_parameters()


def screening_burden(u):
    """Total Agatston score and number of lesions of a screening patient.

    Parameters
    ----------
    u : float
        A uniform variate in [0, 1) (the patient's draw).

    Returns
    -------
    (float, int)
        The target total Agatston score (0 for ``u < p_zero``) and the number of
        lesions (0 with a total of 0, else 1 to :data:`MAX_SCREENING_LESIONS`).

    Examples
    --------
    >>> screening_burden(0.1)
    (0.0, 0)
    >>> total, n = screening_burden(0.5)
    >>> round(total, 1), n
    (39.6, 2)
    """
    p = _PARAMETERS
    if u < p["p_zero"]:
        return 0.0, 0
    v = min((u - p["p_zero"]) / (1.0 - p["p_zero"]), 1.0 - 1e-12)
    total = math.exp(p["mu"] + p["sigma"] * NormalDist().inv_cdf(v))
    n = 1 + int(math.floor(math.log1p(-v) / math.log1p(-p["p_geometric"])))
    return total, min(n, MAX_SCREENING_LESIONS)
