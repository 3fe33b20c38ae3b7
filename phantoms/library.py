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
from phantoms._validate import boolean, interval, one_of, real_in_range
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
_CCI_ROD_RADIUS_MM = 5.0         # 10 mm diameter calibration rods (the real ones: 20 mm)
_CCI_ROD_DISTANCE_MM = 20.0      # rods placed between the spokes (in-plane; see docs)
_CCI_ROD_ANGLES_DEG = {"ha200": 150.0, "water": 30.0}
_CCI_STACK_SPACING_MM = 12.0     # insert_layout="stacked": one axial plane per density group

_CCI_LAYOUTS = ("qrm", "stacked")


def _yx_on_circle(radius_mm, angle_deg):
    """Point at ``radius_mm`` from the centre; angle 0 = +x, 90 = -y (anterior, image up)."""
    a = math.radians(angle_deg)
    return (-radius_mm * math.sin(a), radius_mm * math.cos(a))


def cci_phantom(*, extension_ring=False, z_extent_mm=(-16.5, 16.5), insert_layout="qrm",
                calibration_rods=True):
    """Replica of the QRM cardiac calcification insert (CCI) in the thorax phantom.

    Nine hydroxyapatite cylinders with diameter = length = 1, 3 and 5 mm at 200, 400 and
    800 mg HA/cm3, axis along z, in the 100 mm insert at the centre of a 300 x 200 mm
    thorax body (400 x 300 mm with the extension ring), plus a 200 mg HA/cm3 and a
    water-equivalent calibration rod.

    Parameters
    ----------
    extension_ring : bool, default False
        Add the extension ring (body 400 x 300 mm, a "large patient").
    z_extent_mm : (float, float), default (-16.5, 16.5)
        Axial extent of the phantom in mm; the insert plane is at z = 0. The default
        gives eleven contiguous 3 mm slices with one centred on the insert plane
        (:func:`phantoms.repeat` then moves the phantom by a random sub-slice shift).
    insert_layout : {"qrm", "stacked"}, default "qrm"
        ``"qrm"``: all nine inserts in the plane z = 0, one radial spoke per density
        (large outermost at 37.5 mm, medium at 25 mm, small at 12.5 mm from the
        centre), spokes 120 degrees apart, as in the commercial insert.
        ``"stacked"``: the same in-plane layout but each density group in its own
        axial plane (HD at z = +12 mm, MD at 0, LD at -12 mm), for studies that want
        the groups separated along z.
    calibration_rods : bool, default True
        Include the two z-invariant calibration rods (10 mm diameter, 20 mm from the
        centre between the spokes): 200 mg HA/cm3 and water-equivalent (0 HU).

    Returns
    -------
    Phantom
        Lesions named ``"large_hd"``, ``"medium_md"``, ``"small_ld"``, ... (size then
        density); :data:`CCI_REFERENCE_NAMES` maps them to the reference table's
        ``insert`` column (``"Large_HD"`` ...). Rods in ``phantom.rods`` in the order
        200 mg HA/cm3, water.

    Notes
    -----
    True volume of a cylinder with d = L: V = pi d^3 / 4, i.e. 0.785, 21.21 and
    98.17 mm3; true mass m = density x V / 1000 (mg), 0.157 to 78.5 mg.

    The real insert keeps its calibration rods (20 mm diameter) in a separate axial
    plane about 30 mm from the insert plane; the simulator's rods are z-invariant, so
    here they are 10 mm wide and sit in the insert plane between the spokes, 20 mm from
    the centre and at least 10 mm from any insert. A scoring ROI must therefore exclude
    ``phantom.rods``. The insert material is the body's soft tissue (40 HU).

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
    """
    from phantoms.body import Rod, ThoraxBody
    from phantoms.phantom import Lesion, Phantom
    from phantoms.shapes import Cylinder

    boolean("extension_ring", extension_ring)
    boolean("calibration_rods", calibration_rods)
    one_of("insert_layout", insert_layout, _CCI_LAYOUTS)
    z_lo, z_hi = interval("z_extent_mm", z_extent_mm)

    lesions = []
    for name, diameter, density in CCI_INSERTS:
        size, dens = name.split("_")
        k = {"large": 0, "medium": 1, "small": 2}[size]
        y, x = _yx_on_circle(_CCI_RADIUS_LARGE_MM - k * _CCI_STEP_MM,
                             _CCI_SPOKE_ANGLES_DEG[dens])
        z = 0.0
        if insert_layout == "stacked":
            z = {"hd": 1.0, "md": 0.0, "ld": -1.0}[dens] * _CCI_STACK_SPACING_MM
        if z - diameter / 2 < z_lo or z + diameter / 2 > z_hi:
            raise ValueError(
                f"z_extent_mm=({z_lo}, {z_hi}) does not contain insert {name!r} "
                f"(z from {z - diameter / 2} to {z + diameter / 2} mm); widen it, e.g. "
                "z_extent_mm=(-20.0, 20.0)")
        shape = Cylinder((z, y, x), diameter / 2.0, diameter, axis=(1.0, 0.0, 0.0))
        lesions.append(Lesion(shape, density, name=name))

    rods = ()
    if calibration_rods:
        rods = (
            Rod(_yx_on_circle(_CCI_ROD_DISTANCE_MM, _CCI_ROD_ANGLES_DEG["ha200"]),
                _CCI_ROD_RADIUS_MM, density_mg_cm3=200.0),
            Rod(_yx_on_circle(_CCI_ROD_DISTANCE_MM, _CCI_ROD_ANGLES_DEG["water"]),
                _CCI_ROD_RADIUS_MM, density_mg_cm3=0.0, hu=0.0),
        )
    body = ThoraxBody(extension_ring=bool(extension_ring))
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
