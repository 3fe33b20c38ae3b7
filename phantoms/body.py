"""Background cross-sections: a thorax-shaped body and calibration rods.

The body is z-invariant (an infinite prism), so it is rendered once as a 2D HU
map with in-plane partial volume and broadcast to every slice. A rod runs along
z through the whole scan, or only through its own axial section
(``Rod.z_range_mm``); the simulator then mixes the 2D maps with and without it
slice by slice (:mod:`phantoms._scene`).

Geometry of :class:`ThoraxBody` (x left-right, y anterior-posterior, both
centred on ``centre_yx_mm``, default (0, 0); fractions of the body's width W and
height H):

* body: ellipse W x H (default 300 x 200 mm, the QRM thorax phantom's outer
  size) of ``tissue_hu`` (default 40 HU, blood / soft tissue);
* extension ring (optional): ellipse ``ring_width_mm x ring_height_mm``
  (default 400 x 300 mm) of ``ring_hu`` (default -100 HU, fat-equivalent; set
  ``ring_hu=40`` for a tissue-equivalent ring) around the body;
* lungs (optional): two ellipses of semi-axes 0.16 W x 0.32 H centred at
  x = +-0.27 W, y = -0.05 H, ``lung_hu`` = -850 HU;
* spine (optional): a disc of radius 0.09 H at y = +0.33 H (posterior), ``bone_hu``
  = 700 HU;
* insert (optional): a disc of diameter ``insert_diameter_mm`` at the body's
  centre, ``insert_hu`` (default 75 HU), e.g. the 100 mm cardiac insert of the
  QRM thorax phantom; painted after the lungs and spine, so it clears them.

Regions are painted in that order (later ones replace earlier ones), rods last.
Partial volume: each pixel is sampled on ``nsub`` rows in y (default 4) and
integrated exactly along x (the chord end points of every ellipse on a row are
known), so a pixel value is exact up to the y sampling of boundaries.
"""

from __future__ import annotations

import dataclasses
import math

import numba
import numpy as np

from ._config import JIT
from ._validate import (
    boolean,
    finite_real,
    interval,
    nonnegative_real,
    positive_int,
    positive_real,
    vector,
)
from .materials import TISSUE_HU, density_to_hu


