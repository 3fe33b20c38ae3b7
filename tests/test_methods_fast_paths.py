"""The per-lesion fast paths of the methods give the results of the slower paths they replace.

``clinical`` scores the ROI's bounding box instead of the whole scan, ``swcs``
smooths its weights on the ROI's box instead of the crop, ``volume_fraction``
and ``em_partial_content`` build their masks on boxes with shifted ORs instead
of binary dilations of the crop. The references below are those earlier
implementations, kept here verbatim in substance; every comparison is exact
(``==``, NaN equal to NaN).
"""

import math

import numpy as np
import pytest
from scipy import ndimage

import phantoms
import pvcalc
from pvcalc.methods import RegionParams, ScanContext, _em, _swcs, _volume_fraction, build_regions
from pvcalc.methods._clinical import ClinicalParams
from pvcalc.methods._clinical import compute as clinical_compute
from pvcalc.methods._em import EmPartialContentParams
from pvcalc.methods._swcs import PLUS_KERNEL, SwcsParams
from pvcalc.methods._volume_fraction import VolumeFractionParams
from pvcalc.rois import truth_roi_labels

CAL = pvcalc.Calibration(0.8, mass_reference_hu=3.0)


def _regions(scan, labels):
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    names = {int(v): f"label_{v}" for v in np.unique(labels) if v > 0}
    finite = bool(np.isfinite(scan.values).all())
    ctx = ScanContext(scan=scan, labels=labels, label_names=names, finite=finite)
    return [r for r in build_regions(ctx, sorted(names), RegionParams()) if not r.reason]


def _random_case(seed):
    """A noisy scan with bright blobs and three label ROIs, one of them at the scan's edge."""
    rng = np.random.default_rng(seed)
    shape = (9, 56, 56)
    a = rng.normal(40.0, 25.0, shape)
    for _ in range(8):
        z, y, x = (int(rng.integers(1, s - 1)) for s in shape)
        r = int(rng.integers(1, 4))
        a[max(z - 1, 0):z + 2, max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1] += \
            rng.uniform(150.0, 700.0)
    a = ndimage.gaussian_filter(a, (0.6, 1.0, 1.0))
    spacing = (float(rng.choice([0.5, 1.0, 3.0])), 0.49, 0.49)
    scan = pvcalc.make_scan(a, spacing, slice_thickness_mm=3.0)
    labels = np.zeros(shape, dtype=np.int32)
    zz, yy, xx = np.indices(shape)
    for lab, (cz, cy, cx, rad) in enumerate([(4, 16, 16, 9), (4, 40, 38, 10), (4, 3, 46, 8)], 1):
        inside = ((yy - cy) ** 2 + (xx - cx) ** 2 <= rad ** 2) & (abs(zz - cz) <= 3)
        labels[inside & (labels == 0)] = lab
    return scan, labels


@pytest.fixture(scope="module")
def regions():
    out = []
    for seed in range(4):
        out += _regions(*_random_case(seed))
    ph = phantoms.cci_phantom()
    protocol = phantoms.get_protocol("calcium_scoring", matrix=256)
    scan, truth = phantoms.simulate(ph, protocol, seed=3)
    out += _regions(scan, truth_roi_labels(scan, truth).values)
    assert len(out) >= 15
    return out


def _same(new, old):
    assert set(new) == set(old)
    for key, value in old.items():
        other = new[key]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(other, float) and math.isnan(other), key
        else:
            assert other == value, (key, other, value)


def test_clinical_on_the_roi_box_equals_score_on_the_whole_scan():
    """Non-finite voxels outside the ROIs, and the scan-level fallbacks, included."""
    scan, labels = _random_case(11)
    values = scan.values.copy()
    values[0, 0, :] = np.nan          # inside the bounding box of ROI 3, outside the ROI
    values[8, 30, 30] = np.inf
    scan = scan.copy(data=values)
    regions = _regions(scan, labels)
    assert len(regions) == 3 and not regions[0].context.finite
    filled = scan.where(np.isfinite(scan), -1024.0)
    for preset in ("standard", "connectivity_4", "3d_lesions_peak", "strict_threshold",
                   "slice_thickness_tag", "no_slice_normalisation", "resample_3mm",
                   "isotropic_volume"):
        ref = pvcalc.score(filled, labels=labels, preset=preset,
                           calibration=CAL).by_label.set_index("label")
        for r in regions:
            got = clinical_compute(r, ClinicalParams(preset), CAL)
            for col in ("agatston", "volume_mm3", "mass_mg"):
                assert got[col] == float(ref.loc[r.label, col]), (preset, r.label, col)
    low = pvcalc.PRESETS["standard"].replace(threshold_hu=90.0)
    bad = pvcalc.Calibration(0.8, mass_reference_hu=95.0)    # not below the 90 HU threshold
    with pytest.raises(ValueError, match="mass_reference_hu = 95 HU is not below"):
        pvcalc.score(filled, labels=labels, preset=low, calibration=bad)
    with pytest.raises(ValueError, match="mass_reference_hu = 95 HU is not below"):
        clinical_compute(regions[0], ClinicalParams(low), bad)


def _old_swcs(region, params, calibration):
    mu = region.background_hu + params.reference_density_mg_cm3 / calibration.c_ha_mg_cm3_per_hu
    sigma = region.background_sd_hu
    smooth = ndimage.convolve(_swcs.weights(region.hu, mu, sigma), PLUS_KERNEL, mode="nearest")
    dz, dy, dx = region.spacing_mm
    factor = dz / 3.0 if params.slice_normalisation else 1.0
    inside = smooth[region.roi]
    return float(inside.sum()) * dy * dx * factor, bool(inside.max() >= params.detection_weight)


