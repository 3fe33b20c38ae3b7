"""Locate the QRM cardiac calcification insert (CCI) in a scan: inserts, rods, ROIs.

:func:`locate_cci` finds the insert's nine hydroxyapatite cylinders and its two
calibration rods in a real (or simulated) scan of the QRM thorax phantom, from the
image alone, and returns a :class:`CCILayout`: positions, what was seen and what was
placed from the known layout, confidences, ROI tables for :func:`pvcalc.quantify`
and the rod calibration (:class:`pvcalc.Calibration`). ``docs/real_phantom.md``
describes the algorithm and its assumptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pvcalc import _qrm_geometry as geo
from pvcalc._qrm_inserts import detect_spots, fit_spokes, prepare
from pvcalc._qrm_layout import INSERT_COLUMNS, insert_body_hu, inserts_table
from pvcalc._qrm_rods import (
    HA_MIN_CONTRAST_HU,
    ROD_DIAMETER_RANGE_MM,
    ROD_SEARCH_MM,
    WATER_MIN_CONTRAST_HU,
    WATER_MIN_SD,
    find_rods,
)
from pvcalc._validate import finite_float
from pvcalc.calibration import Calibration
from pvcalc.scan import scan_spacing_mm, validate_scan

__all__ = ["CCILayout", "locate_cci", "INSERT_COLUMNS", "ROD_COLUMNS", "nominal_inserts"]

#: Columns of :attr:`CCILayout.rods`.
ROD_COLUMNS = ("rod", "centre_z_mm", "centre_y_mm", "centre_x_mm", "radius_mm", "z_lo_mm",
               "z_hi_mm", "mean_hu", "sd_hu", "confidence")
#: Largest RMS distance (mm) between the found large and medium inserts and the fitted
#: layout; a worse fit is not this phantom's three spokes.
MAX_FIT_RMS_MM = 1.5
#: The insert body around the fitted centre must read within this range (HU): soft
#: tissue-like (the real insert: 70-80 HU at 120 kVp; the compact replica: 40 HU).
INSERT_BODY_RANGE_HU = (-100.0, 250.0)
#: Default ROI radius = insert radius + this margin (mm): the blur of calcium-scoring
#: kernels (FWHM up to 1.6 mm) falls below 10% within 2 mm of the edge, and 0.5 mm is
#: left for the position error.
ROI_MARGIN_MM = 2.5


def nominal_inserts() -> pd.DataFrame:
    """The nine inserts with their nominal size, density, volume and mass.

    Returns
    -------
    pandas.DataFrame
        Columns ``lesion``, ``diameter_mm``, ``density_mg_cm3``, ``volume_mm3``
        (pi d^3 / 4 for a cylinder with length = diameter), ``mass_mg``
        (density x volume / 1000).

    Examples
    --------
    >>> table = nominal_inserts().round(2)
    >>> table["lesion"][0], table[["volume_mm3", "mass_mg"]].iloc[0].tolist()
    ('large_hd', [98.17, 78.54])
    """
    rows = [{"lesion": name, "diameter_mm": d, "density_mg_cm3": rho,
             "volume_mm3": geo.insert_volume_mm3(d),
             "mass_mg": rho * geo.insert_volume_mm3(d) / 1000.0} for name, d, rho in geo.INSERTS]
    return pd.DataFrame(rows)


@dataclass(frozen=True, eq=False)
class CCILayout:
    """Where the QRM calcification insert's inserts and rods are in one scan.

    Made by :func:`locate_cci`; every length in mm and every position in the
    scan's coordinates (z, y, x).

    Attributes
    ----------
    centre_yx_mm : (float, float)
        The insert's axis (y, x).
    insert_z_mm : float
        z of the insert plane on the axis: the plane fitted through the z centroids of
        the large and medium inserts found (which also gives every insert's
        ``centre_z_mm``).
    rotation_deg : float
        Direction of the 800 mg/cm3 ("hd") spoke seen from the axis, in degrees
        counter-clockwise from +x as the image is displayed (x to the right, y
        downwards), in [0, 360): 90 points to -y (anterior in a supine patient
        scan), as ``rotation_deg=0`` of :func:`phantoms.cci_phantom`.
    insert_body_hu : float
        Median HU of the insert body in the insert plane, 4-32 mm from the axis,
        clear of the inserts (and of rods in the plane).
    inserts : pandas.DataFrame
        One row per insert (:data:`INSERT_COLUMNS`): ``lesion`` (``large_hd`` ...),
        ``diameter_mm``, ``density_mg_cm3``, ``centre_z_mm``, ``centre_y_mm``,
        ``centre_x_mm``, ``found`` (True: seen in the image, the centre is its
        measured centroid; False: placed from the fitted layout), ``confidence``
        (0-1), ``peak_hu`` (highest HU of the lightly smoothed image near the centre),
        ``contrast_hu`` (that peak above the local background) and ``cnr``
        (contrast / noise SD of the smoothed image).
    rods : pandas.DataFrame
        One row per rod found (:data:`ROD_COLUMNS`): ``rod`` (``"ha200"``,
        ``"water"``), ``centre_z_mm`` (middle of the rod's section), ``centre_y_mm``,
        ``centre_x_mm``, ``radius_mm``, ``z_lo_mm`` / ``z_hi_mm`` (where the rod's
        mean HU crosses half-way between its plateau and the slices beyond it; the
        first / last slice when it runs through the end of the scan), ``mean_hu`` and
        ``sd_hu`` (in the ROI of :meth:`rod_rois` with its default margin),
        ``confidence`` (0-1). Empty when no rods were found
        (``locate_cci(..., require_rods=False)``).
    fit_rms_mm : float
        RMS distance between the found large and medium inserts and the fitted layout.
    noise_sd_hu : float
        Robust noise SD of the scan in soft tissue (HU).
    slice_thickness_mm : float
        The scan's nominal slice thickness (sets the ROIs' extent along z).
    scan_z_mm : (float, float)
        z of the scan's first and last slice.
    """

    centre_yx_mm: tuple
    insert_z_mm: float
    rotation_deg: float
    insert_body_hu: float
    inserts: pd.DataFrame
    rods: pd.DataFrame
    fit_rms_mm: float
    noise_sd_hu: float
    slice_thickness_mm: float
    scan_z_mm: tuple

    def __repr__(self):
        found = int(self.inserts["found"].sum())
        rods = ", ".join(self.rods["rod"]) if len(self.rods) else "none"
        return (f"CCILayout(centre_yx_mm=({self.centre_yx_mm[0]:.2f}, {self.centre_yx_mm[1]:.2f}), "
                f"insert_z_mm={self.insert_z_mm:.2f}, rotation_deg={self.rotation_deg:.1f}, "
                f"insert_body_hu={self.insert_body_hu:.1f}, inserts found: {found} of "
                f"{len(self.inserts)}, rods: {rods})")

    def rois(self, radius_mm=None) -> pd.DataFrame:
        """Spherical (ellipsoidal) ROIs of the nine inserts, ready for :func:`pvcalc.quantify`.

        Parameters
        ----------
        radius_mm : float or mapping, optional
            In-plane ROI radius (mm): one number for every insert, or a mapping
            ``{"large": ..., "medium": ..., "small": ...}``. Default: the insert's
            radius + :data:`ROI_MARGIN_MM` (5.0, 4.0 and 3.0 mm), which holds the
            blurred insert and keeps its neighbours (12.5 mm along a spoke) and their
            background shells' inner edge out.

        Returns
        -------
        pandas.DataFrame
            ``lesion``, ``centre_z_mm``, ``centre_y_mm``, ``centre_x_mm``,
            ``radius_mm`` and ``radius_z_mm`` = ``radius_mm`` + 0.75 x slice
            thickness (the half-width of the base of a trapezoidal slice profile with
            edges of half the thickness: the farthest slice that still sees the insert).
        """
        sizes = [name.split("_")[0] for name in self.inserts["lesion"]]
        if radius_mm is None:
            radii = [0.5 * geo.SIZES[s] + ROI_MARGIN_MM for s in sizes]
        elif isinstance(radius_mm, Mapping):
            missing = [s for s in geo.SIZES if s not in radius_mm]
            if missing:
                raise ValueError(f"radius_mm as a mapping needs the sizes {list(geo.SIZES)}, "
                                 f"missing {missing}; e.g. {{'large': 5, 'medium': 4, 'small': 3}}")
            radii = [_positive_radius(radius_mm[s], f"radius_mm[{s!r}]") for s in sizes]
        else:
            radii = [_positive_radius(radius_mm, "radius_mm")] * len(sizes)
        radii = np.asarray(radii, dtype=np.float64)
        return pd.DataFrame({
            "lesion": self.inserts["lesion"].to_numpy(),
            "centre_z_mm": self.inserts["centre_z_mm"].to_numpy(dtype=np.float64),
            "centre_y_mm": self.inserts["centre_y_mm"].to_numpy(dtype=np.float64),
            "centre_x_mm": self.inserts["centre_x_mm"].to_numpy(dtype=np.float64),
            "radius_mm": radii,
            "radius_z_mm": radii + 0.75 * self.slice_thickness_mm})

    def rod_rois(self, margin_mm=2.0):
        """ROIs of the water and the HA rod, in the form :meth:`pvcalc.Calibration.from_rods` takes.

        Parameters
        ----------
        margin_mm : float, optional
            Kept away from the rod's edge in-plane (radius - margin) and from the ends
            of its section along z (margin + half the slice thickness). Default 2 mm.

        Returns
        -------
        (water_roi, ha_roi)
            Each ``((z, y, x), radius_mm, length_mm)``: a cylinder along z centred at
            z; ``((z, y, x), radius_mm)`` (the slice nearest z) when the section is
            too short for a length.

        Raises
        ------
        ValueError
            When the layout has no rods, or the margin leaves no ROI.
        """
        margin = finite_float("margin_mm", margin_mm, unit="mm")
        if margin < 0:
            raise ValueError(f"margin_mm must be >= 0 mm, got {margin_mm!r}")
        missing = [r for r in ("water", "ha200") if r not in set(self.rods["rod"])]
        if missing:
            raise ValueError(
                f"the layout has no {' and no '.join(missing)} rod (locate_cci found "
                f"{list(self.rods['rod']) or 'none'}); rod ROIs and the rod calibration need "
                "both: make sure the scan covers the rods' section, or give a "
                "pvcalc.Calibration(c_ha_mg_cm3_per_hu) instead")
        return tuple(self._rod_roi(self.rods[self.rods["rod"] == r].iloc[0], margin)
                     for r in ("water", "ha200"))

    def _rod_roi(self, row, margin):
        radius = float(row["radius_mm"]) - margin
        if radius <= 0:
            raise ValueError(f"margin_mm={margin:g} mm leaves no ROI in the {row['rod']} rod "
                             f"(radius {row['radius_mm']:.2f} mm); use a smaller margin_mm")
        first, last = self.scan_z_mm
        z_step = margin + 0.5 * self.slice_thickness_mm
        tol = 1e-6
        lo = float(row["z_lo_mm"]) + (0.0 if row["z_lo_mm"] <= first + tol else z_step)
        hi = float(row["z_hi_mm"]) - (0.0 if row["z_hi_mm"] >= last - tol else z_step)
        centre = (0.5 * (lo + hi), float(row["centre_y_mm"]), float(row["centre_x_mm"]))
        if hi - lo <= 0:
            return ((float(row["centre_z_mm"]),) + centre[1:], radius)
        return (centre, radius, hi - lo)

    def calibration(self, scan, *, mass_reference="zero") -> Calibration:
        """Mass calibration from the located rods (:meth:`pvcalc.Calibration.from_rods`).

        Parameters
        ----------
        scan : xarray.DataArray
            The scan the layout was located in.
        mass_reference : {"zero", "water"} or float, optional
            As :meth:`pvcalc.Calibration.from_rods`. Default "zero".

        Returns
        -------
        pvcalc.Calibration
            c_HA = 200 mg/cm3 / (mean HU of the HA rod - mean HU of the water rod).

        Raises
        ------
        ValueError
            When the layout has no rods (``locate_cci(..., require_rods=False)`` on a
            scan without them).
        """
        water, ha = self.rod_rois()
        return Calibration.from_rods(scan, water, ha,
                                     ha_density_mg_cm3=geo.ROD_HA_DENSITY_MG_CM3,
                                     mass_reference=mass_reference)

    def plot(self, scan, ax=None):
        """Overlay of the layout on the insert plane (and on the rods' section).

        Circles are the ROIs of :meth:`rois` (solid: insert found, dashed: placed from
        the layout), labelled by name; the rods' outlines and calibration ROIs are
        drawn on the slice through the middle of their section (its own panel when
        it is not the insert plane).

        Parameters
        ----------
        scan : xarray.DataArray
            The scan the layout was located in.
        ax : matplotlib.axes.Axes or sequence of two, optional
            Where to draw: one axes (the insert plane, with the rods if they are in it)
            or two (insert plane, rods' section). Default: a new figure.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from pvcalc._qrm_plot import plot_layout

        return plot_layout(self, scan, ax)


def _positive_radius(value, name):
    r = finite_float(name, value, unit="mm")
    if r <= 0:
        raise ValueError(f"{name} must be a positive radius in mm, got {value!r}")
    return r


def locate_cci(scan, *, require_rods=True) -> CCILayout:
    """Find the QRM cardiac calcification insert's inserts and rods in a scan.

    Parameters
    ----------
    scan : xarray.DataArray
        A scan of the QRM thorax phantom with the cardiac calcification insert
        (:func:`pvcalc.read_scan`, :func:`pvcalc.make_scan`), covering the insert
        plane and, for the calibration, the rods' section. Any in-plane position and
        rotation of the insert, pixels of about 0.3-0.8 mm, slices of 0.5-5 mm.
    require_rods : bool, optional
        Refuse a scan without both calibration rods (default True). With False the
        layout may have no rods; :meth:`CCILayout.calibration` then raises.

    Returns
    -------
    CCILayout

    Raises
    ------
    TypeError
        ``scan`` is not a scan, ``require_rods`` is not a bool.
    ValueError
        The scan is not this phantom: fewer than 4 of the 6 large and medium inserts
        (5 and 3 mm) were found on three spokes 120 degrees apart, the fit is poor,
        the insert body is not soft tissue, or (``require_rods=True``) a rod is
        missing. The message says what was found and what was expected.

    Notes
    -----
    1. Bright spots: the white top-hat (grey opening by a 9 mm square) of the scan
       smoothed in-plane by a 0.5 mm Gaussian holds what is narrower than 9 mm;
       its connected regions 5 robust SDs above its median, at most 10 mm wide and
       no longer along z than a 5 mm insert through the slice profile, in a
       background above -300 HU, are measured (centroid, contrast, integral).
    2. Spokes: every pair of spots 12.5 +- 2 mm apart (a large and a medium insert
       of one spoke; the outer one holds more HA) fixes a centre and an angle; the
       six model positions (37.5 and 25 mm on three spokes 120 degrees apart) are
       matched to spots within 2.5 mm and the layout refitted (least-squares rigid
       fit). The fit with most matches (at least 4), then the smallest RMS, wins.
    3. Each insert is measured at its fitted position; it is "found" when it matched
       a spot or its peak lies 4 noise SDs above the local background. The layout is
       refitted to the found large and medium inserts (weights cnr^2); a found
       insert's in-plane centre averages its centroid and the layout's position
       (weights cnr^2 and 20^2), a placed one takes the layout's; z comes from the
       insert plane fitted through the found large and medium inserts.
    4. The spokes' densities follow the ordering of HA per volume (integrated
       contrast / nominal volume, which blur does not change): hd > md > ld.
    5. Rods: round discs 7-30 mm across, within 45 mm of the axis, 80 HU brighter
       (HA) or 12 HU and 3 noise SDs darker (water) than the insert body in an image
       smoothed by 2.5 mm, searched in every slice,
       linked along z; the z extent from the half-level crossings of the rod's
       mean HU.

    ``docs/real_phantom.md`` gives every step with its reason.

    Confidences are products of terms in [0, 1]: contrast-to-noise
    ``1 - exp(-(cnr / 5)^2)``, the distance d from the fitted position
    ``exp(-d^2 / 2 mm^2)``, and for the density assignment of a spoke
    ``min(1, log2(q_1 / q_2))`` over its neighbours in the ordering (nominal ratio 2).
    A placed insert gets the layout's confidence (share of the six found times
    ``exp(-rms^2 / 2 mm^2)``) times its spoke's.

    Examples
    --------
    >>> import phantoms
    >>> protocol = phantoms.get_protocol("calcium_scoring", matrix=256, pixel_mm=0.6)
    >>> scan, _ = phantoms.simulate(phantoms.cci_phantom(rotation_deg=30.0), protocol, seed=1,
    ...                             fraction_maps=False)
    >>> layout = locate_cci(scan)
    >>> round(layout.rotation_deg), list(layout.rods["rod"])
    (120, ['ha200', 'water'])

    References
    ----------
    van Praagh GD et al. Fully automated quantification method (FQM) of coronary
    calcium in an anthropomorphic phantom. Med Phys 2021;48:3730-3740.
    doi:10.1002/mp.14912 (insert geometry).
    Umeyama S. Least-squares estimation of transformation parameters between two point
    patterns. IEEE TPAMI 1991;13:376-380. doi:10.1109/34.88573 (rigid fit).
    """
    validate_scan(scan)
    if not isinstance(require_rods, (bool, np.bool_)):
        raise TypeError(f"require_rods must be True or False, got {require_rods!r}")
    spacing = scan_spacing_mm(scan)
    img = prepare(scan, spacing)
    spots = [s for s in detect_spots(img) if s.integral_hu_mm3 > 0 and s.contrast_hu > 0]
    dz = spacing[0]
    tol_z = 2.0 + 0.5 * max(dz, img.thickness_mm)
    fit = fit_spokes(spots, tol_z=tol_z) if len(spots) >= 4 else None
    n_fit = 0 if fit is None else len(fit.matches)
    if n_fit < 4:
        raise ValueError(_not_found_message(len(spots), n_fit))
    if fit.rms_mm > MAX_FIT_RMS_MM:
        raise ValueError(
            f"the bright spots fit the insert's three spokes poorly: {n_fit} large and medium "
            f"inserts fit with an RMS distance of {fit.rms_mm:.2f} mm (at most "
            f"{MAX_FIT_RMS_MM} mm expected); is this a scan of the QRM cardiac calcification "
            "insert?")
    ins = inserts_table(img, fit, spots)
    body_hu = insert_body_hu(img, ins.centre_yx, ins.z_mm, ins.table)
    lo, hi = INSERT_BODY_RANGE_HU
    if not lo <= body_hu <= hi:
        raise ValueError(
            f"the insert body around the fitted centre reads {body_hu:.0f} HU, not the soft "
            f"tissue-like {lo:g} to {hi:g} HU of the QRM insert (70-80 HU at 120 kVp); is this "
            "a scan of the QRM cardiac calcification insert?")
    rods = find_rods(img, ins.centre_yx, body_hu, ins.table)
    if require_rods and len(rods) < 2:
        raise ValueError(_no_rods_message(rods, body_hu))
    in_plane = [r for r in rods.values() if r.z_lo <= ins.z_mm <= r.z_hi]
    if in_plane:   # rods through the insert plane (the compact replica): leave them out
        body_hu = insert_body_hu(img, ins.centre_yx, ins.z_mm, ins.table, in_plane)
    layout = CCILayout(
        centre_yx_mm=ins.centre_yx, insert_z_mm=float(ins.z_mm),
        rotation_deg=float(ins.rotation_deg), insert_body_hu=float(body_hu), inserts=ins.table,
        rods=pd.DataFrame(columns=list(ROD_COLUMNS)), fit_rms_mm=float(ins.rms_mm),
        noise_sd_hu=float(img.noise_sd_hu), slice_thickness_mm=float(img.thickness_mm),
        scan_z_mm=(float(img.z[0]), float(img.z[-1])))
    return _with_rods(layout, scan, rods)


def _not_found_message(n_spots, n_fit):
    expected = ("the QRM cardiac calcification insert has six 3 and 5 mm hydroxyapatite "
                "inserts on three spokes 120 degrees apart (25 and 37.5 mm from a common axis, "
                "in one axial plane)")
    check = "check that the scan covers the insert plane and is a scan of this phantom"
    if n_spots < 4:
        return (f"found {n_spots} compact bright spots (3-5 mm across, well above their "
                f"surroundings), but {expected}; {check}")
    return (f"found {n_spots} compact bright spots, but at best {n_fit} of them fit the "
            f"pattern of the large and medium inserts (at least 4 of the 6 are needed): "
            f"{expected}; {check}")


def _no_rods_message(rods, body_hu):
    missing = [n for n in ("ha200", "water") if n not in rods]
    what = {"ha200": f"a 200 mg HA/cm3 rod (a round disc {ROD_DIAMETER_RANGE_MM[0]:g}-"
                     f"{ROD_DIAMETER_RANGE_MM[1]:g} mm across, at least {HA_MIN_CONTRAST_HU:g} HU "
                     f"brighter than the insert body's {body_hu:.0f} HU)",
            "water": f"a water-equivalent rod (a round disc at least {WATER_MIN_CONTRAST_HU:g} HU, "
                     f"and {WATER_MIN_SD:g} noise SDs, darker than the insert body's "
                     f"{body_hu:.0f} HU)"}
    names = {"ha200": "200 mg HA/cm3 rod", "water": "water-equivalent rod"}
    return (f"found no calibration {' and no '.join(names[m] for m in missing)}: expected "
            f"{' and '.join(what[m] for m in missing)} within {ROD_SEARCH_MM:g} mm of the "
            "insert axis, in any slice; make sure the scan covers the rods' section, or pass "
            "require_rods=False to locate the inserts alone")


def _with_rods(layout, scan, rods):
    """The layout with its rods table (statistics in the default calibration ROIs)."""
    from dataclasses import replace

    from pvcalc.calibration import _roi_mask

    rows = []
    for name in ("ha200", "water"):
        if name not in rods:
            continue
        r = rods[name]
        rows.append({"rod": name, "centre_z_mm": 0.5 * (r.z_lo + r.z_hi), "centre_y_mm": r.y,
                     "centre_x_mm": r.x, "radius_mm": r.radius_mm, "z_lo_mm": r.z_lo,
                     "z_hi_mm": r.z_hi, "mean_hu": np.nan, "sd_hu": np.nan,
                     "confidence": r.confidence})
    table = pd.DataFrame(rows, columns=list(ROD_COLUMNS))
    layout = replace(layout, rods=table)
    values = np.asarray(scan.values)
    for i, row in table.iterrows():
        try:
            roi = layout._rod_roi(row, 2.0)
            mask = _roi_mask(scan, roi, f"{row['rod']} ROI")
        except ValueError:
            continue
        v = values[mask].astype(np.float64)
        table.loc[i, "mean_hu"] = float(v.mean())
        table.loc[i, "sd_hu"] = float(v.std(ddof=1)) if v.size > 1 else np.nan
    return layout
