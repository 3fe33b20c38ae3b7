"""phantoms.shapes: exact volumes, numeric volumes, bounding boxes, transforms, errors."""

import math

import numpy as np
import pytest
from naive_render import inside  # noqa: E402
from scipy.spatial.transform import Rotation

from phantoms.shapes import NUMERIC_VOLUME_RTOL, Blob, Cylinder, Ellipsoid, Sphere, Tube

R1 = Rotation.from_euler("zyx", [20, 35, -50], degrees=True).as_matrix()


def _shapes():
    c = np.array([0.3, -0.2, 0.1])
    return [
        Sphere(c, 1.2),
        Ellipsoid(c, (0.8, 1.3, 2.0), R1),
        Cylinder(c, 0.9, 2.5, (0.3, 0.5, 0.8)),
        Tube([c, c + (0.5, 1.5, 2.0)], 0.6),
        Tube([c, c + (0, 0, 2.0), c + (0, 2.0, 2.0)], 0.5),
        Blob([c, c + (0.5, 0.7, 0), c + (0, -0.6, 0.8)], [0.8, 0.6, 0.7]),
    ]


def test_exact_volumes():
    assert Sphere((0, 0, 0), 2.0).volume_mm3 == pytest.approx(4 / 3 * math.pi * 8)
    assert Ellipsoid((0, 0, 0), (1, 2, 3), R1).volume_mm3 == pytest.approx(8 * math.pi)
    # QRM cardiac calcification insert sizes: d = L = 1, 3, 5 mm, V = pi d^3 / 4
    for d, v in [(1, 0.785), (3, 21.21), (5, 98.17)]:
        assert Cylinder((0, 0, 0), d / 2, d).volume_mm3 == pytest.approx(v, abs=0.005)
    assert Tube([(0, 0, 0), (1, 2, 2)], 0.5).volume_mm3 == pytest.approx(
        math.pi * 0.25 * 3 + 4 / 3 * math.pi * 0.125)


def test_numeric_volume_of_collinear_tube_equals_capsule():
    pts = [(0, 0, 0), (0.4, 0.8, 0.8), (1.0, 2.0, 2.0)]
    assert Tube(pts, 0.5).volume_mm3 == pytest.approx(
        Tube([pts[0], pts[-1]], 0.5).volume_mm3, rel=3 * NUMERIC_VOLUME_RTOL)


def test_numeric_volume_of_two_sphere_blob_matches_lens_formula():
    r, d = 1.0, 1.2
    lens = math.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
    b = Blob([(0, 0, 0), (0.0, d * 0.6, d * 0.8)], [r, r])
    assert b.volume_mm3 == pytest.approx(2 * 4 / 3 * math.pi - lens, rel=3 * NUMERIC_VOLUME_RTOL)
    # the numeric integrator itself on a single sphere
    assert Blob([(0, 0, 0)], [0.7])._numeric_volume() == pytest.approx(
        4 / 3 * math.pi * 0.7 ** 3, rel=3 * NUMERIC_VOLUME_RTOL)


def test_disjoint_blob_volume_is_exact_sum():
    b = Blob([(0, 0, 0), (0, 0, 3.0)], [1.0, 0.5])
    assert b.volume_mm3 == 4 / 3 * math.pi * (1 + 0.125)


def test_right_angle_tube_volume_is_analytic():
    # two cylinders meeting at 90 degrees with a spherical joint: the union is
    # both cylinders, minus their overlap on the inner side (a quarter of the
    # Steinmetz bicylinder, 4 r^3 / 3), plus the quarter sphere that fills the
    # outer corner (pi r^3 / 3), plus the two hemispherical end caps.
    r, L1, L2 = 0.5, 2.0, 1.5
    t = Tube([(0.3, -0.2, 0.1), (0.3, -0.2, 0.1 + L1), (0.3, -0.2 + L2, 0.1 + L1)], r)
    exact = math.pi * r * r * (L1 + L2) - 4 * r ** 3 / 3 + math.pi * r ** 3 / 3 \
        + 4 / 3 * math.pi * r ** 3
    assert t.volume_mm3 == pytest.approx(exact, rel=3 * NUMERIC_VOLUME_RTOL)