@dataclasses.dataclass(frozen=True)
class ThoraxBody:
    """An elliptical thorax cross-section (see module docstring for geometry).

    Parameters
    ----------
    width_mm, height_mm : float
        Body ellipse (x, y) in mm, default 300 x 200.
    tissue_hu : float
        Soft tissue, default 40 HU.
    extension_ring, ring_width_mm, ring_height_mm, ring_hu
        Optional fat-equivalent ring (default 400 x 300 mm, -100 HU).
    lungs, spine : bool
        Include the lungs (``lung_hu``) and the spine (``bone_hu``).
    insert_diameter_mm : float or None, default None
        Diameter (mm) of a cylindrical insert (axis along z) at the body centre;
        None: no insert. It must fit inside the body ellipse.
    insert_hu : float, default 75.0
        CT number of the insert (HU); unused without an insert.
    centre_yx_mm : 2 floats, default (0, 0)
        Centre (y, x) of the body in mm (every region moves with it).
    insert_rotation_deg : float, default 0.0
        Orientation of the insert's contents about its axis in degrees (recorded
        in the scan attributes; the round insert renders the same at any angle).

    Examples
    --------
    >>> ThoraxBody(extension_ring=True).outer_size_mm
    (300.0, 400.0)
    >>> body = ThoraxBody(insert_diameter_mm=100.0)
    >>> float(body.region_hu(0.0, 45.0)), float(body.region_hu(0.0, 60.0))
    (75.0, -850.0)
    """

    width_mm: float = 300.0
    height_mm: float = 200.0
    tissue_hu: float = TISSUE_HU["soft_tissue"]
    extension_ring: bool = False
    lungs: bool = True
    spine: bool = True
    ring_width_mm: float = 400.0
    ring_height_mm: float = 300.0
    ring_hu: float = TISSUE_HU["fat"]
    lung_hu: float = TISSUE_HU["lung"]
    bone_hu: float = TISSUE_HU["bone"]
    insert_diameter_mm: float | None = None
    insert_hu: float = 75.0
    centre_yx_mm: tuple = (0.0, 0.0)
    insert_rotation_deg: float = 0.0

    def __post_init__(self):
        for f in ("width_mm", "height_mm", "ring_width_mm", "ring_height_mm"):
            object.__setattr__(self, f, positive_real(f, getattr(self, f), unit="mm",
                                                      what="length"))
        for f in ("tissue_hu", "ring_hu", "lung_hu", "bone_hu", "insert_hu"):
            object.__setattr__(self, f, finite_real(f, getattr(self, f), unit="HU"))
        for f in ("extension_ring", "lungs", "spine"):
            object.__setattr__(self, f, boolean(f, getattr(self, f)))
        object.__setattr__(self, "centre_yx_mm",
                           vector("centre_yx_mm", self.centre_yx_mm, axes=("y", "x")))
        object.__setattr__(self, "insert_rotation_deg", finite_real(
            "insert_rotation_deg", self.insert_rotation_deg, unit="degrees"))
        if self.insert_diameter_mm is not None:
            d = positive_real("insert_diameter_mm", self.insert_diameter_mm, unit="mm",
                              what="length", hint="or None for no insert")
            object.__setattr__(self, "insert_diameter_mm", d)
            if d >= min(self.width_mm, self.height_mm):
                raise ValueError(
                    f"insert_diameter_mm must be smaller than the body ({self.width_mm} x "
                    f"{self.height_mm} mm), got {d}; the insert sits inside the body, e.g. "
                    "insert_diameter_mm=100.0")
        if self.extension_ring and (self.ring_width_mm <= self.width_mm
                                    or self.ring_height_mm <= self.height_mm):
            raise ValueError(
                f"the extension ring ({self.ring_width_mm} x {self.ring_height_mm} mm) must be "
                f"larger than the body ({self.width_mm} x {self.height_mm} mm)")

    @property
    def outer_size_mm(self):
        """(height, width) of the outer boundary in mm (y, x)."""
        if self.extension_ring:
            return (self.ring_height_mm, self.ring_width_mm)
        return (self.height_mm, self.width_mm)

    def _regions(self):
        """Painter's list of (region name, cy, cx, semi_y, semi_x, hu)."""
        W, H = self.width_mm, self.height_mm
        oy, ox = self.centre_yx_mm
        rows = []
        if self.extension_ring:
            rows.append(("ring", 0.0, 0.0, self.ring_height_mm / 2, self.ring_width_mm / 2,
                         self.ring_hu))
        rows.append(("tissue", 0.0, 0.0, H / 2, W / 2, self.tissue_hu))
        if self.lungs:
            for s in (-1.0, 1.0):
                rows.append(("lung", -0.05 * H, s * 0.27 * W, 0.32 * H, 0.16 * W, self.lung_hu))
        if self.spine:
            rows.append(("spine", 0.33 * H, 0.0, 0.09 * H, 0.09 * H, self.bone_hu))
        if self.insert_diameter_mm is not None:
            r = 0.5 * self.insert_diameter_mm
            rows.append(("insert", 0.0, 0.0, r, r, self.insert_hu))
        return [(name, cy + oy, cx + ox, ay, ax, hu) for name, cy, cx, ay, ax, hu in rows]

    def ellipses(self):
        """Painter's list of (cy, cx, semi_y, semi_x, hu) rows in mm / HU."""
        return [row[1:] for row in self._regions()]

    def _label(self, y_mm, x_mm):
        """Index into :meth:`_regions` of the region painted at (y, x); -1 outside."""
        y = np.asarray(y_mm, dtype=float)
        x = np.asarray(x_mm, dtype=float)
        lab = np.full(np.broadcast(y, x).shape, -1)
        for k, (_, cy, cx, ay, ax, _) in enumerate(self._regions()):
            lab = np.where(((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2 <= 1.0, k, lab)
        return lab

    def inside_tissue(self, y_mm, x_mm):
        """True where (y, x) lies in soft tissue of the body or in its insert (not lung,
        spine, ring or air)."""
        names = [row[0] for row in self._regions()]
        ok = np.array([n in ("tissue", "insert") for n in names] + [False])
        return ok[self._label(y_mm, x_mm)]

    def region_hu(self, y_mm, x_mm, *, air_hu=TISSUE_HU["air"]):
        """CT number (HU) of the region painted at (y, x), without partial volume or rods.

        Parameters
        ----------
        y_mm, x_mm : array_like
            Points in mm (broadcast together).
        air_hu : float
            Value outside the body.

        Returns
        -------
        ndarray of float
        """
        hus = np.array([row[-1] for row in self._regions()] + [float(air_hu)])
        return hus[self._label(y_mm, x_mm)]


@dataclasses.dataclass(frozen=True)
class Rod:
    """A calibration rod: a cylinder along z, through the whole scan or one axial section.

    Parameters
    ----------
    centre_yx_mm : 2 floats
        Centre (y, x) in mm.
    radius_mm : float
        Radius in mm.
    density_mg_cm3 : float, optional
        HA density; the rod reads ``density_to_hu(density, kvp)`` (water-equivalent
        matrix, 0 HU at 0 mg/cm3). Default 0 (a water rod).
    hu : float, optional
        Fixed CT number, overriding the density.
    z_range_mm : (float, float) or None, optional
        Axial section (z_lo, z_hi) in mm that the rod fills; None (default): the rod
        runs along z through the whole scan.

    Examples
    --------
    >>> round(Rod((0, 50), 5.0, density_mg_cm3=200).hu_at(120), 1)
    251.8
    >>> Rod((0, 0), 10.0, z_range_mm=(30, 45)).z_range_mm
    (30.0, 45.0)
    """

    centre_yx_mm: tuple
    radius_mm: float
    density_mg_cm3: float = 0.0
    hu: float = None
    z_range_mm: tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "centre_yx_mm",
                           vector("centre_yx_mm", self.centre_yx_mm, axes=("y", "x")))
        object.__setattr__(self, "radius_mm", positive_real("radius_mm", self.radius_mm,
                                                            unit="mm", what="length"))
        object.__setattr__(self, "density_mg_cm3", nonnegative_real(
            "density_mg_cm3", self.density_mg_cm3, unit="mg HA/cm3"))
        if self.hu is not None:
            object.__setattr__(self, "hu", finite_real("hu", self.hu, unit="HU"))
        if self.z_range_mm is not None:
            object.__setattr__(self, "z_range_mm", interval(
                "z_range_mm", self.z_range_mm, ends=("z_lo_mm", "z_hi_mm"),
                example="(30.0, 45.0), or None for a rod through the whole scan"))

    def hu_at(self, kvp, hu_per_mg_ha=None):
        """CT number of the rod at a tube voltage (``hu_per_mg_ha``: the scanner's own
        HU per mg HA/cm3 instead of the kVp table, see ``materials.density_to_hu``)."""
        if self.hu is not None:
            return self.hu
        return density_to_hu(self.density_mg_cm3, kvp, hu_per_mg_ha=hu_per_mg_ha)


@numba.njit(**JIT)
def _paint(ell, y, x, air):
    v = air
    for e in range(ell.shape[0]):
        dy = (y - ell[e, 0]) / ell[e, 2]
        dx = (x - ell[e, 1]) / ell[e, 3]
        if dy * dy + dx * dx <= 1.0:
            v = ell[e, 4]
    return v


@numba.njit(**JIT)
def _render_ellipses(ell, yc, xc, py, px, nsub, air):
    """Rows of sub-samples in y; along x each sub-row is integrated exactly.

    On a sub-row the painted value is piecewise constant between the ellipses'
    chord end points; each constant piece is added to the pixels it overlaps
    with its exact length, so only the y direction is sampled (``nsub`` rows
    per pixel, at sub-row midpoints).
    """
    J = yc.shape[0]
    I = xc.shape[0]
    E = ell.shape[0]
    out = np.zeros((J, I))
    x0 = xc[0] - 0.5 * px
    x1 = x0 + I * px
    pts = np.empty(2 * E + 2)
    for j in range(J):
        for a in range(nsub):
            y = yc[j] - 0.5 * py + (a + 0.5) * py / nsub
            n = 0
            pts[n] = x0
            n += 1
            pts[n] = x1
            n += 1
            for e in range(E):
                dy = (y - ell[e, 0]) / ell[e, 2]
                if dy * dy < 1.0:
                    h = ell[e, 3] * math.sqrt(1.0 - dy * dy)
                    for q in (ell[e, 1] - h, ell[e, 1] + h):
                        if x0 < q < x1:
                            pts[n] = q
                            n += 1
            ps = np.sort(pts[:n])
            for s in range(n - 1):
                s0 = ps[s]
                s1 = ps[s + 1]
                if s1 <= s0:
                    continue
                v = _paint(ell, y, 0.5 * (s0 + s1), air)
                i0 = min(int((s0 - x0) / px), I - 1)
                i1 = min(int((s1 - x0) / px), I - 1)
                if i0 == i1:
                    out[j, i0] += v * (s1 - s0)
                else:
                    out[j, i0] += v * (x0 + (i0 + 1) * px - s0)
                    for i in range(i0 + 1, i1):
                        out[j, i] += v * px
                    out[j, i1] += v * (s1 - (x0 + i1 * px))
        for i in range(I):
            out[j, i] /= nsub * px
    return out


def render_cross_section(body, rods=(), *, y_mm, x_mm, kvp=120.0, nsub=4,
                         offset_yx_mm=(0.0, 0.0), air_hu=TISSUE_HU["air"], hu_per_mg_ha=None):
    """Render the body and rods as a 2D HU map with in-plane partial volume.

    Parameters
    ----------
    body : ThoraxBody or None
        The body; ``None`` renders air plus rods.
    rods : sequence of Rod
        Calibration rods, painted over the body in order (whatever their
        ``z_range_mm``: this is one cross-section; the simulator picks the rods
        of each slice).
    y_mm, x_mm : 1D array_like
        Uniformly spaced pixel centres in mm.
    kvp : float
        Tube voltage (for rods given by density).
    nsub : int
        Sub-rows per pixel in y (x is integrated exactly).
    offset_yx_mm : 2 floats
        Shift of the whole cross-section (repositioning).
    air_hu : float
        CT number outside the body.
    hu_per_mg_ha : float, optional
        HU per mg HA/cm3 of rods given by density, instead of the kVp table.

    Returns
    -------
    image : (len(y_mm), len(x_mm)) float64 ndarray of HU

    Examples
    --------
    >>> import numpy as np
    >>> y = np.arange(-0.5, 120.0, 0.5)        # the body's edge is at y = 100 mm
    >>> img = render_cross_section(ThoraxBody(lungs=False, spine=False), y_mm=y,
    ...                            x_mm=np.array([0.0]))
    >>> img[[0, 200, 201, 202, -1], 0].tolist()
    [40.0, 40.0, -480.0, -1000.0, -1000.0]
    """
    if body is not None and not isinstance(body, ThoraxBody):
        raise TypeError(f"body must be a ThoraxBody or None, got {type(body).__name__}")
    for r in rods:
        if not isinstance(r, Rod):
            raise TypeError(f"rods must contain Rod objects, got {type(r).__name__}")
    y = np.ascontiguousarray(y_mm, dtype=float)
    x = np.ascontiguousarray(x_mm, dtype=float)
    for name, a in (("y_mm", y), ("x_mm", x)):
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{name} must be a non-empty 1D array of pixel centres, got shape {a.shape}")
    py = float(y[1] - y[0]) if y.size > 1 else 1.0
    px = float(x[1] - x[0]) if x.size > 1 else 1.0
    if py <= 0 or px <= 0:
        raise ValueError("y_mm and x_mm must be increasing pixel centres")
    nsub = positive_int("nsub", nsub)
    rows = list(body.ellipses()) if body is not None else []
    for r in rods:
        rows.append((*r.centre_yx_mm, r.radius_mm, r.radius_mm, r.hu_at(kvp, hu_per_mg_ha)))
    ell = np.array(rows, dtype=float).reshape(-1, 5)
    oy, ox = (float(v) for v in offset_yx_mm)
    ell[:, 0] += oy
    ell[:, 1] += ox
    return _render_ellipses(ell, y, x, py, px, int(nsub), float(air_hu))
