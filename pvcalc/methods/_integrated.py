"""``integrated``: calcium mass from the integrated intensity of the whole ROI.

Under a linear imaging chain (blur, partial volume and slice profile only
redistribute attenuation), the sum of ``HU - S_bkg`` over a region that holds
the whole blurred lesion is preserved, so the lesion's mass follows from the
sum without any threshold (Black, Molloi et al., Med Phys 2023):

    N_obj = (sum_ROI I - N S_bkg) / (S_obj - S_bkg)
    mass_mg = c_HA x sum_ROI (I - S_bkg) x V_voxel / 1000 = N_obj V_voxel rho_ref / 1000

with ``S_bkg`` the background shell's mean and ``S_obj - S_bkg = rho_ref / c_HA``
the calibrated HU of calcium of the reference density ``rho_ref`` above the
background. The mass does not depend on ``rho_ref``; the volume needs a density
(see :class:`IntegratedParams`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvcalc._validate import check_real
from pvcalc.methods._base import MethodSpec
from pvcalc.methods._noise import excess_test

__all__ = ["SPEC", "IntegratedParams", "integrated_estimate"]

_DENSITIES = ("peak", "reference")


@dataclass(frozen=True)
class IntegratedParams:
    """Parameters of ``integrated``.

    Parameters
    ----------
    reference_density_mg_cm3 : float, default 200
        rho_ref, the density whose HU above background is ``S_obj - S_bkg =
        rho_ref / c_HA`` (200 mg HA/cm3: the calcium rod of the insert phantom).
    volume_density : {"peak", "reference"}, default "peak"
        The density that turns the mass into a volume, ``volume = mass /
        density``. "peak": the lesion's own density estimated from its peak,
        ``c_HA x (peak_hu - S_bkg)`` (exact for a lesion larger than the blur;
        blur lowers the peak of small lesions and so overstates their volume,
        noise raises it). "reference": ``rho_ref``, i.e. ``N_obj x V_voxel``,
        what Black et al. report (right only for lesions of density rho_ref).
    alpha : float, default 0.05
        One-sided false-positive rate of the detection test (see
        :func:`pvcalc.methods._noise.excess_test`).

    Examples
    --------
    >>> IntegratedParams(volume_density="reference").volume_density
    'reference'
    """

    reference_density_mg_cm3: float = 200.0
    volume_density: str = "peak"
    alpha: float = 0.05

    def __post_init__(self):
        object.__setattr__(self, "reference_density_mg_cm3", check_real(
            "reference_density_mg_cm3", self.reference_density_mg_cm3, lo=0.0, lo_open=True))
        if self.volume_density not in _DENSITIES:
            raise ValueError(f"volume_density must be one of {list(_DENSITIES)}, got "
                             f"{self.volume_density!r}")
        object.__setattr__(self, "alpha",
                           check_real("alpha", self.alpha, lo=0.0, lo_open=True, hi=0.5))


def integrated_estimate(region, mask, params, calibration):
    """Mass, volume and detection from the calcium excess summed over ``mask``.

    Detection always tests the excess over the whole ROI: a mask chosen from
    the image itself (the dilated core) sits where the noise is high, so its
    own excess is biased upwards in calcium-free regions.
    """
    c = calibration.c_ha_mg_cm3_per_hu
    bkg = region.background_hu
    values = region.hu[mask]
    n = int(values.size)
    excess = float(np.sum(values) - n * bkg)          # HU x voxels, unclipped
    delta_obj = params.reference_density_mg_cm3 / c   # S_obj - S_bkg (HU)
    mass = calibration.mass_mg(hu_sum=excess, voxel_volume_mm3=region.voxel_mm3)
    peak = float(values.max()) if n else float("nan")
    if mask is region.roi:
        roi_excess, n_roi = excess, n
    else:
        roi_values = region.hu[region.roi]
        n_roi = int(roi_values.size)
        roi_excess = float(np.sum(roi_values) - n_roi * bkg)
    z, _, detected = excess_test(region, roi_excess, n_roi, params.alpha)
    out = {"mass_mg": mass, "detected": detected, "z_score": z, "n_voxels": n,
           "peak_hu": peak, "s_obj_hu": bkg + delta_obj, "n_obj": excess / delta_obj,
           "noise_inflation": region.noise_inflation}
    if params.volume_density == "reference":
        density = params.reference_density_mg_cm3
    else:
        density = c * (peak - bkg)
    out["density_mg_cm3"] = density
    if density > 0:
        out["volume_mm3"] = 1000.0 * mass / density
    else:
        out["volume_mm3"] = float("nan")
        out["reason"] = (f"no density for the volume: the ROI's peak ({peak:.1f} HU) is not "
                         f"above the background ({bkg:.1f} HU); use volume_density='reference'")
    return out


def compute(region, params, calibration):
    """Integrated-intensity mass and volume over the whole ROI."""
    return integrated_estimate(region, region.roi, params, calibration)


SPEC = MethodSpec(
    name="integrated", params=IntegratedParams, compute=compute, requires_calibration=True,
    defines={"volume_mm3", "mass_mg"},
    summary="mass from the ROI's integrated intensity above the local background "
            "(no threshold); volume = mass / density",
    reference="Black D, Molloi S et al., Med Phys 2023, doi:10.1002/mp.16326")
