"""The public hypothesis strategies, and property tests of the simulator that use them."""

import math

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings

from phantoms import strategies as pst
from phantoms.materials import hu_per_mg_cm3
from phantoms.motion import Static
from phantoms.phantom import Phantom
from phantoms.protocol import PROTOCOLS, Protocol
from phantoms.shapes import Sphere

FIND = settings(database=None, phases=(Phase.generate, Phase.shrink))


# -- the strategies themselves --------------------------------------------------------

@given(pst.protocols())
def test_protocols_are_within_physical_ranges(p):
    assert isinstance(p, Protocol)
    assert 70 <= p.kvp <= 140 and 0.6 <= p.psf_fwhm_mm <= 2.0
    assert p.increment_mm <= p.slice_thickness_mm
    assert p.noise_sd_hu == 0 or 5 <= p.noise_sd_hu <= 60


@given(pst.phantoms(max_lesions=5, size_mm=(1.0, 4.0), motion=True))
def test_phantoms_have_separate_lesions_inside_the_extent(ph):
    assert isinstance(ph, Phantom) and 1 <= len(ph.lesions) <= 5
    z0, z1 = ph.z_extent_mm
    boxes = [les.shape.bounding_box_mm() for les in ph.lesions]
    for lo, hi in boxes:
        assert z0 <= lo[0] and hi[0] <= z1
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (a0, a1), (b0, b1) = boxes[i], boxes[j]
            assert any(a1[k] <= b0[k] or b1[k] <= a0[k] for k in range(3))


@given(pst.lesions(size_mm=(1.0, 3.0)))
def test_lesion_extent_is_bounded_by_its_size(les):
    lo, hi = les.shape.bounding_box_mm()
    assert max(h - l for l, h in zip(lo, hi)) <= pst.EXTENT_PER_SIZE * 3.0 + 1e-9
    assert isinstance(les.motion, Static)


def test_shrinking_targets_are_the_simple_cases():
    les = find(pst.lesions(motion=True), lambda l: True, settings=FIND)
    assert les.shape == Sphere((0.0, 0.0, 0.0), 0.5) and les.density_mg_cm3 == 400.0
    assert isinstance(les.motion, Static)
    p = find(pst.protocols(), lambda p: True, settings=FIND)
    assert p == PROTOCOLS["calcium_scoring"].replace(noise_sd_hu=0.0)
    # a condition on size keeps every other choice simple: a static 400 mg/cm3 sphere
    big = find(pst.lesions(), lambda l: l.volume_mm3 > 30.0, settings=FIND)
    assert isinstance(big.shape, Sphere) and big.density_mg_cm3 == 400.0
    assert isinstance(big.motion, Static) and big.volume_mm3 > 30.0


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(kinds=("cube",)), ValueError, "kinds must be a non-empty subset"),
    (dict(size_mm=(3.0, 1.0)), ValueError, "size_mm must satisfy"),
    (dict(density_mg_cm3="dense"), TypeError, "density_mg_cm3 must be a .min, max. pair"),
])
def test_lesion_strategy_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        find(pst.lesions(**kwargs), lambda l: True, settings=FIND)


def test_phantom_and_scan_strategy_argument_errors():
    with pytest.raises(ValueError, match="max_lesions=99 does not fit"):
        find(pst.phantoms(max_lesions=99), lambda p: True, settings=FIND)
    with pytest.raises(ValueError, match="mode must be 'patch' or 'full'"):
        find(pst.scans(mode="both"), lambda p: True, settings=FIND)
    with pytest.raises(ValueError, match="needs a phantom with exactly one lesion"):
        find(pst.scans(phantom=pst.phantoms(min_lesions=2)), lambda p: True, settings=FIND)


# -- property tests of the simulator, written with the strategies -----------------------

def _trapezoid(p):
    return p.replace(slice_profile="trapezoid")