@pytest.mark.parametrize("shape", _shapes(), ids=lambda s: s.kind)
def test_contains_agrees_with_definition_and_box(shape):
    rng = np.random.default_rng(1)
    lo, hi = (np.asarray(b) for b in shape.bounding_box_mm())
    pts = rng.uniform(lo - 0.5, hi + 0.5, size=(20000, 3))
    ref = inside(shape, pts)
    assert np.array_equal(shape.contains(pts), ref)
    assert 0.05 < ref.mean() < 0.95
    # bounding box encloses every inside point and is tight to 2% of its size
    grid = rng.uniform(lo, hi, size=(200000, 3))
    g = grid[inside(shape, grid)]
    assert np.all(g >= lo - 1e-12) and np.all(g <= hi + 1e-12)
    assert np.all(g.min(0) - lo < 0.02 * (hi - lo) + 0.02)
    assert np.all(hi - g.max(0) < 0.02 * (hi - lo) + 0.02)


@pytest.mark.parametrize("shape", _shapes(), ids=lambda s: s.kind)
def test_rigid_transforms(shape):
    rng = np.random.default_rng(2)
    R = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    about = np.array([1.0, 2.0, -1.0])
    off = np.array([0.25, -1.5, 3.0])
    moved = shape.rotated(R, about).translated(off)
    assert moved.volume_mm3 == pytest.approx(shape.volume_mm3, rel=3 * NUMERIC_VOLUME_RTOL)
    lo, hi = (np.asarray(b) for b in shape.bounding_box_mm())
    pts = rng.uniform(lo - 0.5, hi + 0.5, size=(5000, 3))
    new_pts = (pts - about) @ R.T + about + off
    assert np.array_equal(moved.contains(new_pts), shape.contains(pts))
    assert hash(shape) == hash(type(shape)(*[getattr(shape, f) for f in shape.__dataclass_fields__]))


def test_kernel_encoding_lengths():
    for s in _shapes():
        p = s.params()
        assert p.dtype == np.float64 and p.ndim == 1


def test_errors():
    with pytest.raises(ValueError, match=r"radius_mm must be a finite positive length in mm, got -1"):
        Sphere((0, 0, 0), -1)
    with pytest.raises(TypeError, match="radius_mm must be a number in mm, got str"):
        Sphere((0, 0, 0), "1")
    with pytest.raises(ValueError, match=r"centre_mm must be 3 finite numbers \(z, y, x\)"):
        Sphere((0, 0), 1)
    with pytest.raises(ValueError, match="rotation must be a proper rotation"):
        Ellipsoid((0, 0, 0), (1, 1, 1), np.diag([1, 1, -1]))
    with pytest.raises(ValueError, match=r"axis must be a non-zero direction"):
        Cylinder((0, 0, 0), 1, 1, (0, 0, 0))
    with pytest.raises(ValueError, match=r"centreline_mm must be an \(N, 3\) array of N >= 2"):
        Tube([(0, 0, 0)], 1)
    with pytest.raises(ValueError, match="radii_mm must be 2 positive finite radii"):
        Blob([(0, 0, 0), (1, 1, 1)], [1.0])
    with pytest.raises(ValueError, match="semi_axes_mm must be a finite positive"):
        Ellipsoid((0, 0, 0), (1, 0, 1))


def test_finely_sampled_arc_tube_follows_pappus():
    # a tube swept along a smooth curve (curvature radius > r) has volume
    # pi r^2 L + 4/3 pi r^3 (Pappus, plus the end caps); a polyline sampling
    # of a quarter circle approaches it as the joints' turning angles shrink
    R, r = 5.0, 0.5
    errs = []
    for n in (8, 32):
        a = np.linspace(0, math.pi / 2, n + 1)
        t = Tube(np.column_stack([np.full_like(a, 0.3), R * np.cos(a), R * np.sin(a)]), r)
        pappus = math.pi * r * r * t.length_mm + 4 / 3 * math.pi * r ** 3
        errs.append(abs(t.volume_mm3 / pappus - 1))
    assert errs[0] < 1e-4 and errs[1] < errs[0]
