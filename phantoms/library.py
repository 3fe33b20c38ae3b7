"""Named phantoms: the QRM cardiac calcification insert replica, a motion phantom and
virtual patients with coronary lesion populations.

Every function returns a :class:`phantoms.phantom.Phantom` (body, lesions, calibration
rods, z extent); render it with :func:`phantoms.simulate`. All lengths in mm,
coordinates ``(z, y, x)`` with ``x = y = 0`` at the body centre, densities in
mg HA/cm3, velocities in mm/s. The page ``docs/phantoms.md`` describes each phantom,
its sources and what could not be verified.
"""

from __future__ import annotations

import math

from phantoms._library_patients import (
    ARTERIES,
    RISK_CATEGORY_BOUNDS,
    coronary_centrelines,
    estimated_agatston,
    lesion_population,
    virtual_patient,
)
from phantoms._validate import boolean, finite_real, interval, one_of, real_in_range, vector
from phantoms.motion import check_heart_rate

__all__ = [
    "ARTERIES",
    "CCI_INSERTS",
    "CCI_REFERENCE_NAMES",
    "RISK_CATEGORY_BOUNDS",
    "cci_phantom",
    "coronary_centrelines",
    "estimated_agatston",
    "lesion_population",
    "motion_phantom",
    "virtual_patient",
]

# --- QRM cardiac calcification insert (CCI) -------------------------------------------

#: (name, diameter_mm, density_mg_cm3) of the nine inserts. Names are
#: ``<size>_<density>`` in lower case; ``CCI_REFERENCE_NAMES`` maps them to the
#: ``insert`` column of the real-scanner reference table (``Large_HD`` ...).
CCI_INSERTS = tuple(
    (f"{size}_{dens}", diameter, density)
    for dens, density in (("hd", 800.0), ("md", 400.0), ("ld", 200.0))
    for size, diameter in (("large", 5.0), ("medium", 3.0), ("small", 1.0))
)

#: Lower-case lesion name -> ``insert`` value of ``qrm_cci_clinical_scores.csv``.
CCI_REFERENCE_NAMES = {
    name: "_".join((name.split("_")[0].capitalize(), name.split("_")[1].upper()))
    for name, _, _ in CCI_INSERTS
}

# Geometry (see docs/phantoms.md for sources and what is assumed):
_CCI_RADIUS_LARGE_MM = 37.5      # large inserts on a circle; medium and small 12.5 / 25 mm inwards
_CCI_STEP_MM = 12.5              # radial step large -> medium -> small (FQM source code)
_CCI_SPOKE_ANGLES_DEG = {"hd": 90.0, "md": 210.0, "ld": 330.0}   # one spoke per density
_CCI_STACK_SPACING_MM = 12.0     # insert_layout="stacked": one axial plane per density group
# geometry="compact" (the earlier replica): z-invariant 10 mm rods in the insert plane
_CCI_ROD_RADIUS_MM = 5.0
_CCI_ROD_DISTANCE_MM = 20.0      # rods placed between the spokes
_CCI_ROD_ANGLES_DEG = {"ha200": 150.0, "water": 30.0}
# geometry="physical" (measured on a real scan of the phantom, see docs/phantoms.md)
_CCI_INSERT_DIAMETER_MM = 100.0
_CCI_PHYSICAL_ROD_RADIUS_MM = 10.0         # 20 mm rods
_CCI_PHYSICAL_ROD_Z_MM = (30.0, 45.0)      # their own axial section
_CCI_PHYSICAL_WATER_ROD_MM = 25.0          # water rod centre from the HA rod (assumed)
_CCI_PHYSICAL_WATER_ROD_ANGLE_DEG = 30.0   # between the HD and LD spokes (assumed)
_CCI_Z_EXTENT_MM = {"physical": (-16.5, 49.5), "compact": (-16.5, 16.5)}

_CCI_LAYOUTS = ("qrm", "stacked")
_CCI_GEOMETRIES = ("physical", "compact")


def _yx_on_circle(radius_mm, angle_deg):
    """Point at ``radius_mm`` from the centre; angle 0 = +x, 90 = -y (anterior, image up)."""
    a = math.radians(angle_deg)
    return (-radius_mm * math.sin(a), radius_mm * math.cos(a))