@given(pst.scans(protocol=pst.protocols(noise=False).map(_trapezoid), noise=False))
def test_noise_free_mass_conservation_in_patches(pair):
    """sum((I - background) x voxel volume) = k(kVp) x density x true volume within 1%."""
    scan, truth = pair
    dz = float(scan.attrs["increment_mm"])
    dy = float(scan.y[1] - scan.y[0])
    dx = float(scan.x[1] - scan.x[0])
    excess = float((scan.values.astype(np.float64) - float(truth.background_hu[0])).sum())
    k = hu_per_mg_cm3(float(scan.attrs["kvp"]))
    expected = k * float(truth.density_mg_cm3[0]) * float(truth.volume_mm3[0])
    assert excess * dz * dy * dx == pytest.approx(expected, rel=0.01)


@given(pst.scans(protocol=pst.protocols(noise=False), noise=False))
def test_rendered_fraction_volume_matches_truth(pair):
    _, truth = pair
    assert float(truth.fraction_volume_mm3[0]) == pytest.approx(float(truth.volume_mm3[0]),
                                                                rel=0.005)


@settings(max_examples=8)
@given(pst.phantoms(max_lesions=3, size_mm=(1.0, 4.0)),
       pst.protocols(noise=False, matrix=128).map(_trapezoid))
def test_full_scan_lesions_add_linearly(ph, p):
    """Full mode: scan(phantom) - scan(no lesions) carries every lesion's HU x volume."""
    from phantoms.simulate import simulate
    scan, truth = simulate(ph, p, seed=0, noise=False, fraction_maps=False)
    __import__("pvcalc").validate_scan(scan)
    empty, _ = simulate(Phantom(ph.body, (), z_extent_mm=ph.z_extent_mm), p, seed=0,
                        noise=False, fraction_maps=False)
    dz, dy, dx = p.increment_mm, p.pixel_mm, p.pixel_mm
    excess = float((scan.values.astype(np.float64) - empty.values).sum()) * dz * dy * dx
    expected = float((truth.delta_hu * truth.volume_mm3).sum())
    assert excess == pytest.approx(expected, rel=0.01)


@settings(max_examples=10)
@given(pst.scans())
def test_noisy_patches_are_finite_float32_on_a_uniform_grid(pair):
    import pvcalc
    scan, truth = pair
    pvcalc.validate_scan(scan)
    assert scan.dtype == np.float32 and np.isfinite(scan.values).all()
    for d in ("z", "y", "x"):
        c = scan.coords[d].values
        if c.size > 1:
            assert np.allclose(np.diff(c), np.diff(c)[0])
    assert math.isfinite(float(truth.mass_mg[0]))


def test_the_user_example_in_the_docs_runs_as_documented():
    """docs/strategies.md: the first property holds, the second fails on a 1 mm sphere."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "docs" / "strategies.md").read_text()
    code = re.search(r"```python\n(from hypothesis import given.*?)```", text, re.S).group(1)
    code = code.replace("max_examples=200", "max_examples=30")   # keep the suite fast
    ns = {}
    exec(compile(code, "docs/strategies.md", "exec"), ns)
    ns["test_clinical_mass_underestimates_by_less_than_half"]()
    # the second property fails; the minimal counterexample the docs report is a
    # 1 mm sphere of 400 mg/cm3 that clinical scoring misses (searched with find,
    # which skips hypothesis' slow explain phase)
    scan, truth = find(pst.scans(protocol=ns["PROTOCOL"], noise=False, size_mm=(1.0, 8.0)),
                       lambda pair: abs(ns["clinical_mass_error"](*pair)) >= 0.5,
                       settings=FIND)
    assert str(truth.name.values[0]) == "sphere"
    assert float(truth.volume_mm3[0]) == pytest.approx(math.pi / 6)
    assert float(truth.density_mg_cm3[0]) == 400.0
    assert ns["clinical_mass_error"](scan, truth) == -1.0
