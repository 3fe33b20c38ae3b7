"""Render kernels: slice profiles, occupancy vs slow references, rendered volumes."""

import math

import naive_render  # noqa: E402
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from phantoms._scene import shape_occupancy
from phantoms._ssp import BOX, GAUSSIAN, TRAPEZOID, ssp_cdf
from phantoms.body import Rod, ThoraxBody, render_cross_section
from phantoms.shapes import Blob, Cylinder, Ellipsoid, Sphere, Tube


# -- slice sensitivity profiles ------------------------------------------------------
@pytest.mark.parametrize("kind", [TRAPEZOID, GAUSSIAN, BOX])
def test_ssp_unit_area_and_fwhm(kind):
    T = 2.5
    assert ssp_cdf(-50.0, T, kind) == pytest.approx(0.0, abs=1e-12)
    assert ssp_cdf(50.0, T, kind) == pytest.approx(1.0, abs=1e-12)
    assert ssp_cdf(0.0, T, kind) == pytest.approx(0.5, abs=1e-12)
    e = 1e-6
    pdf = lambda u: (ssp_cdf(u + e, T, kind) - ssp_cdf(u - e, T, kind)) / (2 * e)
    if kind != BOX:
        assert pdf(T / 2) == pytest.approx(pdf(0.0) / 2, rel=1e-5)   # FWHM = T
    # the njit cdf integrates the reference density
    u = np.linspace(-6, 6, 200001)
    cdf = np.cumsum(naive_render.ssp_pdf(u, T, kind)) * (u[1] - u[0])
    for q in (-1.7, -0.9, 0.3, 1.2):
        assert ssp_cdf(q, T, kind) == pytest.approx(np.interp(q, u, cdf), abs=2e-4)


def _summed_weight(z, T, inc, kind, half=1e-4):
    k = np.arange(-20, 21) * inc
    return sum(ssp_cdf(z + half - zk, T, kind) - ssp_cdf(z - half - zk, T, kind)
               for zk in k) / (2 * half) * inc


@pytest.mark.parametrize("inc_fraction", [1.0, 0.5])
def test_trapezoid_sums_to_one_at_contiguous_and_half_increment(inc_fraction):
    T = 3.0
    zs = np.linspace(0, T, 97)
    w = np.array([_summed_weight(z, T, T * inc_fraction, TRAPEZOID) for z in zs])
    np.testing.assert_allclose(w, 1.0, atol=1e-6)


def test_gaussian_ripple_at_contiguous_sampling():
    # documented in phantoms._ssp and docs/simulator.md: +-5.7% at increment = FWHM
    T = 3.0
    w = np.array([_summed_weight(z, T, T, GAUSSIAN) for z in np.linspace(0, T, 61)])
    assert w.max() == pytest.approx(1.0569, abs=5e-4)
    assert w.min() == pytest.approx(0.9431, abs=5e-4)
    # at half the FWHM the sampled gaussians sum to a constant to ~1e-6
    w2 = np.array([_summed_weight(z, T, T / 2, GAUSSIAN) for z in np.linspace(0, T, 61)])
    np.testing.assert_allclose(w2, 1.0, atol=1e-5)


# -- occupancy kernel vs dense-sampling reference -----------------------------------
R = Rotation.from_euler("zyx", [30, -40, 25], degrees=True).as_matrix()
SMALL = [
    Sphere((0.1, 0.2, -0.15), 0.8),
    Ellipsoid((0.0, 0.1, 0.05), (0.6, 0.9, 1.2), R),
    Cylinder((0.2, -0.1, 0.1), 0.6, 1.4, (0.5, 0.3, 0.8)),
    Tube([(0.0, -0.6, -0.5), (0.4, 0.5, 0.6)], 0.45),
    Blob([(0.0, 0.0, 0.0), (0.3, 0.5, 0.2), (-0.2, -0.3, 0.6)], [0.6, 0.5, 0.45]),
]


def _grid(shape, pixel, inc, pad=1.0):
    lo, hi = shape.bounding_box_mm()
    ax = [np.arange(math.floor((a - pad) / s), math.ceil((b + pad) / s) + 1) * s
          for a, b, s in zip(lo, hi, (inc, pixel, pixel))]
    return ax


@pytest.mark.parametrize("shape", SMALL, ids=lambda s: s.kind)
def test_occupancy_matches_dense_reference(shape):
    pixel, T = 0.5, 1.0
    z, y, x = _grid(shape, pixel, T, pad=0.6)
    fast = shape_occupancy(shape, z, y, x, pixel_mm=pixel, thickness_mm=T, kind=TRAPEZOID)
    slow = naive_render.occupancy(shape, z, y, x, pixel, T, TRAPEZOID, n_inplane=20,
                                  dz_mm=0.01)
    np.testing.assert_allclose(fast, slow, atol=0.02)
    assert fast.sum() == pytest.approx(slow.sum(), rel=5e-3)