def _cci_rods(geometry, rotation_deg, centre):
    """The 200 mg HA/cm3 and the water rod of a CCI geometry, rotated and moved."""
    from phantoms.body import Rod

    def at(radius, angle):
        y, x = _yx_on_circle(radius, angle + rotation_deg)
        return (y + centre[0], x + centre[1])

    if geometry == "compact":
        return (Rod(at(_CCI_ROD_DISTANCE_MM, _CCI_ROD_ANGLES_DEG["ha200"]), _CCI_ROD_RADIUS_MM,
                    density_mg_cm3=200.0),
                Rod(at(_CCI_ROD_DISTANCE_MM, _CCI_ROD_ANGLES_DEG["water"]), _CCI_ROD_RADIUS_MM,
                    density_mg_cm3=0.0, hu=0.0))
    r, z = _CCI_PHYSICAL_ROD_RADIUS_MM, _CCI_PHYSICAL_ROD_Z_MM
    return (Rod(at(0.0, 0.0), r, density_mg_cm3=200.0, z_range_mm=z),
            Rod(at(_CCI_PHYSICAL_WATER_ROD_MM, _CCI_PHYSICAL_WATER_ROD_ANGLE_DEG), r,
                density_mg_cm3=0.0, hu=0.0, z_range_mm=z))


