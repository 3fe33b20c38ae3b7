"""Geometry of the QRM cardiac calcification insert (CCI) and rigid 2D fits to it.

The facts used by the locator (:func:`pvcalc.qrm.locate_cci`), as measured on a
real 120 kVp scan of the physical phantom and given by the manufacturer:

- nine hydroxyapatite (HA) cylinders, diameter = length = 1, 3 and 5 mm, at 200,
  400 and 800 mg HA/cm3, axis along z, in one axial plane;
- three radial spokes 120 degrees apart, one density per spoke; on each spoke the
  5 mm insert lies 37.5 mm from the insert's axis, the 3 mm one 25 mm and the
  1 mm one 12.5 mm (the FQM analysis code of van Praagh et al. 2021 uses the same
  12.5 mm steps);
- calibration rods of 200 mg HA/cm3 and water-equivalent material, about 20 mm
  across, in their own axial section (the simulator's compact replica puts 10 mm
  rods in the insert plane instead).

Angles follow :mod:`phantoms.library`: degrees counter-clockwise from +x as the
image is displayed (x to the right, y downwards), so 90 degrees points to -y.

References
----------
van Praagh GD et al. Fully automated quantification method (FQM) of coronary
calcium in an anthropomorphic phantom. Med Phys 2021;48:3730-3740. doi:10.1002/mp.14912
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["INSERTS", "SIZES", "DENSITIES", "SPOKE_RADIUS_MM", "insert_volume_mm3",
           "layout_points", "fit_rigid", "angle_deg", "point_at"]

#: Size name -> diameter (= length) in mm.
SIZES = {"large": 5.0, "medium": 3.0, "small": 1.0}
#: Density name -> mg HA/cm3.
DENSITIES = {"hd": 800.0, "md": 400.0, "ld": 200.0}
#: Size name -> distance of the insert's centre from the insert axis (mm).
SPOKE_RADIUS_MM = {"large": 37.5, "medium": 25.0, "small": 12.5}
#: (name, diameter_mm, density_mg_cm3) in the order of phantoms.library.CCI_INSERTS.
INSERTS = tuple((f"{size}_{dens}", SIZES[size], DENSITIES[dens])
                for dens in DENSITIES for size in SIZES)
#: Diameter of the calibration rods of the physical insert (mm), for the search ranges.
ROD_DIAMETER_MM = 20.0
#: HA density of the calcium calibration rod (mg HA/cm3).
ROD_HA_DENSITY_MG_CM3 = 200.0


def insert_volume_mm3(diameter_mm):
    """Nominal volume of a cylinder with diameter = length = d: pi d^3 / 4 (mm3)."""
    return math.pi * float(diameter_mm) ** 3 / 4.0


def point_at(centre_yx, radius_mm, angle):
    """(y, x) at ``radius_mm`` from ``centre_yx`` in direction ``angle`` (degrees)."""
    a = math.radians(angle)
    return (centre_yx[0] - radius_mm * math.sin(a), centre_yx[1] + radius_mm * math.cos(a))


def angle_deg(centre_yx, point_yx):
    """Direction of ``point_yx`` seen from ``centre_yx``, degrees in [0, 360)."""
    a = math.degrees(math.atan2(-(point_yx[0] - centre_yx[0]), point_yx[1] - centre_yx[1]))
    return a % 360.0


def layout_points(centre_yx, angle0_deg, sizes=("large", "medium")):
    """Model positions of the inserts of three spokes; spoke m points to angle0 + 120 m.

    Returns
    -------
    points : (3 * len(sizes), 2) ndarray of (y, x) in mm
        Ordered spoke by spoke, sizes in the given order within a spoke.
    """
    return np.array([point_at(centre_yx, SPOKE_RADIUS_MM[s], angle0_deg + 120.0 * m)
                     for m in range(3) for s in sizes])


def fit_rigid(model_yx, measured_yx, weights=None):
    """Rotation about the origin and translation taking model points onto measured ones.

    Weighted least squares (the 2D Procrustes problem without scaling or reflection;
    Umeyama, IEEE TPAMI 1991;13:376, doi:10.1109/34.88573).

    Parameters
    ----------
    model_yx, measured_yx : (N, 2) array_like of (y, x) in mm, N >= 2
        Model points relative to the model's centre, and where they were measured.
    weights : (N,) array_like of float, optional
        Weight of each point (default equal weights).

    Returns
    -------
    centre_yx : (2,) ndarray
        Where the model's origin lands (mm).
    rotation_deg : float
        Counter-clockwise rotation in the display convention of :func:`angle_deg`.
    rms_mm : float
        Root-mean-square distance (weighted) between the moved model points and the
        measured ones.
    """
    m = np.asarray(model_yx, dtype=np.float64)
    p = np.asarray(measured_yx, dtype=np.float64)
    # work in (u, v) = (x, -y), a right-handed frame where angles are counter-clockwise
    mu = np.column_stack([m[:, 1], -m[:, 0]])
    pu = np.column_stack([p[:, 1], -p[:, 0]])
    w = np.ones(len(m)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mc, pc = w @ mu, w @ pu
    a, b = mu - mc, pu - pc
    num = float(np.sum(w * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])))
    den = float(np.sum(w * (a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1])))
    theta = math.atan2(num, den)
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    t = pc - rot @ mc
    moved = mu @ rot.T + t
    rms = float(np.sqrt(np.sum(w * np.sum((moved - pu) ** 2, axis=1))))
    return np.array([-t[1], t[0]]), math.degrees(theta), rms
