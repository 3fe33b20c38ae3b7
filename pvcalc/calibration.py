"""Hydroxyapatite calibration for the mass score."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from pvcalc._validate import finite_float, positive_float
from pvcalc.scan import scan_spacing_mm, validate_scan

#: c_HA values outside this range (mg HA cm^-3 HU^-1) trigger a warning: four
#: vendors' 120 kVp scanners measure 0.71-0.91 (see docs/scoring.md), lower kVp
#: gives smaller values, so a factor far outside means a wrong ROI or density.
PLAUSIBLE_C_HA = (0.3, 2.0)
#: mass_reference_hu must lie in this range (HU): it is a background level (0,
#: water about 0 HU, fat about -100 HU); at or above the calcium threshold
#: (130 HU) it would make the mass of calcium voxels negative.
MASS_REFERENCE_RANGE_HU = (-1000.0, 100.0)


@dataclass(frozen=True)
class Calibration:
    """Calibration factor that turns HU into hydroxyapatite (HA) mass.

    Parameters
    ----------
    c_ha_mg_cm3_per_hu : float
        c_HA in mg HA cm^-3 HU^-1 (real 120 kVp scanners: about 0.71-0.91).
    mass_reference_hu : float, optional
        HU subtracted from every voxel before the mass sum. Default 0 (plain
        HU, the mass score of McCollough et al. 2007); use the water ROI's mean HU to count only
        attenuation above water (``Calibration.from_rods(..., mass_reference="water")``).
        Must lie within :data:`MASS_REFERENCE_RANGE_HU` (-1000 to 100 HU).
    water_hu, ha_hu, ha_density_mg_cm3 : float, optional
        The rod measurements, kept for the record when built by :meth:`from_rods`.

    Notes
    -----
    McCollough et al. (2007): c_HA = rho_HA / (mean HU_HA - mean HU_water), and
    the mass score of a lesion is

        mass_mg = c_HA x sum_i (HU_i - mass_reference_hu) x V_voxel_mm3 / 1000

    over its voxels (the factor 1/1000 converts mm3 to cm3).

    References
    ----------
    McCollough CH et al. Coronary artery calcium: a multi-institutional,
    multimanufacturer international standard for quantification at cardiac CT.
    Radiology 2007;243:527-538. doi:10.1148/radiol.2432050808

    Examples
    --------
    >>> cal = Calibration(0.8)
    >>> cal.mass_mg(hu_sum=1000.0, voxel_volume_mm3=1.0)
    0.8
    """

    c_ha_mg_cm3_per_hu: float
    mass_reference_hu: float = 0.0
    water_hu: float | None = None
    ha_hu: float | None = None
    ha_density_mg_cm3: float | None = None

    def __post_init__(self):
        for field in ("c_ha_mg_cm3_per_hu", "mass_reference_hu"):
            if isinstance(getattr(self, field), (bool, np.bool_)):
                raise TypeError(f"{field} must be a number, not a bool "
                                f"({getattr(self, field)!r})")
        c = positive_float("c_ha_mg_cm3_per_hu", self.c_ha_mg_cm3_per_hu,
                           unit="mg HA cm^-3 HU^-1",
                           hint="real scanners give about 0.7-0.9 mg HA cm^-3 HU^-1")
        if not PLAUSIBLE_C_HA[0] <= c <= PLAUSIBLE_C_HA[1]:
            warnings.warn(
                f"c_ha_mg_cm3_per_hu = {c:.4g} is outside the plausible range "
                f"{PLAUSIBLE_C_HA[0]}-{PLAUSIBLE_C_HA[1]} mg HA cm^-3 HU^-1; check the rod "
                "ROIs and the HA density", UserWarning, stacklevel=3)
        object.__setattr__(self, "c_ha_mg_cm3_per_hu", c)
        ref = finite_float("mass_reference_hu", self.mass_reference_hu, unit="HU")
        if not MASS_REFERENCE_RANGE_HU[0] <= ref <= MASS_REFERENCE_RANGE_HU[1]:
            raise ValueError(
                f"mass_reference_hu must be a background level within "
                f"{MASS_REFERENCE_RANGE_HU[0]:g} to {MASS_REFERENCE_RANGE_HU[1]:g} HU (0, or the "
                f"water rod's mean HU), got {self.mass_reference_hu!r}; a reference at or above "
                "the 130 HU calcium threshold makes masses negative")
        object.__setattr__(self, "mass_reference_hu", ref)

    def mass_mg(self, *, hu_sum, voxel_volume_mm3, n_voxels=0):
        """Mass (mg) of voxels whose HU add up to ``hu_sum`` (n_voxels of them)."""
        hu = np.asarray(hu_sum, dtype=np.float64) - self.mass_reference_hu * np.asarray(n_voxels)
        out = self.c_ha_mg_cm3_per_hu * hu * float(voxel_volume_mm3) / 1000.0
        return float(out) if np.ndim(out) == 0 else out

    def to_dict(self) -> dict:
        """Plain dict of the fields (JSON-friendly)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_rods(cls, scan, water_roi, ha_roi, *, ha_density_mg_cm3=200.0,
                  mass_reference="zero"):
        """Calibrate from a water-equivalent rod and an HA rod in the scan.

        Parameters
        ----------
        scan : xarray.DataArray
            Scan in HU (see :func:`pvcalc.make_scan`).
        water_roi, ha_roi : boolean array or tuple
            The rods' regions of interest, each either a boolean mask of the
            scan's shape (numpy array or DataArray) or a tuple
            ``(centre_mm, radius_mm)`` / ``(centre_mm, radius_mm, length_mm)``:
            a 2-value centre (y, x) is a cylinder along z through every slice;
            a 3-value centre (z, y, x) is a cylinder of ``length_mm`` centred at
            z (without a length: the slice nearest z). A voxel is inside when
            its centre is within ``radius_mm`` of the axis.
        ha_density_mg_cm3 : float, optional
            HA density of the calcium rod in mg/cm3. Default 200.
        mass_reference : {"zero", "water"} or float, optional
            HU subtracted before the mass sum: 0 ("zero", default), the water
            rod's mean HU ("water"), or a number.

        Returns
        -------
        Calibration

        Examples
        --------
        >>> import numpy as np, pvcalc
        >>> a = np.zeros((3, 40, 40)); a[:, 5:15, 5:15] = 250.0
        >>> scan = pvcalc.make_scan(a, (3.0, 0.5, 0.5))
        >>> cal = Calibration.from_rods(scan, ((12.0, 12.0), 4.0), ((5.0, 5.0), 2.0))
        >>> round(cal.c_ha_mg_cm3_per_hu, 3)
        0.8
        """
        validate_scan(scan)
        water = _roi_mask(scan, water_roi, "water_roi")
        ha = _roi_mask(scan, ha_roi, "ha_roi")
        if np.any(water & ha):
            raise ValueError(
                "water_roi and ha_roi overlap; place the two ROIs inside different rods")
        rho = positive_float("ha_density_mg_cm3", ha_density_mg_cm3, what="density",
                             unit="mg/cm3")
        values = np.asarray(scan.values, dtype=np.float64)
        hu_w = float(values[water].mean())
        hu_ha = float(values[ha].mean())
        if hu_ha <= hu_w:
            raise ValueError(
                f"the HA rod ROI (mean {hu_ha:.1f} HU) must be brighter than the water ROI "
                f"(mean {hu_w:.1f} HU); check that the ROIs are not swapped")
        if isinstance(mass_reference, str):
            if mass_reference not in ("zero", "water"):
                raise ValueError(
                    "mass_reference must be 'zero', 'water' or a number of HU, "
                    f"got {mass_reference!r}")
            ref = 0.0 if mass_reference == "zero" else hu_w
        else:
            ref = float(mass_reference)
        return cls(rho / (hu_ha - hu_w), mass_reference_hu=ref, water_hu=hu_w,
                   ha_hu=hu_ha, ha_density_mg_cm3=rho)


