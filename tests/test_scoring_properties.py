"""Hypothesis properties of pvcalc.score: invariances, additivity, monotonicity."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scoring_strategies import make, volumes  # noqa: E402

import pvcalc
from pvcalc.scoring import PRESETS

CAL = pvcalc.Calibration(0.8)
#: presets whose scores do not depend on where the 3 mm slab grid starts
SHIFT_INVARIANT = sorted(set(PRESETS) - {"agatston_1990", "resample_3mm"})


def totals(res):
    t = res.total
    return np.array([t.agatston, t.volume_mm3, t.mass_mg, t.n_lesions, t.n_lesions_3d,
                     t.volume_iso_mm3 or 0.0])


def embed(vals, labels, shape, offset):
    out = np.zeros(shape, dtype=np.float32)
    sl = tuple(slice(o, o + n) for o, n in zip(offset, vals.shape))
    out[sl] = vals
    lab = None
    if labels is not None:
        lab = np.zeros(shape, dtype=np.int32)
        lab[sl] = labels
    return out, lab


@settings(max_examples=30)
@given(data=volumes(), preset=st.sampled_from(SHIFT_INVARIANT),
       off=st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 5)))
def test_translation_by_whole_voxels(data, preset, off):
    vals, spacing, labels, kvp = data
    shape = (vals.shape[0] + 3, vals.shape[1] + 5, vals.shape[2] + 5)
    a, la = embed(vals, labels, shape, (0, 0, 0))
    b, lb = embed(vals, labels, shape, off)
    ra = pvcalc.score(make(a, spacing, kvp), labels=la, preset=preset, calibration=CAL)
    rb = pvcalc.score(make(b, spacing, kvp, origin_mm=(-7.0, 2.5, 100.0)), labels=lb,
                      preset=preset, calibration=CAL)
    np.testing.assert_allclose(totals(ra), totals(rb), rtol=1e-12)


@settings(max_examples=20)
@given(data=volumes(), preset=st.sampled_from(["agatston_1990", "resample_3mm"]),
       k=st.integers(1, 2))
def test_resampled_presets_invariant_to_shifts_by_whole_slabs(data, preset, k):
    vals, spacing, labels, kvp = data
    vals = np.concatenate([vals, np.zeros_like(vals[:1])])  # keep one empty slice at the end
    steps = int(round(3.0 / spacing[0]))
    if not np.isclose(steps * spacing[0], 3.0):
        return  # shifting by whole slabs needs an increment that divides 3 mm
    nz = -(-vals.shape[0] // steps) * steps + 2 * steps  # whole slabs, no partial last slab
    shape = (nz, *vals.shape[1:])
    a, la = embed(vals, None, shape, (0, 0, 0))
    b, lb = embed(vals, None, shape, (k * steps, 0, 0))
    ra = pvcalc.score(make(a, spacing, kvp), preset=preset, calibration=CAL)
    rb = pvcalc.score(make(b, spacing, kvp), preset=preset, calibration=CAL)
    np.testing.assert_allclose(totals(ra), totals(rb), rtol=1e-12)


@settings(max_examples=30)
@given(data=volumes(), preset=st.sampled_from(SHIFT_INVARIANT),
       axes=st.sampled_from([(0,), (1,), (2,), (0, 1, 2)]))
def test_flips(data, preset, axes):
    vals, spacing, labels, kvp = data
    flipped = np.ascontiguousarray(np.flip(vals, axis=axes))
    lf = None if labels is None else np.ascontiguousarray(np.flip(labels, axis=axes))
    ra = pvcalc.score(make(vals, spacing, kvp), labels=labels, preset=preset, calibration=CAL)
    rb = pvcalc.score(make(flipped, spacing, kvp), labels=lf, preset=preset, calibration=CAL)
    np.testing.assert_allclose(totals(ra), totals(rb), rtol=1e-12)


@settings(max_examples=30)
@given(a=volumes(max_z=3, max_yx=8), b=volumes(max_z=3, max_yx=8),
       preset=st.sampled_from(sorted(PRESETS)))
def test_far_away_lesion_adds_exactly_its_own_score(a, b, preset):
    va, spacing, la, kvp = a
    vb = b[0]
    nz = max(va.shape[0], vb.shape[0])
    shape = (nz, va.shape[1] + vb.shape[1] + 2, max(va.shape[2], vb.shape[2]))
    # two voxels of background between them along y: not even diagonal neighbours
    A, _ = embed(va, None, shape, (0, 0, 0))
    B, _ = embed(vb, None, shape, (0, va.shape[1] + 2, 0))
    both = A.copy()
    both[:, va.shape[1] + 2:] = B[:, va.shape[1] + 2:]
    s = [pvcalc.score(make(x, spacing, kvp), preset=preset, calibration=CAL) for x in (A, B, both)]
    np.testing.assert_allclose(totals(s[2]), totals(s[0]) + totals(s[1]), rtol=1e-9, atol=1e-9)


@settings(max_examples=40)
@given(data=volumes(), preset=st.sampled_from(sorted(PRESETS)), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1.0, 30.0, 200.0]))
def test_raising_every_hu_never_lowers_agatston_volume_or_mass(data, preset, seed, scale):
    # Holds for every preset: the calcium set only grows, every old 2D lesion lies inside
    # a new one with at least its area and peak (so at least its weight), a merged lesion
    # scores at least the sum of its parts (area x max weight), and each minimum-size
    # filter is monotone in the lesion size. Lesion COUNTS are not monotone (merging),
    # see test_raising_hu_can_reduce_the_lesion_count.
    vals, spacing, labels, kvp = data
    rng = np.random.default_rng(seed)
    raised = vals + (rng.random(vals.shape) * scale).astype(np.float32)
    r0 = pvcalc.score(make(vals, spacing, kvp), labels=labels, preset=preset, calibration=CAL)
    r1 = pvcalc.score(make(raised, spacing, kvp), labels=labels, preset=preset, calibration=CAL)
    eps = 1e-9
    assert r1.total.agatston >= r0.total.agatston - eps
    assert r1.total.volume_mm3 >= r0.total.volume_mm3 - eps
    assert r1.total.mass_mg >= r0.total.mass_mg - eps


def test_raising_hu_can_reduce_the_lesion_count():
    a = np.zeros((1, 5, 5), dtype=np.float32)
    a[0, 2, 0:2] = a[0, 2, 3:5] = 300.0
    a[0, 2, 2] = 100.0
    scan = pvcalc.make_scan(a, (3.0, 1.0, 1.0))
    before = pvcalc.score(scan)
    after = pvcalc.score(scan.copy(data=a + 50.0))
    assert (before.total.n_lesions, after.total.n_lesions) == (2, 1)
    assert after.total.agatston > before.total.agatston


def test_isotropic_volume_is_not_monotone_under_a_minimum_size():
    # Why the monotonicity property excludes volume_iso_mm3: raising a voxel can make it a
    # rejected (too small) lesion that now owns interpolated sub-voxels that belonged to a
    # kept lesion in the neighbouring slice.
    a = np.zeros((2, 6, 6), dtype=np.float32)
    a[0, 1:4, 1:4] = 400.0          # kept lesion in slice 0 (9 mm2)
    a[1, 2, 2] = 100.0              # below threshold
    scan = pvcalc.make_scan(a, (3.0, 1.0, 1.0))
    before = pvcalc.score(scan, preset="isotropic_volume")
    b = a.copy()
    b[1, 2, 2] = 140.0              # now a 1-voxel lesion of 1 mm2 ... still kept at 1 mm2
    after_kept = pvcalc.score(scan.copy(data=b), preset="isotropic_volume")
    assert after_kept.total.volume_iso_mm3 >= before.total.volume_iso_mm3
    after = pvcalc.score(scan.copy(data=b), preset="isotropic_volume", min_area_mm2=2.0)
    assert after.total.volume_iso_mm3 < before.total.volume_iso_mm3


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_empty_scan_scores_zero(preset):
    rng = np.random.default_rng(1)
    scan = pvcalc.make_scan(rng.normal(40, 15, (3, 16, 16)).clip(-1000, 110), (3.0, 0.5, 0.5))
    res = pvcalc.score(scan, preset=preset, calibration=CAL)
    assert res.total.agatston == 0.0 and res.total.volume_mm3 == 0.0
    assert res.total.mass_mg == 0.0 and res.total.n_lesions == 0
    assert res.total.risk_category == "0"
    assert len(res.lesions) == 0 and "agatston" in res.lesions.columns
