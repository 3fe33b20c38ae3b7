"""Hypothesis strategies and helpers shared by the scoring tests (no tests here)."""

import numpy as np
from hypothesis import strategies as st

import pvcalc

#: HU values that sit on or next to every cut-off of every preset.
PALETTE = np.array([-50, 0, 40, 118.9, 119, 129.9, 130, 130.1, 145, 177, 182.9, 183, 199,
                    199.9, 200, 200.1, 222, 250, 271, 299, 300, 301, 334, 364, 399, 400,
                    401, 446, 544, 636, 700], dtype=np.float32)


@st.composite
def volumes(draw, *, max_z=4, max_yx=12, allow_labels=True):
    """(array, spacing, labels-or-None, kvp): small scans dense in boundary values."""
    nz = draw(st.integers(2, max_z))  # 1-voxel axes lose their spacing in make_scan
    ny = draw(st.integers(2, max_yx))
    nx = draw(st.integers(2, max_yx))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.1, 0.3, 0.5, 0.8]))
    rng = np.random.default_rng(seed)
    vals = rng.choice(PALETTE, size=(nz, ny, nx))
    bg = rng.random((nz, ny, nx)) >= density
    vals[bg] = rng.normal(40, 20, size=int(bg.sum())).astype(np.float32)
    dz = draw(st.sampled_from([0.5, 1.0, 1.25, 1.5, 2.5, 3.0]))
    dyx = draw(st.sampled_from([(0.5, 0.5), (0.4, 0.4), (0.3, 0.7), (0.7, 0.3), (1.0, 1.0)]))
    labels = None
    if allow_labels and draw(st.booleans()):
        labels = rng.integers(0, 4, size=(nz, ny, nx)).astype(np.int32)
        if draw(st.booleans()):  # blocky labels, the realistic case
            labels = np.repeat(np.repeat(labels[:, ::3, ::3], 3, axis=1), 3, axis=2)[:, :ny, :nx]
            labels = np.ascontiguousarray(labels)
    kvp = draw(st.sampled_from([70.0, 80.0, 90.0, 100.0, 120.0, 135.0]))
    return vals.astype(np.float32), (dz, *dyx), labels, kvp


def make(vals, spacing, kvp=120.0, slice_thickness_mm=None, origin_mm=None):
    return pvcalc.make_scan(vals, spacing, kvp=kvp, slice_thickness_mm=slice_thickness_mm,
                            origin_mm=origin_mm)