def test_swcs_on_the_roi_box_equals_swcs_on_the_crop(regions):
    for params in (SwcsParams(), SwcsParams(slice_normalisation=False, detection_weight=0.9)):
        for r in regions:
            got = _swcs.compute(r, params, CAL)
            assert (got["swcs"], got["detected"]) == _old_swcs(r, params, CAL)


def _old_lesion_mask(region, params):
    if params.mask == "roi" or not region.core.any():
        return region.roi
    dy, dx = region.spacing_mm[1:]
    grown = np.empty_like(region.core)
    for z in range(region.core.shape[0]):
        sl = region.core[z]
        grown[z] = (ndimage.distance_transform_edt(~sl, sampling=(dy, dx))
                    <= params.dilation_mm) if sl.any() else False
    if params.dilation_slices:
        grown = ndimage.binary_dilation(
            grown, structure=np.ones((2 * params.dilation_slices + 1, 1, 1), dtype=bool))
    return grown & region.roi


@pytest.mark.parametrize("params", [VolumeFractionParams(),
                                    VolumeFractionParams(dilation_mm=1.0, dilation_slices=0),
                                    VolumeFractionParams(dilation_mm=3.3, dilation_slices=4)])
def test_volume_fraction_mask_on_the_roi_box_equals_the_crop_mask(regions, params):
    for r in regions:
        np.testing.assert_array_equal(_volume_fraction.lesion_mask(r, params),
                                      _old_lesion_mask(r, params))


def _old_lesion_regions(region, params):
    core = region.core
    extended, lesion = np.zeros_like(core), np.zeros_like(core)
    if not core.any():
        return extended, lesion
    dz, dy, dx = region.spacing_mm
    reach = params.extend_mm + params.rim_mm
    grow = (int(params.extend_mm // dz) + params.rim_slices + 1, int(reach // dy) + 1,
            int(reach // dx) + 1)
    idx = np.nonzero(core)
    box = tuple(slice(max(int(i.min()) - g, 0), min(int(i.max()) + g + 1, n))
                for i, g, n in zip(idx, grow, core.shape))
    c, roi, hu = core[box], region.roi[box], region.hu[box]
    near = ndimage.distance_transform_edt(~c, sampling=region.spacing_mm) <= params.extend_mm
    cand = c | (roi & near & (hu >= params.extend_hu))
    comp, _ = ndimage.label(cand, structure=region.structure)
    keep = np.unique(comp[c])
    ext = np.isin(comp, keep[keep > 0])
    les = ext
    if params.rim_slices > 0:
        les = ndimage.binary_dilation(
            les, structure=np.ones((2 * params.rim_slices + 1, 1, 1), dtype=bool))
    if params.rim_mm >= min(dy, dx):
        les = ndimage.binary_dilation(les, structure=_em._disk(params.rim_mm, dy, dx))
    extended[box] = ext
    lesion[box] = les & roi
    return extended, lesion


@pytest.mark.parametrize("params", [EmPartialContentParams(),
                                    EmPartialContentParams(rim_mm=0.0, rim_slices=0),
                                    EmPartialContentParams(extend_mm=2.5, rim_mm=1.6,
                                                           rim_slices=2)])
def test_em_masks_and_results_on_boxes_equal_the_crop_version(regions, params, monkeypatch):
    for r in regions:
        new = _em.lesion_regions(r, params)
        old = _old_lesion_regions(r, params)
        for a, b in zip(new, old):
            np.testing.assert_array_equal(a, b)
    got = [_em.compute(r, params, CAL) for r in regions]
    full = tuple(slice(None) for _ in range(3))
    monkeypatch.setattr(_em, "_lesion_box",
                        lambda r, p: (full, *_old_lesion_regions(r, p)) if r.core.any() else None)
    for r, new in zip(regions, got):
        _same(new, _em.compute(r, params, CAL))


def _old_bright_structures(hu, roi, shell, min_core, params):
    samples = hu[shell]
    med = float(np.median(samples))
    robust_sd = float(1.4826 * np.median(np.abs(samples - med)))
    comp, n = ndimage.label(~roi & (hu >= params.threshold_hu),
                            structure=ndimage.generate_binary_structure(3, 3))
    if n == 0:
        return np.zeros(hu.shape, dtype=bool)
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones(hu.shape), comp, index)
    peaks = ndimage.maximum(hu, comp, index)
    structure = (sizes >= min_core) & (peaks > med + params.clip_sd * robust_sd)
    return np.concatenate(([False], structure))[comp]


def test_bright_structures_without_a_per_label_sort_equal_the_ndimage_version():
    from pvcalc.methods._regions import _bright_structures

    rng = np.random.default_rng(5)
    dropped = kept = 0
    for _ in range(30):    # noise whose blobs pass 130 HU, and one bright structure
        hu = ndimage.gaussian_filter(rng.normal(75.0, 120.0, (6, 30, 30)), 0.8)
        hu[rng.integers(0, 6), 5:9, 5:12] += rng.uniform(100, 900)
        roi = np.zeros(hu.shape, dtype=bool)
        roi[2:4, 12:18, 12:18] = True
        shell = ~roi
        shell[:, :3] = False
        for min_core in (1, 5):
            got = _bright_structures(hu, roi, shell, min_core, RegionParams())
            np.testing.assert_array_equal(
                got, _old_bright_structures(hu, roi, shell, min_core, RegionParams()))
            dropped += int(got.sum())
            kept += int((~roi & (hu >= 130.0) & ~got).sum())
    assert dropped > 0 and kept > 0