def _roi_mask(scan, roi, name):
    shape = scan.shape
    if isinstance(roi, (np.ndarray, xr.DataArray)):
        mask = np.asarray(roi)
        if mask.dtype != bool:
            raise TypeError(f"{name} as an array must be boolean, got dtype {mask.dtype}")
        if mask.shape != shape:
            raise ValueError(
                f"{name} mask has shape {mask.shape} but the scan has shape {shape}; "
                "build the mask on the scan's grid")
    elif isinstance(roi, (tuple, list)) and len(roi) in (2, 3):
        centre = np.asarray(roi[0], dtype=np.float64).ravel()
        radius = positive_float(f"{name} radius", roi[1], unit="mm")
        if centre.size not in (2, 3) or not np.all(np.isfinite(centre)):
            raise ValueError(
                f"{name} centre must be (y, x) or (z, y, x) in mm, got {roi[0]!r}")
        zc, yc, xc = (np.asarray(scan.coords[d].values, dtype=np.float64) for d in "zyx")
        disc = ((yc[:, None] - centre[-2]) ** 2 + (xc[None, :] - centre[-1]) ** 2) <= radius ** 2
        if centre.size == 2:
            zsel = np.ones(zc.size, dtype=bool)
        elif len(roi) == 3:
            half = 0.5 * float(roi[2])
            zsel = np.abs(zc - centre[0]) <= half
        else:
            zsel = np.zeros(zc.size, dtype=bool)
            zsel[np.argmin(np.abs(zc - centre[0]))] = True
        mask = zsel[:, None, None] & disc[None, :, :]
    else:
        raise TypeError(
            f"{name} must be a boolean mask of the scan's shape or a tuple "
            f"(centre_mm, radius_mm[, length_mm]), got {type(roi).__name__}")
    n = int(mask.sum())
    if n == 0:
        raise ValueError(f"{name} contains no voxel of the scan; check its centre and radius")
    return mask


