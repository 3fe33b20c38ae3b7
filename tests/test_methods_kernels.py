"""The methods' numba kernels against slow, obviously correct versions."""

import numpy as np
from scipy import ndimage

from pvcalc.methods._kernels import _block_inflation, _bounding_boxes
from pvcalc.methods._regions import _distance2_mm2


def test_bounding_boxes_match_find_objects():
    rng = np.random.default_rng(0)
    for _ in range(20):
        shape = tuple(int(v) for v in rng.integers(1, 12, 3))
        labels = np.where(rng.random(shape) < 0.1, rng.integers(1, 6, shape), 0).astype(np.int32)
        boxes = _bounding_boxes(labels, 7)
        ref = ndimage.find_objects(labels, max_label=7)
        for i in range(7):
            if ref[i] is None:
                assert boxes[i, 0] == -1
            else:
                assert tuple(slice(int(boxes[i, 2 * a]), int(boxes[i, 2 * a + 1]))
                             for a in range(3)) == ref[i]


def _naive_block_inflation(residual, shell, b_max, min_blocks):
    nz, ny, nx = residual.shape
    out = np.full(b_max + 1, np.nan)
    for b in range(2, b_max + 1):
        vals = []
        for z in range(nz):
            for y0 in range(0, ny - b + 1, b):
                for x0 in range(0, nx - b + 1, b):
                    m = shell[z, y0:y0 + b, x0:x0 + b]
                    if 2 * m.sum() >= b * b:
                        vals.append(residual[z, y0:y0 + b, x0:x0 + b][m].sum() ** 2 / m.sum())
        if len(vals) >= min_blocks:
            out[b] = np.mean(vals)
    return out


def test_block_inflation_matches_the_loop_version():
    rng = np.random.default_rng(1)
    for _ in range(10):
        shape = (int(rng.integers(1, 4)), int(rng.integers(5, 30)), int(rng.integers(5, 30)))
        r = rng.normal(size=shape)
        shell = rng.random(shape) < rng.uniform(0.3, 1.0)
        got = _block_inflation(r, shell, 6, 3)
        np.testing.assert_allclose(got, _naive_block_inflation(r, shell, 6, 3), rtol=1e-12)


def test_block_inflation_of_white_noise_is_one():
    r = np.random.default_rng(2).normal(size=(8, 60, 60))
    got = _block_inflation(r, np.ones(r.shape, dtype=bool), 6, 10)[2:]
    # mean of ~225-7200 chi-square(1) variables: within 5 standard errors of 1
    assert np.all(np.abs(got - 1.0) < 5 * np.sqrt(2.0 / 225))


def test_slicewise_distance_equals_the_3d_transform():
    rng = np.random.default_rng(3)
    for spacing in ((3.0, 0.5, 0.5), (0.5, 0.4, 0.45), (1.25, 0.7, 0.7)):
        mask = np.zeros((9, 25, 25), dtype=bool)
        mask[rng.integers(0, 9, 5), rng.integers(0, 25, 5), rng.integers(0, 25, 5)] = True
        d2 = _distance2_mm2(mask, spacing, reach=4.0)
        ref = ndimage.distance_transform_edt(~mask, sampling=spacing) ** 2
        close = ref <= 16.0
        np.testing.assert_allclose(d2[close], ref[close], rtol=1e-12, atol=1e-12)
        assert np.all(d2[~close] > 16.0 - 1e-9)
