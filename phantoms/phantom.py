"""Lesions and phantoms: what is scanned.

A :class:`Lesion` is a shape of hydroxyapatite at a density, possibly moving.
A :class:`Phantom` is a body, calibration rods and lesions, plus the z range to
scan. Validation (at construction):

* every lesion (its bounding box in-plane, at its nominal position) lies in the
  soft tissue of the body or its insert (not lung, spine, extension ring or air)
  and does not touch a rod whose axial section (all of z by default) reaches it;
* rods limited to an axial section do not overlap another rod in-plane where
  both are present along z;
* the lesions' bounding boxes lie inside ``z_extent_mm``;
* lesions do not overlap: bounding boxes are disjoint, or where two boxes
  intersect, no point of a 0.1 mm grid over the intersection lies in both
  shapes (true non-overlap to 0.1 mm). Motion may still bring moving lesions
  together; that is not checked;
* one heart: every :class:`~phantoms.motion.CardiacMotion` of the phantom has
  the same ``heart_rate_bpm`` (:attr:`Phantom.heart_rate_bpm`), the heart rate
  that times the scan (see :mod:`phantoms.motion`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .body import Rod, ThoraxBody
from .motion import MOTIONS, CardiacMotion, Static
from .shapes import SHAPES

OVERLAP_GRID_MM = 0.1


@dataclasses.dataclass(frozen=True)
class Lesion:
    """A calcification: a shape of HA at a density, with optional motion.

    Parameters
    ----------
    shape : Sphere, Ellipsoid, Cylinder, Tube or Blob
        Geometry in mm (nominal position).
    density_mg_cm3 : float
        HA density in mg/cm3 (> 0).
    motion : Static, ConstantVelocity or CardiacMotion, optional
        Default :class:`~phantoms.motion.Static`.
    name : str, optional

    Examples
    --------
    >>> from phantoms.shapes import Sphere
    >>> les = Lesion(Sphere((0, 0, 0), 1.0), 400.0)
    >>> round(les.mass_mg, 4)      # density x volume / 1000
    1.6755
    """

    shape: object
    density_mg_cm3: float
    motion: object = Static()
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.shape, SHAPES):
            raise TypeError("shape must be one of Sphere, Ellipsoid, Cylinder, Tube, Blob "
                            f"(phantoms.shapes), got {type(self.shape).__name__}")
        d = self.density_mg_cm3
        if isinstance(d, bool) or not isinstance(d, (int, float, np.integer, np.floating)):
            raise TypeError(f"density_mg_cm3 must be a number in mg HA/cm3, got {d!r}")
        if not (math.isfinite(d) and d > 0):
            raise ValueError(f"density_mg_cm3 must be a finite positive HA density in mg/cm3, "
                             f"got {d!r}")
        object.__setattr__(self, "density_mg_cm3", float(d))
        if not isinstance(self.motion, MOTIONS):
            raise TypeError("motion must be Static, ConstantVelocity or CardiacMotion "
                            f"(phantoms.motion), got {type(self.motion).__name__}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")

    @property
    def volume_mm3(self):
        return self.shape.volume_mm3

    @property
    def mass_mg(self):
        """True HA mass in mg: density (mg/cm3) x volume (mm3) / 1000."""
        return self.density_mg_cm3 * self.volume_mm3 / 1000.0


def _boxes_intersect(a, b):
    return all(a[0][i] < b[1][i] and b[0][i] < a[1][i] for i in range(3))


def _shapes_overlap(s1, s2):
    b1, b2 = s1.bounding_box_mm(), s2.bounding_box_mm()
    if not _boxes_intersect(b1, b2):
        return False
    lo = np.maximum(b1[0], b2[0])
    hi = np.minimum(b1[1], b2[1])
    axes = [np.arange(l, h + OVERLAP_GRID_MM, OVERLAP_GRID_MM) for l, h in zip(lo, hi)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    if len(pts) > 2_000_000:
        return True
    m = s1.contains(pts)
    return bool(np.any(s2.contains(pts[m])))


@dataclasses.dataclass(frozen=True)
class Phantom:
    """A body, calibration rods and lesions to be scanned.

    Parameters
    ----------
    body : ThoraxBody
        z-invariant body.
    lesions : sequence of Lesion
    rods : sequence of Rod
    z_extent_mm : (float, float)
        z range (mm) to scan; must contain every lesion.
    name : str

    Raises
    ------
    ValueError
        Also when two lesions' :class:`~phantoms.motion.CardiacMotion` have
        different heart rates (a phantom has one heart).

    Examples
    --------
    >>> from phantoms.shapes import Sphere
    >>> from phantoms.motion import CardiacMotion
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0)])
    >>> len(ph.lesions), ph.z_extent_mm, ph.heart_rate_bpm
    (1, (-30.0, 30.0), None)
    >>> beating = Lesion(Sphere((0, 0, 0), 2.0), 400.0, CardiacMotion((0, 0, 1), 40.0, 75.0))
    >>> Phantom(ThoraxBody(), [beating]).heart_rate_bpm
    75.0
    """

    body: object
    lesions: tuple = ()
    rods: tuple = ()
    z_extent_mm: tuple = (-30.0, 30.0)
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.body, ThoraxBody):
            raise TypeError(f"body must be a ThoraxBody (phantoms.body), got "
                            f"{type(self.body).__name__}")
        les = tuple(self.lesions)
        for i, l in enumerate(les):
            if not isinstance(l, Lesion):
                raise TypeError(f"lesions[{i}] must be a Lesion, got {type(l).__name__}")
        rods = tuple(self.rods)
        for i, r in enumerate(rods):
            if not isinstance(r, Rod):
                raise TypeError(f"rods[{i}] must be a Rod, got {type(r).__name__}")
        object.__setattr__(self, "lesions", les)
        object.__setattr__(self, "rods", rods)
        try:
            z0, z1 = (float(v) for v in self.z_extent_mm)
        except (TypeError, ValueError):
            raise TypeError(f"z_extent_mm must be two numbers (zmin, zmax) in mm, got "
                            f"{self.z_extent_mm!r}") from None
        if not (math.isfinite(z0) and math.isfinite(z1) and z1 > z0):
            raise ValueError(f"z_extent_mm must be finite with zmin < zmax, got {self.z_extent_mm!r}")
        object.__setattr__(self, "z_extent_mm", (z0, z1))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        self._validate_geometry()
        self._validate_heart()

    @property
    def heart_rate_bpm(self):
        """Heart rate (bpm) of the phantom's cardiac motion; None without one.

        The rate shared by every lesion's :class:`~phantoms.motion.CardiacMotion`.
        It times the scan: :func:`phantoms.simulate` converts the cardiac phase
        (``gating_phase`` when gated) to time with R-R = 60 / heart_rate_bpm s.
        """
        for les in self.lesions:
            if isinstance(les.motion, CardiacMotion):
                return les.motion.heart_rate_bpm
        return None

    def _validate_heart(self):
        first = None
        for i, les in enumerate(self.lesions):
            if not isinstance(les.motion, CardiacMotion):
                continue
            label = f"lesions[{i}]" + (f" ({les.name})" if les.name else "")
            if first is None:
                first = (label, les.motion.heart_rate_bpm)
            elif les.motion.heart_rate_bpm != first[1]:
                raise ValueError(
                    f"{label} has CardiacMotion(heart_rate_bpm={les.motion.heart_rate_bpm:g}) "
                    f"but {first[0]} has heart_rate_bpm={first[1]:g}: a phantom has one heart, "
                    "whose rate times the scan; give every CardiacMotion the same "
                    "heart_rate_bpm (e.g. dataclasses.replace(motion, heart_rate_bpm=...))")

    def _validate_rods(self):
        # a rod limited to an axial section is added to the background as its own
        # difference map, so it may not overlap another rod where both are present
        for i, a in enumerate(self.rods):
            for j in range(i + 1, len(self.rods)):
                b = self.rods[j]
                if a.z_range_mm is None and b.z_range_mm is None:
                    continue
                za = a.z_range_mm or (-math.inf, math.inf)
                zb = b.z_range_mm or (-math.inf, math.inf)
                d = math.hypot(a.centre_yx_mm[0] - b.centre_yx_mm[0],
                               a.centre_yx_mm[1] - b.centre_yx_mm[1])
                if za[0] < zb[1] and zb[0] < za[1] and d < a.radius_mm + b.radius_mm:
                    raise ValueError(
                        f"rods[{i}] and rods[{j}] overlap (centres {d:.2f} mm apart, radii "
                        f"{a.radius_mm} and {b.radius_mm} mm) where both are present along z; "
                        "move one of them or give them disjoint z_range_mm")

    def _validate_geometry(self):
        z0, z1 = self.z_extent_mm
        for i, l in enumerate(self.lesions):
            lo, hi = l.shape.bounding_box_mm()
            label = f"lesions[{i}]" + (f" ({l.name})" if l.name else "")
            if lo[0] < z0 or hi[0] > z1:
                raise ValueError(
                    f"{label} spans z = {lo[0]:.2f}..{hi[0]:.2f} mm, outside z_extent_mm "
                    f"{self.z_extent_mm}; widen z_extent_mm or move the lesion")
            ys = np.array([lo[1], lo[1], hi[1], hi[1], 0.5 * (lo[1] + hi[1])])
            xs = np.array([lo[2], hi[2], lo[2], hi[2], 0.5 * (lo[2] + hi[2])])
            if not np.all(self.body.inside_tissue(ys, xs)):
                raise ValueError(
                    f"{label} (in-plane box y {lo[1]:.1f}..{hi[1]:.1f}, x {lo[2]:.1f}.."
                    f"{hi[2]:.1f} mm) is not inside the soft tissue of the body; move it "
                    "away from the lungs, spine and the body's edge")
            for k, r in enumerate(self.rods):
                if r.z_range_mm is not None and not (r.z_range_mm[0] < hi[0]
                                                     and lo[0] < r.z_range_mm[1]):
                    continue                # the rod's axial section misses the lesion
                cy, cx = r.centre_yx_mm
                ny = min(max(cy, lo[1]), hi[1])
                nx = min(max(cx, lo[2]), hi[2])
                if (ny - cy) ** 2 + (nx - cx) ** 2 < r.radius_mm ** 2:
                    raise ValueError(f"{label} touches rods[{k}]; move one of them")
        self._validate_rods()
        for i, a in enumerate(self.lesions):
            for j in range(i + 1, len(self.lesions)):
                if _shapes_overlap(a.shape, self.lesions[j].shape):
                    raise ValueError(
                        f"lesions[{i}] and lesions[{j}] overlap; separate them (the truth of "
                        "overlapping lesions would be ambiguous)")