#: Calibration ROIs are the rod's cross-section shrunk by this margin (mm), which
#: keeps the blurred rod edge out of the mean.
ROD_ROI_MARGIN_MM = 2.0


#: Largest axial margin (in slice thicknesses) kept between a rod's section end and
#: the centre of a slice in its ROI: a Gaussian slice profile 1.5 FWHM inside the end
#: has 0.02% of its weight outside (a trapezoid or box profile needs less, its support).
ROD_ROI_MAX_Z_MARGIN_SLICES = 1.5


def _rod_z_margin_mm(scan):
    """Distance (mm) from a rod section's end to the nearest slice centre of its ROI:
    the half-support of the scan's slice profile (``slice_profile``, default
    trapezoid), at most :data:`ROD_ROI_MAX_Z_MARGIN_SLICES` slice thicknesses."""
    from phantoms._ssp import SSP_KINDS, ssp_half_support_mm

    thickness = float(scan.attrs.get("slice_thickness_mm", scan_spacing_mm(scan)[0]))
    kind = SSP_KINDS.get(str(scan.attrs.get("slice_profile", "trapezoid")), SSP_KINDS["gaussian"])
    return min(float(ssp_half_support_mm(thickness, kind)),
               ROD_ROI_MAX_Z_MARGIN_SLICES * thickness)


