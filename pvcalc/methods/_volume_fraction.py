"""``volume_fraction``: calcium as the sum of per-voxel volume fractions.

Each voxel's calcium volume fraction is ``k_i = (I_i - S_bkg) / (S_obj - S_bkg)``
with ``S_obj - S_bkg = rho_ref / c_HA`` (see ``integrated``); the fractions are
summed unclipped (clipping to [0, 1] would bias the sum upwards in noise) over
a lesion mask: the core dilated by ``dilation_mm`` in-plane and by
``dilation_slices`` slices along z, inside the ROI (the whole ROI when the core
is empty). Black, Molloi et al. (2023) sum the fractions over a dilated
calcium mask. Summed over the whole ROI (``mask="roi"``) the result equals
``integrated`` exactly; the smaller mask sums less noise, at the price of any
blurred tail beyond the dilation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvcalc._validate import check_int, check_real
from pvcalc.methods._base import MethodSpec
from pvcalc.methods._integrated import IntegratedParams, integrated_estimate

__all__ = ["SPEC", "VolumeFractionParams", "lesion_mask"]

_MASKS = ("core_dilated", "roi")


@dataclass(frozen=True)
class VolumeFractionParams(IntegratedParams):
    """Parameters of ``volume_fraction`` (those of ``integrated``, plus the mask).

    Parameters
    ----------
    reference_density_mg_cm3, volume_density, alpha
        As :class:`~pvcalc.methods._integrated.IntegratedParams`.
    mask : {"core_dilated", "roi"}, default "core_dilated"
        Where the fractions are summed.
    dilation_mm : float, default 2.0
        In-plane dilation of the core (mm, Euclidean): holds the blurred edge of
        calcium-scoring kernels (PSF FWHM up to 1.6 mm: 2 mm is 3 sigma).
    dilation_slices : int, default 1
        Dilation along z in slices: the slice profile spreads a lesion into the
        neighbouring slices, below the threshold.

    Examples
    --------
    >>> VolumeFractionParams(dilation_mm=1.0).dilation_mm
    1.0
    """

    mask: str = "core_dilated"
    dilation_mm: float = 2.0
    dilation_slices: int = 1

    def __post_init__(self):
        super().__post_init__()
        if self.mask not in _MASKS:
            raise ValueError(f"mask must be one of {list(_MASKS)}, got {self.mask!r}")
        object.__setattr__(self, "dilation_mm",
                           check_real("dilation_mm", self.dilation_mm, lo=0.0))
        object.__setattr__(self, "dilation_slices",
                           check_int("dilation_slices", self.dilation_slices, 0))


def lesion_mask(region, params):
    """The mask of the fraction sum (see the module notes).

    Computed on the ROI's bounding box (``region.roi_box``), which holds the
    core and every voxel of the mask: the in-plane distance of each slice is
    to that slice's core, and the z dilation is an OR of the slices shifted by
    up to ``dilation_slices`` (the binary dilation by a z line, without voxels
    from beyond the box, where the core is empty).
    """
    if params.mask == "roi" or not region.core.any():
        return region.roi
    box = region.roi_box
    core = region.core[box]
    dy, dx = region.spacing_mm[1:]
    grown = np.zeros_like(core)
    for z in range(core.shape[0]):   # in-plane distance, slice by slice
        sl = core[z]
        if sl.any():
            grown[z] = ndimage.distance_transform_edt(~sl, sampling=(dy, dx)) <= params.dilation_mm
    k = params.dilation_slices
    if k:
        plane = grown
        grown = plane.copy()
        for step in range(1, min(k, plane.shape[0] - 1) + 1):
            grown[step:] |= plane[:-step]
            grown[:-step] |= plane[step:]
    mask = np.zeros_like(region.roi)
    mask[box] = grown & region.roi[box]
    return mask


def compute(region, params, calibration):
    """Sum of unclipped volume fractions over the lesion mask."""
    mask = lesion_mask(region, params)
    out = integrated_estimate(region, mask, params, calibration)
    out["fraction_sum"] = out.pop("n_obj")
    return out


SPEC = MethodSpec(
    name="volume_fraction", params=VolumeFractionParams, compute=compute,
    requires_calibration=True, defines={"volume_mm3", "mass_mg"},
    summary="sum of unclipped per-voxel calcium fractions over the dilated core",
    reference="Black D, Molloi S et al., medRxiv 2023, doi:10.1101/2023.01.12.23284482")