def test_moving_occupancy_is_the_mean_of_static_occupancies():
    # per-slice time groups (non-gated helical): slice k sees its own positions
    s = SMALL[2]
    pixel, T = 0.5, 1.0
    z, y, x = _grid(s, pixel, T, pad=2.5)
    rng = np.random.default_rng(0)
    disp = rng.normal(0, 0.7, size=(len(z), 3, 3))
    fast = shape_occupancy(s, z, y, x, pixel_mm=pixel, thickness_mm=T, kind=TRAPEZOID,
                           displacements=disp, group=np.arange(len(z)))
    for k in range(len(z)):
        ref = np.mean([shape_occupancy(s.translated(d), z[k:k + 1], y, x, pixel_mm=pixel,
                                       thickness_mm=T, kind=TRAPEZOID)[0] for d in disp[k]],
                      axis=0)
        np.testing.assert_allclose(fast[k], ref, atol=1e-12)


# -- rendered volume within 0.5% for lesions >= 1 mm at 0.5 mm voxels ---------------------
@st.composite
def lesion_shapes(draw):
    d = draw(st.floats(1.0, 4.0))
    c = tuple(draw(st.floats(-1.0, 1.0)) for _ in range(3))
    rot = Rotation.from_rotvec([draw(st.floats(-3.0, 3.0)) for _ in range(3)]).as_matrix()
    kind = draw(st.sampled_from(["sphere", "ellipsoid", "cylinder", "capsule", "blob", "tube"]))
    a = np.asarray(c)
    if kind == "sphere":
        return Sphere(c, d / 2)
    if kind == "ellipsoid":
        return Ellipsoid(c, (d / 2, d / 2 * draw(st.floats(1, 2)), d / 2 * draw(st.floats(1, 2))), rot)
    if kind == "cylinder":
        return Cylinder(c, d / 2, d * draw(st.floats(1, 3)), rot[:, 0])
    if kind == "capsule":
        return Tube([a, a + rot[:, 0] * d * draw(st.floats(0, 2))], d / 2)
    if kind == "blob":
        return Blob([a, a + rot[:, 0] * d / 3, a + rot[:, 1] * d / 3], [d / 2, d / 2, d / 2])
    return Tube([a, a + rot[:, 0] * d, a + rot[:, 0] * d + rot[:, 1] * d], d / 2)


def _boundary_on_the_lattice(shape, vox):
    """True for a sphere-like cross-section whose edge passes through half-pixel lattice points.

    The classifier calls a pixel interior when its 9 half-pixel lattice points hit the
    shape alike; a boundary exactly through lattice points (a shape centred on the grid
    with a radius of whole half-pixels) defeats it (see the strict xfail below).
    """
    c = np.asarray(shape.centre_mm if hasattr(shape, "centre_mm") else (0.5, 0.5, 0.5))
    r = getattr(shape, "radius_mm", None)
    aligned = np.allclose(np.round(c / (vox / 2)) * (vox / 2), c, atol=1e-9)
    return aligned and r is not None and abs(r / (vox / 2) - round(r / (vox / 2))) < 1e-9


@settings(max_examples=60)
@given(shape=lesion_shapes(), kind=st.sampled_from([BOX, TRAPEZOID]))
def test_rendered_volume_within_half_percent(shape, kind):
    vox = 0.5
    assume(not _boundary_on_the_lattice(shape, vox))
    z, y, x = _grid(shape, vox, vox, pad=1.0)
    occ = shape_occupancy(shape, z, y, x, pixel_mm=vox, thickness_mm=vox, kind=kind)
    assert occ.sum() * vox ** 3 == pytest.approx(shape.volume_mm3, rel=5e-3)
    assert occ.min() >= 0 and occ.max() <= 1 + 1e-9


# -- body cross-section -------------------------------------------------------------
def test_cross_section_partial_volume_is_exact_area():
    y = (np.arange(600) - 299.5) * 0.45
    x = (np.arange(800) - 399.5) * 0.45
    body = ThoraxBody(lungs=False, spine=False, tissue_hu=1.0)
    img = render_cross_section(body, y_mm=y, x_mm=x, air_hu=0.0)
    assert img.sum() * 0.45 ** 2 == pytest.approx(math.pi * 150 * 100, rel=2e-5)
    rod = Rod((10.3, -20.1), 4.9, hu=1.0)
    img = render_cross_section(None, [rod], y_mm=y, x_mm=x, air_hu=0.0)
    # exact along x, 4 sub-rows in y: a 10 mm rod is within 1e-3
    assert img.sum() * 0.45 ** 2 == pytest.approx(math.pi * 4.9 ** 2, rel=1e-3)


def test_cross_section_errors():
    with pytest.raises(TypeError, match="body must be a ThoraxBody or None"):
        render_cross_section("thorax", y_mm=[0.0], x_mm=[0.0])
    with pytest.raises(ValueError, match="nsub must be a positive integer"):
        render_cross_section(ThoraxBody(), y_mm=[0.0, 1.0], x_mm=[0.0, 1.0], nsub=0)


@pytest.mark.xfail(strict=True, reason="known limit: a boundary exactly through the half-pixel "
                   "lattice is classified interior; +1.0% volume for this 1 mm cylinder")
def test_grid_aligned_small_cylinder_renders_its_volume():
    shape = Cylinder((0.0, 0.0, 0.0), 0.5, 1.0, (1.0, 0.0, 0.0))
    z, y, x = _grid(shape, 0.5, 0.5, pad=1.0)
    occ = shape_occupancy(shape, z, y, x, pixel_mm=0.5, thickness_mm=0.5, kind=BOX)
    assert occ.sum() * 0.125 == pytest.approx(shape.volume_mm3, rel=5e-3)