def rod_calibration(scan, phantom, *, margin_mm=ROD_ROI_MARGIN_MM) -> Calibration:
    """Mass calibration of a simulated scan from its phantom's water and HA rods.

    Parameters
    ----------
    scan : xarray.DataArray
        A scan made by :func:`phantoms.simulate` or :func:`phantoms.repeat`. The
        rods' centres in this scan are the attributes ``rod_<i>_centre_y_mm`` /
        ``_x_mm`` (repositioning included), else the phantom's centres moved by
        ``translation_y_mm`` / ``translation_x_mm`` (0 if absent). A rod that runs
        along z through the whole scan is measured in every slice; a rod limited
        to an axial section (``Rod.z_range_mm``) in the slices whose profile lies
        inside that section: centres at least the profile's half-support (0.75 x
        thickness for the trapezoid; at most 1.5 x thickness) from its ends. The
        section in this scan is ``rod_<i>_z_lo_mm`` / ``_z_hi_mm``, else the
        phantom's moved by ``translation_z_mm``.
    phantom : phantoms.Phantom
        The phantom, with one rod of density 0 (water) and one of density > 0 (HA).
    margin_mm : float, optional
        ROI radius = rod radius - margin. Default 2 mm.

    Returns
    -------
    Calibration
        c_HA = rho_HA / (mean HU of the HA rod - mean HU of the water rod).

    Raises
    ------
    ValueError
        Without a water and an HA rod, for a rod thinner than the margin, or when
        no slice of the scan lies inside a rod's axial section.

    Examples
    --------
    >>> import phantoms
    >>> ph = phantoms.cci_phantom()         # rods in their own section, z = 30 to 45 mm
    >>> scan, _ = phantoms.simulate(ph, phantoms.get_protocol("calcium_scoring", matrix=256),
    ...                             seed=0, noise=False, fraction_maps=False)
    >>> cal = rod_calibration(scan, ph)
    >>> round(cal.c_ha_mg_cm3_per_hu * phantoms.hu_per_mg_cm3(120.0), 6)
    1.0
    """
    water = [i for i, r in enumerate(phantom.rods) if r.density_mg_cm3 == 0]
    ha = [i for i, r in enumerate(phantom.rods) if r.density_mg_cm3 > 0]
    if not water or not ha:
        raise ValueError(
            f"phantom {phantom.name!r} needs a water rod (density 0) and an HA rod (density > 0) "
            "for a rod calibration; give a Calibration(c_ha_mg_cm3_per_hu=...) instead")

    def roi(index):
        rod = phantom.rods[index]
        radius = rod.radius_mm - margin_mm
        if radius <= 0:
            raise ValueError(f"rod of radius {rod.radius_mm} mm is too thin for a margin of "
                             f"{margin_mm} mm; use a smaller margin_mm")
        key = f"rod_{index}_centre_%s_mm"
        if key % "y" in scan.attrs:  # the rod's position in this scan, repositioning included
            centre = (float(scan.attrs[key % "y"]), float(scan.attrs[key % "x"]))
        else:
            centre = (rod.centre_yx_mm[0] + float(scan.attrs.get("translation_y_mm", 0.0)),
                      rod.centre_yx_mm[1] + float(scan.attrs.get("translation_x_mm", 0.0)))
        if getattr(rod, "z_range_mm", None) is None:
            return centre, radius
        zkey = f"rod_{index}_z_%s_mm"
        if zkey % "lo" in scan.attrs:
            lo, hi = float(scan.attrs[zkey % "lo"]), float(scan.attrs[zkey % "hi"])
        else:
            dz = float(scan.attrs.get("translation_z_mm", 0.0))
            lo, hi = rod.z_range_mm[0] + dz, rod.z_range_mm[1] + dz
        z_margin = _rod_z_margin_mm(scan)
        half = 0.5 * (hi - lo) - z_margin
        zc = np.asarray(scan.coords["z"].values, dtype=np.float64)
        mid = 0.5 * (lo + hi)
        if half < 0 or not np.any(np.abs(zc - mid) <= half + 1e-9):
            raise ValueError(
                f"rods[{index}] fills z = {lo:.2f} to {hi:.2f} mm in this scan, but no slice "
                f"centre lies {z_margin:.2f} mm (the slice profile's half-width) inside that "
                f"section (slices at z = {zc.min():.2f} to {zc.max():.2f} mm every "
                f"{scan_spacing_mm(scan)[0]:.3g} mm); scan the rods' section (the phantom's "
                "z_extent_mm), or give a Calibration(c_ha_mg_cm3_per_hu=...) instead")
        return (mid, *centre), radius, 2.0 * half + 2e-9

    return Calibration.from_rods(scan, roi(water[0]), roi(ha[0]),
                                 ha_density_mg_cm3=phantom.rods[ha[0]].density_mg_cm3)
