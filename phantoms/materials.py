"""Materials: hydroxyapatite (HA) density to CT number by tube voltage, tissue HU.

One table, :data:`HA_HU_PER_MG_CM3`, holds the slope k(kVp) in HU per mg HA/cm3
of calcium hydroxyapatite above a water-equivalent matrix. Everything else in
the simulator that turns a density into HU goes through :func:`hu_per_mg_cm3`,
unless the protocol gives one scanner's own factor (``Protocol.hu_per_mg_ha``,
measured on its rods as (HA rod HU - water rod HU) / rod density); that factor
then replaces the table for every calcium-bearing material of the scan (lesions
and HA rods alike, :func:`density_to_hu`).

How the table was built (both sources are measured values, not a model):

* **120 kVp anchor.** The reference data of the QRM cardiac calcification insert
  scanned on four vendors' scanners (``pvcalc/data/qrm_cci_clinical_scores.csv``,
  column ``c_ha``) give per-scanner mean calibration factors at 120 kVp of
  Canon 0.720, Siemens 0.771, Philips 0.790 and GE 0.896 mg cm^-3 HU^-1; their
  unweighted mean is 0.7942, so k(120) = 1 / 0.7942 = 1.259 HU per mg/cm3 and
  a 200 mg HA/cm3 rod reads 252 HU above water (the per-scanner factors give
  223-278 HU).
* **kVp dependence.** Grani et al. (2018) derived kVp-specific Agatston
  thresholds that keep the same calcium content at 70-135 kVp: 207, 177, 145,
  130 and 119 HU at 70, 80, 100, 120 and 135 kVp. Their ratios to the 120 kVp
  value (130 HU) are the relative HU per unit HA density at each voltage, which
  scale the 120 kVp anchor. 140 kVp is a linear extrapolation of the 120-135 kVp
  step (ratio 0.887); intermediate voltages are linearly interpolated.
  Check against the same reference file: the Siemens scans at 100 kVp give
  c_HA = 0.656, a 100/120 kVp ratio of 1.176 where the table has 1.115 (5%
  lower); the kVp dependence varies between scanners (beam filtration), and
  the table represents an average scanner.

References
----------
.. [1] Grani C, Vontobel J, Benz DC, et al. Ultra-low-dose coronary artery
   calcium scoring using novel scoring thresholds for low tube voltage
   protocols - a pilot study. Eur Heart J Cardiovasc Imaging 2018;19:1362-1371.
   doi:10.1093/ehjci/jey019
.. [2] McCollough CH, Ulzheimer S, Halliburton SS, et al. Coronary artery calcium:
   a multi-institutional, multimanufacturer international standard for
   quantification at cardiac CT. Radiology 2007;243:527-538.
   doi:10.1148/radiol.2432050808
"""

from __future__ import annotations

import math
import numbers

import numpy as np

#: Mean calibration factor c_HA (mg HA cm^-3 per HU) at 120 kVp: unweighted mean
#: of the four scanners' means in the reference QRM CCI data set.
C_HA_120_KVP = 0.7942

#: Grani et al. 2018 kVp-specific thresholds (HU) that represent the same calcium
#: content as 130 HU at 120 kVp; 140 kVp extrapolated from the 120-135 step.
_GRANI_THRESHOLD_HU = {70.0: 207.0, 80.0: 177.0, 100.0: 145.0, 120.0: 130.0,
                       135.0: 119.0}
_KVP_TABLE = np.array([70.0, 80.0, 100.0, 120.0, 135.0, 140.0])
_RATIO_TABLE = np.array([207.0 / 130.0, 177.0 / 130.0, 145.0 / 130.0, 1.0,
                         119.0 / 130.0, 1.0 - (11.0 / 130.0) * (20.0 / 15.0)])

#: k(kVp) in HU per mg HA/cm3: the table every conversion uses (kVp -> k).
HA_HU_PER_MG_CM3 = {float(kv): float(r / C_HA_120_KVP)
                    for kv, r in zip(_KVP_TABLE, _RATIO_TABLE)}

#: Representative tissue CT numbers (HU) for the background.
TISSUE_HU = {
    "air": -1000.0,
    "lung": -850.0,
    "fat": -100.0,
    "water": 0.0,
    "blood": 40.0,
    "soft_tissue": 40.0,
    "bone": 700.0,
}

KVP_RANGE = (70.0, 140.0)

#: Accepted range of a given HU per mg HA/cm3 (``Protocol.hu_per_mg_ha``): a wide
#: bracket around the table's 1.15-2.0 (140-70 kVp) and the 1.12-1.39 that the four
#: scanners' calibration factors give at 120 kVp; outside it a value is a unit mistake
#: (e.g. mg per HU given instead of HU per mg).
HU_PER_MG_HA_RANGE = (0.5, 3.0)


