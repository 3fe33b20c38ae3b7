"""pvcalc.score against the slow reference (tests/naive_scoring.py) on random volumes."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_scoring import naive_score  # noqa: E402
from test_scoring_strategies import make, volumes  # noqa: E402

import pvcalc
from pvcalc.scoring import PRESETS, ScoringPreset

NUMERIC = ["z_mm", "area_mm2", "peak_hu", "mean_hu", "agatston", "volume_mm3",
           "centroid_y_mm", "centroid_x_mm", "mass_mg", "volume_iso_mm3"]
EXACT = ["slice_index", "label", "n_voxels", "weight"]


def _key(r):
    return (r["slice_index"], r["label"], round(r["centroid_y_mm"], 6),
            round(r["centroid_x_mm"], 6), r["n_voxels"])


def compare(vals, spacing, labels, kvp, preset, *, thickness=None, c_ha=None):
    scan = make(vals, spacing, kvp=kvp, slice_thickness_mm=thickness, origin_mm=(5.0, -3.0, 2.0))
    cal = None if c_ha is None else pvcalc.Calibration(c_ha)
    res = pvcalc.score(scan, labels=labels, preset=preset, calibration=cal)
    ref = naive_score(vals, spacing, preset, zc=scan.z.values, y0=-3.0, x0=2.0, labels=labels,
                      kvp=kvp, slice_thickness_mm=thickness, c_ha=c_ha)
    got = res.lesions.to_dict(orient="records")
    assert len(got) == len(ref), (len(got), len(ref))
    got.sort(key=_key)
    ref.sort(key=_key)
    pairs = {}
    for g, r in zip(got, ref):
        for col in EXACT:
            assert g[col] == r[col], (col, g, r)
        for col in NUMERIC:
            if col in r or col in g:
                assert np.isclose(g[col], r[col], rtol=1e-9, atol=1e-9), (col, g[col], r[col])
        pairs.setdefault(g["lesion_3d"], set()).add(r["lesion_3d_naive"])
    # lesion_3d is the same partition as 3D ndimage.label (per label value)
    assert all(len(v) == 1 for v in pairs.values())
    assert len({next(iter(v)) for v in pairs.values()}) == len(pairs)
    assert np.isclose(res.total.agatston, sum(r["agatston"] for r in ref), rtol=1e-9, atol=1e-12)
    assert np.isclose(res.total.volume_mm3, sum(r["volume_mm3"] for r in ref),
                      rtol=1e-9, atol=1e-12)
    return res


def _kvp_ok(preset, kvp):
    if preset.kvp_thresholds == "exact":
        return kvp in (70, 80, 100, 120, 135)
    if preset.kvp_thresholds == "interpolate":
        return 70 <= kvp <= 135
    return True


@pytest.mark.parametrize("name", sorted(PRESETS))
@settings(max_examples=25)
@given(data=volumes())
def test_every_preset_matches_naive(name, data):
    vals, spacing, labels, kvp = data
    compare(vals, spacing, labels, kvp, PRESETS[name], c_ha=0.8)


@st.composite
def random_presets(draw):
    return ScoringPreset(
        name="random",
        threshold_hu=draw(st.sampled_from([100.0, 129.9, 130.0, 150.0])),
        threshold_inclusive=draw(st.booleans()),
        weight_cutoffs_hu=draw(st.sampled_from([(200.0, 300.0, 400.0), (199.0, 299.0, 399.0),
                                                (250.0, 250.0, 500.0)])),
        weight_cutoffs_inclusive=draw(st.booleans()),
        connectivity=draw(st.sampled_from([4, 8])),
        min_area_mm2=draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])),
        min_voxels=draw(st.integers(1, 5)),
        lesion_dimensionality=draw(st.sampled_from(["2d", "3d"])),
        weight_from=draw(st.sampled_from(["component", "lesion_3d"])),
        thickness_source=draw(st.sampled_from(["increment", "slice_thickness", "resample_3mm"])),
        slice_normalisation=draw(st.booleans()),
        kvp_thresholds=draw(st.sampled_from(["off", "exact", "nearest", "interpolate"])),
        volume_method=draw(st.sampled_from(["voxel", "isotropic"])),
        isotropic_spacing_mm=draw(st.sampled_from([None, 0.25, 1.0])))


@settings(max_examples=60)
@given(data=volumes(), preset=random_presets(), thickness=st.sampled_from([None, 2.0, 3.0]),
       c_ha=st.sampled_from([None, 0.75]))
def test_random_conventions_match_naive(data, preset, thickness, c_ha):
    vals, spacing, labels, kvp = data
    if not _kvp_ok(preset, kvp):
        kvp = 120.0
    res = compare(vals, spacing, labels, kvp, preset, thickness=thickness, c_ha=c_ha)
    assert ("mass_mg" in res.lesions.columns) == (c_ha is not None)


def test_realistic_volume_matches_naive():
    # a larger volume with noise, touching lesions across slices and all presets' paths
    rng = np.random.default_rng(7)
    vals = rng.normal(40, 25, size=(6, 64, 64)).astype(np.float32)
    zz, yy, xx = np.mgrid[:6, :64, :64]
    for _ in range(12):
        c = rng.uniform([0, 5, 5], [6, 59, 59])
        r = rng.uniform(1, 4)
        inside = ((zz - c[0]) * 2.0) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
        vals[inside] = rng.uniform(150, 700)
    for name in ("standard", "3d_lesions", "isotropic_volume", "resample_3mm"):
        compare(vals, (1.5, 0.45, 0.45), None, 120.0, PRESETS[name], c_ha=0.8)