def cci_phantom(*, extension_ring=False, z_extent_mm=None, insert_layout="qrm",
                calibration_rods=True, geometry="physical", rotation_deg=0.0,
                centre_yx_mm=(0.0, 0.0), insert_hu=75.0):
    """Replica of the QRM cardiac calcification insert (CCI) in the thorax phantom.

    Nine hydroxyapatite cylinders with diameter = length = 1, 3 and 5 mm at 200, 400 and
    800 mg HA/cm3, axis along z, in the 100 mm insert at the centre of a 300 x 200 mm
    thorax body (400 x 300 mm with the extension ring), plus a 200 mg HA/cm3 and a
    water-equivalent calibration rod.

    Parameters
    ----------
    extension_ring : bool, default False
        Add the extension ring (body 400 x 300 mm, a "large patient").
    z_extent_mm : (float, float) or None, default None
        Axial extent of the phantom in mm; the insert plane is at z = 0. None:
        (-16.5, 49.5) for ``geometry="physical"`` (twenty-two contiguous 3 mm slices,
        one centred on the insert plane, and the rods' section z = 30 to 45 mm),
        (-16.5, 16.5) for ``"compact"`` (eleven slices). :func:`phantoms.repeat` then
        moves the phantom by a random sub-slice shift. An extent that leaves out
        z = 30 to 45 mm scans the inserts only: the physical rods are then not in the
        scan (and :func:`pvcalc.calibration.rod_calibration` says so).
    insert_layout : {"qrm", "stacked"}, default "qrm"
        ``"qrm"``: all nine inserts in the plane z = 0, one radial spoke per density
        (large outermost at 37.5 mm, medium at 25 mm, small at 12.5 mm from the
        centre), spokes 120 degrees apart, as in the commercial insert.
        ``"stacked"``: the same in-plane layout but each density group in its own
        axial plane (HD at z = +12 mm, MD at 0, LD at -12 mm), for studies that want
        the groups separated along z.
    calibration_rods : bool, default True
        Include the two calibration rods, 200 mg HA/cm3 and water-equivalent (0 HU):
        see ``geometry``.
    geometry : {"physical", "compact"}, default "physical"
        ``"physical"``: as measured on a real scan of the phantom. A 100 mm insert
        cylinder of ``insert_hu`` at the body centre; rods of 20 mm diameter in their
        own axial section, z = 30 to 45 mm: the HA rod on the insert's axis, the water
        rod 25 mm from it between the HD and LD spokes.
        ``"compact"``: the earlier replica (the same scans for the same seed): inserts
        in the body's 40 HU tissue, two z-invariant rods of 10 mm diameter in the insert
        plane, 20 mm from the centre between the spokes.
    rotation_deg : float, default 0.0
        Rotation of the spokes and of the rods' arrangement about the insert axis, in
        degrees, counter-clockwise as displayed (y down); 0: the HD spoke points
        anterior. Real scans show the insert at any angle.
    centre_yx_mm : 2 floats, default (0, 0)
        In-plane position (y, x) of the phantom's centre in mm: the body, its insert,
        the rods and the inserts all move by it (real scans: off-centre by tens of mm).
    insert_hu : float, default 75.0
        CT number of the insert cylinder (``geometry="physical"``; a real 120 kVp scan
        read 70-80 HU). The compact replica has no insert cylinder.

    Returns
    -------
    Phantom
        Lesions named ``"large_hd"``, ``"medium_md"``, ``"small_ld"``, ... (size then
        density); :data:`CCI_REFERENCE_NAMES` maps them to the reference table's
        ``insert`` column (``"Large_HD"`` ...). Rods in ``phantom.rods`` in the order
        200 mg HA/cm3, water. The lesions' true centres (rotation and offset included)
        are in the truth of every scan; the body records ``centre_yx_mm`` and, with the
        physical geometry, ``insert_rotation_deg`` (scan attributes
        ``insert_centre_*_mm``, ``insert_rotation_deg``).

    Notes
    -----
    True volume of a cylinder with d = L: V = pi d^3 / 4, i.e. 0.785, 21.21 and
    98.17 mm3; true mass m = density x V / 1000 (mg), 0.157 to 78.5 mg.

    Physical geometry, measured on a real 120 kVp scan of the phantom: the 100 mm
    insert, its 70-80 HU body, the three spokes 120 degrees apart with the 5 mm inserts
    at about 37.5 mm, the rods' own axial section about 30-45 mm from the insert plane,
    the 20 mm HA rod on the insert axis and the water rod beside it. Assumed: the
    section's exact ends (30 and 45 mm), the water rod's distance (25 mm) and
    direction, and the rods' material: the HA rod reads the materials table's
    k(kVp) x 200 mg/cm3 above 0 HU (252 HU at 120 kVp; real scanners read about
    310 HU) and the water rod 0 HU (real: 30-50 HU). The compact replica keeps its
    rods in the insert plane, so a scoring ROI must exclude ``phantom.rods`` there.

    References
    ----------
    van Praagh GD et al. Fully automated quantification method (FQM) of coronary
    calcium in an anthropomorphic phantom. Med Phys 2021. doi:10.1002/mp.14912
    (geometry read from the published FQM analysis code).
    McCollough CH et al. Coronary artery calcium: a multi-institutional,
    multimanufacturer international standard for quantification at cardiac CT.
    Radiology 2007;243:527-38. doi:10.1148/radiol.2432050808

    Examples
    --------
    >>> from phantoms.library import cci_phantom
    >>> p = cci_phantom()
    >>> [les.name for les in p.lesions][:3]
    ['large_hd', 'medium_hd', 'small_hd']
    >>> round(p.lesions[0].shape.volume_mm3, 2)
    98.17
    >>> p.z_extent_mm, p.rods[0].radius_mm, p.rods[0].z_range_mm
    ((-16.5, 49.5), 10.0, (30.0, 45.0))
    >>> q = cci_phantom(rotation_deg=90.0, centre_yx_mm=(10.0, -20.0))
    >>> [round(v, 6) + 0.0 for v in q.lesions[0].shape.centre_mm]   # large_hd, was (0, -37.5, 0)
    [0.0, 10.0, -57.5]
    """
    from phantoms.body import ThoraxBody
    from phantoms.phantom import Lesion, Phantom
    from phantoms.shapes import Cylinder

    boolean("extension_ring", extension_ring)
    boolean("calibration_rods", calibration_rods)
    one_of("insert_layout", insert_layout, _CCI_LAYOUTS)
    one_of("geometry", geometry, _CCI_GEOMETRIES)
    rotation = finite_real("rotation_deg", rotation_deg, unit="degrees")
    centre = vector("centre_yx_mm", centre_yx_mm, axes=("y", "x"))
    insert_hu = finite_real("insert_hu", insert_hu, unit="HU")
    if geometry == "compact" and insert_hu != 75.0:
        raise ValueError(
            f"insert_hu={insert_hu} applies to geometry='physical' only: the compact replica "
            "has no insert cylinder (its inserts sit in the body's 40 HU tissue); use "
            "geometry='physical' or leave insert_hu out")
    if z_extent_mm is None:
        z_extent_mm = _CCI_Z_EXTENT_MM[geometry]
    z_lo, z_hi = interval("z_extent_mm", z_extent_mm)

    lesions = []
    for name, diameter, density in CCI_INSERTS:
        size, dens = name.split("_")
        k = {"large": 0, "medium": 1, "small": 2}[size]
        y, x = _yx_on_circle(_CCI_RADIUS_LARGE_MM - k * _CCI_STEP_MM,
                             _CCI_SPOKE_ANGLES_DEG[dens] + rotation)
        z = 0.0
        if insert_layout == "stacked":
            z = {"hd": 1.0, "md": 0.0, "ld": -1.0}[dens] * _CCI_STACK_SPACING_MM
        if z - diameter / 2 < z_lo or z + diameter / 2 > z_hi:
            raise ValueError(
                f"z_extent_mm=({z_lo}, {z_hi}) does not contain insert {name!r} "
                f"(z from {z - diameter / 2} to {z + diameter / 2} mm); widen it, e.g. "
                f"z_extent_mm={_CCI_Z_EXTENT_MM[geometry]}")
        shape = Cylinder((z, y + centre[0], x + centre[1]), diameter / 2.0, diameter,
                         axis=(1.0, 0.0, 0.0))
        lesions.append(Lesion(shape, density, name=name))

    rods = _cci_rods(geometry, rotation, centre) if calibration_rods else ()
    if geometry == "physical":
        body = ThoraxBody(extension_ring=bool(extension_ring),
                          insert_diameter_mm=_CCI_INSERT_DIAMETER_MM, insert_hu=insert_hu,
                          centre_yx_mm=centre, insert_rotation_deg=rotation)
    else:
        body = ThoraxBody(extension_ring=bool(extension_ring), centre_yx_mm=centre)
    name = "cci_large" if extension_ring else "cci"
    return Phantom(body, tuple(lesions), rods=rods, z_extent_mm=(z_lo, z_hi), name=name)


