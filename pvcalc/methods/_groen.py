"""``adaptive_groen``: a lesion-specific threshold that rises with the lesion's peak HU.

Groen et al. (Med Phys 2009;36:438) found the threshold at which a
calcification's scored volume equals its physical volume to rise linearly with
its peak HU, and scored each calcification at its own threshold: about 30%
less sensitive to cardiac motion and at least 10% closer to the physical
volume and mass than the 130 HU standard in their phantom study.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvcalc._validate import check_real
from pvcalc.methods._base import NO_CALIBRATION, MethodSpec, local_mass_mg

__all__ = ["SPEC", "GroenParams"]


@dataclass(frozen=True)
class GroenParams:
    """Parameters of ``adaptive_groen``.

    Parameters
    ----------
    fraction : float, default 0.5
        f in ``T = background + f x (peak - background)``, in (0, 1]. 0.5 is the
        half-maximum rule: for an object much larger than the blur, the blurred
        edge crosses half-way between background and plateau at the true
        boundary (the edge criterion ACCURATUM also uses; Saur et al. 2009).
        Groen et al. fitted their own slope and offset on 64-slice and
        dual-source CT data; those coefficients are not used here.
    min_contrast_sd : float, default 3.0
        Floor of the threshold, ``T >= background + min_contrast_sd x SD``, so
        that the region growing of a faint lesion does not run into noise (not
        part of the paper). 0 disables it.

    Examples
    --------
    >>> GroenParams(fraction=0.4).fraction
    0.4
    >>> GroenParams(fraction=1.5)
    Traceback (most recent call last):
    ...
    ValueError: fraction must be <= 1.0, got 1.5
    """

    fraction: float = 0.5
    min_contrast_sd: float = 3.0

    def __post_init__(self):
        object.__setattr__(self, "fraction",
                           check_real("fraction", self.fraction, lo=0.0, lo_open=True, hi=1.0))
        object.__setattr__(self, "min_contrast_sd",
                           check_real("min_contrast_sd", self.min_contrast_sd, lo=0.0))


def threshold_result(region, threshold, calibration, peak, *, inclusive=True):
    """Volume, mass and detection of the voxels >= ``threshold`` grown from the core."""
    sel = region.grow(threshold, inclusive=inclusive)
    n = int(np.count_nonzero(sel))
    out = {"volume_mm3": n * region.voxel_mm3, "threshold_hu": float(threshold),
           "detected": n > 0, "n_voxels": n, "peak_hu": float(peak)}
    mass = local_mass_mg(calibration, region.hu[sel], region.background_hu, region.voxel_mm3)
    if mass is None:
        out["mass_mg"] = float("nan")
        out["reason"] = NO_CALIBRATION
    else:
        out["mass_mg"] = mass
    return out


def compute(region, params, calibration):
    """Volume at ``T = background + f (peak - background)``, grown from the core."""
    bkg, sd = region.background_hu, region.background_sd_hu
    peak = float(region.hu[region.core].max()) if region.core.any() else region.peak_hu
    threshold = max(bkg + params.fraction * (peak - bkg), bkg + params.min_contrast_sd * sd)
    return threshold_result(region, threshold, calibration, peak)


SPEC = MethodSpec(
    name="adaptive_groen", params=GroenParams, compute=compute, requires_calibration=False,
    defines={"volume_mm3", "mass_mg", "threshold_hu"},
    summary="lesion-specific threshold background + f (peak - background), grown from the core",
    reference="Groen JM et al., Med Phys 2009;36(2):438-446")
