"""``swcs``: the spatially weighted calcium score (Liang et al., BMC Med Imaging 2012).

A threshold-free score: each voxel gets the weight ``w = Phi((I - mu) / sigma)``
(Phi the standard normal CDF), where mu and sigma are the mean and SD of HU in
a 100 mg HA/cm3 calibration rod; the weights are smoothed in each slice by the
5-point "plus" kernel (0.2 at the voxel and at its four in-plane neighbours)
and summed over the lesion. The weights are computed on the ROI's bounding box
grown by one pixel in-plane (:func:`_smoothing_box`), which gives every ROI
voxel the same smoothed weight as the whole crop.

Here no 100 mg/cm3 rod is needed: ``mu = S_bkg + rho_ref / c_HA`` (the
calibrated HU of rho_ref = 100 mg HA/cm3 above the lesion's local background)
and ``sigma = background_sd_hu`` (the SD of a uniform rod is the image noise).
The sum is scaled like an Agatston area: ``swcs = sum_ROI w_smoothed x dy x dx
x (dz / 3 mm)`` in mm2 (a fully calcified voxel counts its pixel area, and the
slice factor makes the score independent of the slice increment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

from pvcalc._validate import check_real
from pvcalc.methods._base import MethodSpec

__all__ = ["PLUS_KERNEL", "SPEC", "SwcsParams"]

#: The 5-point smoothing kernel of Liang et al., applied in each axial slice.
PLUS_KERNEL = np.array([[[0.0, 0.2, 0.0], [0.2, 0.2, 0.2], [0.0, 0.2, 0.0]]])

#: Slice thickness (mm) of the Agatston scale, for the slice factor.
AGATSTON_SLICE_MM = 3.0

_NOT_DEFINED = ("swcs is a threshold-free score (column swcs) and defines no volume or mass")


@dataclass(frozen=True)
class SwcsParams:
    """Parameters of ``swcs``.

    Parameters
    ----------
    reference_density_mg_cm3 : float, default 100
        Density of the calibration (mg HA/cm3) that sets mu (Liang et al.: 100).
    slice_normalisation : bool, default True
        Multiply by dz / 3 mm, as the Agatston score does.
    detection_weight : float, default 0.5
        Detected when the smoothed weight of some ROI voxel reaches this value
        (0.5: a plus-shaped neighbourhood averaging the reference density).

    Examples
    --------
    >>> SwcsParams().reference_density_mg_cm3
    100.0
    """

    reference_density_mg_cm3: float = 100.0
    slice_normalisation: bool = True
    detection_weight: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "reference_density_mg_cm3", check_real(
            "reference_density_mg_cm3", self.reference_density_mg_cm3, lo=0.0, lo_open=True))
        if not isinstance(self.slice_normalisation, (bool, np.bool_)):
            raise TypeError(
                f"slice_normalisation must be True or False, got {self.slice_normalisation!r}")
        object.__setattr__(self, "detection_weight", check_real(
            "detection_weight", self.detection_weight, lo=0.0, lo_open=True, hi=1.0))


def weights(hu, mu, sigma):
    """Unsmoothed weights Phi((hu - mu) / sigma); a step (0, 1/2, 1) when sigma = 0."""
    if sigma > 0:
        return special.ndtr((hu - mu) / sigma)
    return np.where(hu > mu, 1.0, np.where(hu == mu, 0.5, 0.0))


def _smoothing_box(region):
    """The ROI's bounding box grown by one pixel in-plane, inside the crop.

    The plus kernel reaches one pixel in y and x and none in z, so the smoothed
    weight of every ROI voxel is the same on this box as on the whole crop: a
    box edge either lies one pixel beyond the ROI or is the crop's own edge
    (where ``mode="nearest"`` repeats the same edge voxels).
    """
    (bz, by, bx), (_, ny, nx) = region.roi_box, region.hu.shape
    return (bz, slice(max(by.start - 1, 0), min(by.stop + 1, ny)),
            slice(max(bx.start - 1, 0), min(bx.stop + 1, nx)))


def compute(region, params, calibration):
    """Spatially weighted calcium score of one ROI."""
    mu = region.background_hu + params.reference_density_mg_cm3 / calibration.c_ha_mg_cm3_per_hu
    sigma = region.background_sd_hu
    box = _smoothing_box(region)
    smooth = ndimage.convolve(weights(region.hu[box], mu, sigma), PLUS_KERNEL, mode="nearest")
    dz, dy, dx = region.spacing_mm
    factor = dz / AGATSTON_SLICE_MM if params.slice_normalisation else 1.0
    inside = smooth[region.roi[box]]
    return {"swcs": float(inside.sum()) * dy * dx * factor,
            "detected": bool(inside.size and inside.max() >= params.detection_weight),
            "volume_mm3": float("nan"), "mass_mg": float("nan"), "reason": _NOT_DEFINED,
            "peak_hu": region.peak_hu, "mu_hu": mu, "sigma_hu": sigma}


SPEC = MethodSpec(
    name="swcs", params=SwcsParams, compute=compute, requires_calibration=True,
    defines=set(),
    summary="spatially weighted calcium score: smoothed normal-CDF weights summed (mm2)",
    reference="Liang CJ et al., BMC Med Imaging 2012;12:14, doi:10.1186/1471-2342-12-14")