# --- Motion phantom ---------------------------------------------------------------------

_MOTION_PROFILES = ("constant", "cardiac")
_MOTION_ROW_CENTRE_Y_MM = -20.0     # row of inserts along y at x = 0, in the mediastinum
_MOTION_ROW_HALF_LENGTH_MM = 60.0


def motion_phantom(*, velocities_mm_s=(0.0, 10.0, 20.0, 30.0, 60.0, 100.0), diameter_mm=5.0,
                   density_mg_cm3=400.0, profile="constant", heart_rate_bpm=60.0,
                   spacing_mm=None, z_extent_mm=(-16.5, 16.5), extension_ring=False):
    """Motion phantom: one cylindrical insert per velocity, moving in-plane along x.

    After the QRM-Sim2D set-ups (a computer-controlled arm moves a calcified insert
    inside the thorax phantom at set speeds perpendicular to its axis): each insert is a
    cylinder with diameter = length = ``diameter_mm`` along z, the inserts sit in one
    row along y (centred at y = -20 mm, x = 0, between the lungs and in front of the
    spine) in the plane z = 0, and each moves along x.

    Parameters
    ----------
    velocities_mm_s : sequence of float, default (0, 10, 20, 30, 60, 100)
        One insert per value, in mm/s (>= 0, <= 500). With ``profile="constant"`` the
        speed during acquisition; with ``"cardiac"`` the peak speed of the cycle.
    diameter_mm : float, default 5.0
        Insert diameter and length in mm (0.5 to 20).
    density_mg_cm3 : float, default 400.0
        Hydroxyapatite density in mg HA/cm3 (> 0).
    profile : {"constant", "cardiac"}, default "constant"
        ``"constant"``: :class:`phantoms.motion.ConstantVelocity`;
        ``"cardiac"``: :class:`phantoms.motion.CardiacMotion` (rest in mid-diastole,
        systolic peak) at ``heart_rate_bpm``. An insert with velocity 0 is static.
    heart_rate_bpm : float, default 60.0
        Heart rate of the cardiac profile (30 to 200 bpm): the period of the
        motion and the scan's timing (a gated protocol samples its
        ``gating_phase`` of this cycle). Unused with ``profile="constant"``.
    spacing_mm : float or None
        Centre-to-centre distance of the inserts along y; default
        ``max(15, diameter_mm + 10)`` mm, so the patches never overlap whatever the
        motion along x.
    z_extent_mm : (float, float), default (-16.5, 16.5)
        Axial extent in mm (eleven 3 mm slices, one centred on the inserts).
    extension_ring : bool, default False
        Use the 400 x 300 mm body.

    Returns
    -------
    Phantom
        Lesions named ``"v000"``, ``"v010"``, ... (speed in mm/s, rounded).

    References
    ----------
    van der Werf NR et al. Influence of heart rate on coronary calcium scores: a
    multi-manufacturer phantom study. Int J Cardiovasc Imaging 2018.
    doi:10.1007/s10554-017-1293-x (QRM-Sim2D; coronary arteries move at 10-30 mm/s
    during the acquisition).
    Groen JM et al. Med Phys 2009;36:438 (moving-phantom study of the adaptive
    threshold; constant-velocity inserts).

    Examples
    --------
    >>> from phantoms.library import motion_phantom
    >>> p = motion_phantom(velocities_mm_s=(0, 20))
    >>> [les.name for les in p.lesions]
    ['v000', 'v020']
    """
    from phantoms.body import ThoraxBody
    from phantoms.motion import CardiacMotion, ConstantVelocity, Static
    from phantoms.phantom import Lesion, Phantom
    from phantoms.shapes import Cylinder

    try:
        velocities = [float(v) for v in velocities_mm_s]
    except (TypeError, ValueError):
        raise TypeError(
            "velocities_mm_s must be a sequence of numbers in mm/s, got "
            f"{velocities_mm_s!r}; pass e.g. (0, 10, 20)") from None
    if not velocities:
        raise ValueError("velocities_mm_s is empty; give at least one velocity in mm/s")
    bad = [v for v in velocities if not (math.isfinite(v) and 0.0 <= v <= 500.0)]
    if bad:
        raise ValueError(
            f"velocities_mm_s must lie in [0, 500] mm/s, got {bad}; coronary arteries move "
            "at up to about 110 mm/s")
    diameter = real_in_range("diameter_mm", diameter_mm, 0.5, 20.0, unit="mm")
    density = real_in_range("density_mg_cm3", density_mg_cm3, 1e-6, 3000.0, unit="mg HA/cm3")
    hr = check_heart_rate(heart_rate_bpm)
    one_of("profile", profile, _MOTION_PROFILES)
    if spacing_mm is None:
        spacing = max(15.0, diameter + 10.0)
    else:
        spacing = real_in_range("spacing_mm", spacing_mm, diameter + 2.0, 200.0, unit="mm",
                                hint="inserts need at least 2 mm between them")
    z_lo, z_hi = interval("z_extent_mm", z_extent_mm)
    if z_lo > -diameter / 2 or z_hi < diameter / 2:
        raise ValueError(
            f"z_extent_mm=({z_lo}, {z_hi}) must contain the inserts (z from "
            f"{-diameter / 2} to {diameter / 2} mm); widen it")
    n = len(velocities)
    span = (n - 1) * spacing
    if span / 2 + diameter / 2 > _MOTION_ROW_HALF_LENGTH_MM:
        raise ValueError(
            f"{n} inserts at spacing_mm={spacing} span {span + diameter} mm, more than the "
            f"{2 * _MOTION_ROW_HALF_LENGTH_MM:g} mm heart region of the thorax (between the "
            "anterior chest wall and the spine); give fewer velocities or a smaller spacing_mm")

    lesions = []
    for i, v in enumerate(velocities):
        y = _MOTION_ROW_CENTRE_Y_MM - span / 2 + i * spacing
        shape = Cylinder((0.0, y, 0.0), diameter / 2.0, diameter, axis=(1.0, 0.0, 0.0))
        if v == 0.0:
            motion = Static()
        elif profile == "constant":
            motion = ConstantVelocity((0.0, 0.0, v))
        else:
            motion = CardiacMotion((0.0, 0.0, 1.0), v, heart_rate_bpm=hr)
        lesions.append(Lesion(shape, density, motion=motion, name=f"v{round(v):03d}"))
    names = [les.name for les in lesions]
    if len(set(names)) != len(names):
        raise ValueError(
            f"velocities_mm_s must be distinct after rounding to 1 mm/s, got {velocities}")
    body = ThoraxBody(extension_ring=bool(extension_ring))
    return Phantom(body, tuple(lesions), z_extent_mm=(z_lo, z_hi), name=f"motion_{profile}")