def _check_kvp(kvp):
    try:
        kv = np.asarray(kvp, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"kvp must be a number in kV, got {kvp!r}") from None
    if not np.all(np.isfinite(kv)) or np.any(kv < KVP_RANGE[0]) or np.any(kv > KVP_RANGE[1]):
        raise ValueError(
            f"kvp must lie in {KVP_RANGE[0]:g}-{KVP_RANGE[1]:g} kV (the range of the "
            f"HA table), got {kvp!r}; use a tube voltage within the table")
    return kv


def _check_hu_per_mg_ha(value, name="hu_per_mg_ha"):
    """A given HU per mg HA/cm3 as a float in :data:`HU_PER_MG_HA_RANGE`."""
    lo, hi = HU_PER_MG_HA_RANGE
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in HU per mg HA/cm3 (e.g. 1.35), got "
                        f"{type(value).__name__} {value!r}; or None for the kVp table")
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(
            f"{name} must be a finite number in [{lo}, {hi}] HU per mg HA/cm3, got {value!r}; "
            "measure it as (HA rod HU - water rod HU) / rod density, e.g. (310 - 40) / 200 = "
            "1.35 (its inverse, c_HA in mg cm^-3 HU^-1, is about 0.7-0.9), or pass None for "
            "the kVp table")
    return v


def hu_per_mg_cm3(kvp):
    """HU per mg HA/cm3 of hydroxyapatite above water at a tube voltage.

    Parameters
    ----------
    kvp : float or array_like of float
        Tube voltage in kV, 70-140.

    Returns
    -------
    k : float or ndarray
        Slope in HU per (mg HA/cm3), linearly interpolated in the table
        :data:`HA_HU_PER_MG_CM3`.

    Notes
    -----
    HU = HU_matrix + k(kVp) * rho_HA. The calibration factor used by the mass
    score is its inverse, c_HA = 1 / k (mg cm^-3 HU^-1). See the module
    docstring for the table's sources.

    Examples
    --------
    >>> round(float(hu_per_mg_cm3(120)), 3)
    1.259
    >>> bool(hu_per_mg_cm3(80) > hu_per_mg_cm3(120))
    True
    """
    kv = _check_kvp(kvp)
    out = np.interp(kv, _KVP_TABLE, _RATIO_TABLE) / C_HA_120_KVP
    return float(out) if out.ndim == 0 else out


def density_to_hu(density_mg_cm3, kvp, *, matrix_hu=0.0, hu_per_mg_ha=None):
    """CT number of hydroxyapatite at a density, embedded in a matrix.

    Parameters
    ----------
    density_mg_cm3 : float or array_like
        HA density in mg/cm3 (>= 0).
    kvp : float
        Tube voltage in kV (70-140).
    matrix_hu : float, optional
        CT number of the surrounding (displaced) material, default 0 (water).
    hu_per_mg_ha : float, optional
        HU per mg HA/cm3 of one scanner (in :data:`HU_PER_MG_HA_RANGE`), e.g.
        measured on its calibration rods; overrides the kVp table. Default
        ``None``: :func:`hu_per_mg_cm3` of ``kvp``.

    Returns
    -------
    hu : float or ndarray
        ``matrix_hu + k * density_mg_cm3`` with ``k = hu_per_mg_ha`` or
        ``hu_per_mg_cm3(kvp)``.

    Examples
    --------
    >>> round(density_to_hu(200.0, 120.0), 1)
    251.8
    >>> round(density_to_hu(200.0, 120.0, matrix_hu=40.0), 1)
    291.8
    >>> round(density_to_hu(200.0, 120.0, hu_per_mg_ha=1.35), 1)
    270.0
    """
    try:
        rho = np.asarray(density_mg_cm3, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"density_mg_cm3 must be a number in mg HA/cm3, "
                        f"got {density_mg_cm3!r}") from None
    if not np.all(np.isfinite(rho)) or np.any(rho < 0):
        raise ValueError(f"density_mg_cm3 must be finite and >= 0 mg HA/cm3, got "
                         f"{density_mg_cm3!r}")
    if not np.isfinite(matrix_hu):
        raise ValueError(f"matrix_hu must be a finite HU value, got {matrix_hu!r}")
    if hu_per_mg_ha is None:
        k = hu_per_mg_cm3(kvp)
    else:
        _check_kvp(kvp)
        k = _check_hu_per_mg_ha(hu_per_mg_ha)
    out = float(matrix_hu) + k * rho
    return float(out) if np.ndim(out) == 0 else out
