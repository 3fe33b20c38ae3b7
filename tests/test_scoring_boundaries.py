"""Hand-made cases at every boundary of the scoring conventions (analytic expectations)."""

import numpy as np
import pytest

import pvcalc


def one_lesion(peak, *, body=150.0, shape=(1, 8, 8), spacing=(3.0, 0.5, 0.5), kvp=120.0):
    """A 2 x 2 pixel lesion (1 mm2 at 0.5 mm pixels): one voxel at ``peak``, three at ``body``."""
    a = np.zeros(shape, dtype=np.float32)
    a[0, 2:4, 2:4] = body
    a[0, 2, 2] = peak
    return pvcalc.make_scan(a, spacing, kvp=kvp)


@pytest.mark.parametrize("peak,weight", [
    (130.0, 1), (199.0, 1), (199.9, 1), (200.0, 2), (299.0, 2), (300.0, 3), (399.0, 3),
    (400.0, 4), (1000.0, 4)])
def test_weight_cutoffs_standard_inclusive(peak, weight):
    res = pvcalc.score(one_lesion(peak))
    assert res.lesions["weight"].tolist() == [weight]
    assert res.total.agatston == pytest.approx(1.0 * weight)


@pytest.mark.parametrize("peak,weight", [
    (200.0, 1), (200.1, 2), (300.0, 2), (300.1, 3), (400.0, 3), (400.1, 4)])
def test_weight_cutoffs_strict(peak, weight):
    res = pvcalc.score(one_lesion(peak), preset="strict_cutoffs")
    assert res.lesions["weight"].tolist() == [weight]


@pytest.mark.parametrize("value,preset,counted", [
    (129.9, "standard", False), (130.0, "standard", True),
    (130.0, "strict_threshold", False), (130.1, "strict_threshold", True)])
def test_threshold_inclusive_and_strict(value, preset, counted):
    scan = one_lesion(value, body=value)
    res = pvcalc.score(scan, preset=preset)
    assert res.total.n_lesions == int(counted)
    assert res.total.agatston == (1.0 if counted else 0.0)


@pytest.mark.parametrize("preset,pixel_mm,n_at_min", [
    ("standard", 0.5, 4),       # 4 x 0.25 mm2 = 1 mm2
    ("standard", 0.1, 100),     # 100 x 0.01 mm2 = 1 mm2 (inexact in binary floating point)
    ("agatston_1990", 0.5, 4),
    ("min_area_0p5", 0.5, 2),   # 2 x 0.25 = 0.5 mm2
    ("min_3_voxels", 0.5, 3),
    ("min_3_voxels", 0.1, 3),   # 3 voxels whatever the pixel size
    ("connectivity_4", 0.5, 4),
    ("min_area_0", 0.5, 1)])
def test_minimum_size_exactly_at_the_limit(preset, pixel_mm, n_at_min):
    for n, expected in ((n_at_min, 1), (n_at_min - 1, 0)):
        if n == 0:
            continue
        a = np.zeros((1, 12, 12), dtype=np.float32)
        # the first n pixels in raster order: consecutive rows touch, so one lesion
        a[0].reshape(-1)[:n] = 250.0
        res = pvcalc.score(pvcalc.make_scan(a, (3.0, pixel_mm, pixel_mm)), preset=preset)
        assert res.total.n_lesions == expected, (n, res.lesions)


def test_min_area_tolerance_for_inexact_pixel_area():
    # 0.7 x 0.7 = 0.48999999999999994 in binary floating point; one pixel must meet 0.49 mm2
    a = np.zeros((1, 4, 4), dtype=np.float32)
    a[0, 1, 1] = 300.0
    res = pvcalc.score(pvcalc.make_scan(a, (3.0, 0.7, 0.7)), min_area_mm2=0.49)
    assert res.total.n_lesions == 1


def test_3d_lesion_minimum_applies_to_whole_lesion():
    # two 2-pixel fragments (0.5 mm2 each) in neighbouring slices: one 3D lesion of 1 mm2
    a = np.zeros((2, 6, 6), dtype=np.float32)
    a[0, 2, 2:4] = 250.0
    a[1, 2, 3:5] = 450.0
    scan = pvcalc.make_scan(a, (3.0, 0.5, 0.5))
    assert pvcalc.score(scan).total.n_lesions == 0
    res = pvcalc.score(scan, preset="3d_lesions")
    assert res.lesions["weight"].tolist() == [2, 4]
    assert res.total.agatston == pytest.approx(0.5 * 2 + 0.5 * 4)
    assert res.lesions["lesion_3d"].tolist() == [0, 0]
    peak = pvcalc.score(scan, preset="3d_lesions_peak")
    assert peak.total.agatston == pytest.approx(0.5 * 4 + 0.5 * 4)


def test_3d_linking_diagonal_across_slices_depends_on_connectivity():
    a = np.zeros((2, 6, 6), dtype=np.float32)
    a[0, 1:3, 1:3] = 250.0
    a[1, 3:5, 3:5] = 250.0  # touches slice 0 only diagonally (corner)
    scan = pvcalc.make_scan(a, (3.0, 0.5, 0.5))
    assert pvcalc.score(scan, preset="3d_lesions").total.n_lesions_3d == 1
    assert pvcalc.score(scan, preset="3d_lesions", connectivity=4).total.n_lesions_3d == 2


def test_in_plane_connectivity():
    a = np.zeros((1, 6, 6), dtype=np.float32)
    a[0, 1, 1] = a[0, 2, 2] = 300.0
    scan = pvcalc.make_scan(a, (3.0, 1.0, 1.0))
    assert pvcalc.score(scan).total.n_lesions == 1
    assert pvcalc.score(scan, preset="connectivity_4").total.n_lesions == 2


def rod_scan(increment, thickness, length_mm=6.0, hu=250.0):
    """A rod of 2 x 2 pixels (1 mm2) along z covering slice centres in [3, 3 + length)."""
    nz = int(round(12.0 / increment))
    z = np.arange(nz) * increment
    a = np.zeros((nz, 6, 6), dtype=np.float32)
    a[(z >= 3.0 - 1e-9) & (z < 3.0 + length_mm - 1e-9), 2:4, 2:4] = hu
    return pvcalc.make_scan(a, (increment, 0.5, 0.5), slice_thickness_mm=thickness)


@pytest.mark.parametrize("increment,thickness", [
    (3.0, 3.0), (1.5, 1.5), (1.5, 3.0), (1.0, 3.0), (2.5, 2.5), (2.5, 3.0), (0.5, 1.0)])
def test_slice_increment_normalisation(increment, thickness):
    scan = rod_scan(increment, thickness)
    n_slices = int(round(6.0 / increment))
    res = pvcalc.score(scan)
    assert res.slice_factor == pytest.approx(increment / 3.0)
    assert res.total.agatston == pytest.approx(n_slices * 1.0 * 2 * increment / 3.0)
    assert res.total.volume_mm3 == pytest.approx(n_slices * 1.0 * increment)
    tag = pvcalc.score(scan, preset="slice_thickness_tag")
    assert tag.total.agatston == pytest.approx(n_slices * 2 * thickness / 3.0)
    raw = pvcalc.score(scan, preset="no_slice_normalisation")
    assert raw.total.agatston == pytest.approx(n_slices * 2.0)


def test_rod_scores_the_same_at_every_increment():
    # the purpose of the increment / 3 mm factor: a 6 mm rod scores 2 slices x 1 mm2 x 2
    for inc in (3.0, 1.5, 1.0, 0.5):
        assert pvcalc.score(rod_scan(inc, 3.0)).total.agatston == pytest.approx(4.0)


def test_resample_3mm_identity_on_3mm_and_rebins_thin_slices():
    scan3 = rod_scan(3.0, 3.0)
    assert pvcalc.score(scan3, preset="resample_3mm").total.agatston == \
        pvcalc.score(scan3).total.agatston
    # 1.5 mm slices rebinned: the rod fills slabs [3, 6) and [6, 9) exactly
    res = pvcalc.score(rod_scan(1.5, 1.5), preset="resample_3mm")
    assert res.total.agatston == pytest.approx(4.0)
    assert res.lesions["z_mm"].tolist() == pytest.approx([3.75, 6.75])
    # half-filled slab: the average halves the HU, 250 -> 125 < 130 -> below threshold
    res = pvcalc.score(rod_scan(1.5, 1.5, length_mm=4.5), preset="resample_3mm")
    assert res.total.agatston == pytest.approx(2.0)


@pytest.mark.parametrize("kvp,value,counted,weight", [
    (80.0, 176.9, False, 0), (80.0, 177.0, True, 1), (80.0, 271.0, True, 2),
    (80.0, 544.0, True, 4), (70.0, 207.0, True, 1), (100.0, 222.0, True, 2),
    (135.0, 119.0, True, 1), (135.0, 364.0, True, 4), (140.0, 118.9, False, 0),
    (140.0, 183.0, True, 2), (90.0, 177.0, True, 1), (90.0, 176.9, False, 0)])
def test_kvp_adjusted_thresholds_grani_2018(kvp, value, counted, weight):
    scan = one_lesion(value, body=value, kvp=kvp)
    res = pvcalc.score(scan, preset="kvp_adjusted")
    assert res.total.n_lesions == int(counted)
    if counted:
        assert res.lesions["weight"].tolist() == [weight]
    # the standard preset ignores kVp
    assert pvcalc.score(scan).threshold_hu == 130.0


def test_kvp_interpolate_and_exact():
    scan = one_lesion(161.0, body=161.0, kvp=90.0)
    res = pvcalc.score(scan, kvp_thresholds="interpolate")
    assert res.threshold_hu == pytest.approx(161.0)  # midway between 177 and 145
    assert res.weight_cutoffs_hu == pytest.approx((246.5, 371.0, 495.0))
    assert res.total.n_lesions == 1
    with pytest.raises(ValueError, match="no thresholds for 90 kVp"):
        pvcalc.score(scan, kvp_thresholds="exact")
    with pytest.raises(ValueError, match="covers 70-135 kVp"):
        pvcalc.score(one_lesion(300.0, kvp=140.0), kvp_thresholds="interpolate")


def test_labels_split_a_component_and_by_label():
    a = np.zeros((1, 6, 8), dtype=np.float32)
    a[0, 2:4, 1:7] = 300.0
    lab = np.zeros(a.shape, dtype=np.int32)
    lab[0, :, :4] = 1
    lab[0, :, 4:] = 2
    lab[0, 5, 7] = 3  # a label without calcium still gets a row in by_label
    scan = pvcalc.make_scan(a, (3.0, 0.5, 0.5))
    labels = scan.copy(data=lab).astype(np.int32)
    labels.attrs = {"label_names": {1: "LAD", 2: "RCA", 3: "LCX"}}
    res = pvcalc.score(scan, labels=labels)
    assert res.lesions["label"].tolist() == [1, 2]
    assert res.lesions["label_name"].tolist() == ["LAD", "RCA"]
    assert res.lesions["n_voxels"].tolist() == [6, 6]
    bl = res.by_label.set_index("label_name")
    assert bl.loc["LAD", "agatston"] == pytest.approx(1.5 * 3)
    assert bl.loc["LCX", "agatston"] == 0.0
    assert bl.loc["LCX", "n_lesions"] == 0
    assert pvcalc.score(scan).total.n_lesions == 1


def test_isotropic_volume_equals_voxel_volume_for_constant_columns():
    # a column constant along z: linear interpolation changes nothing
    a = np.zeros((4, 6, 6), dtype=np.float32)
    a[:, 2:4, 2:4] = 250.0
    scan = pvcalc.make_scan(a, (3.0, 0.5, 0.5))
    res = pvcalc.score(scan, preset="isotropic_volume")
    assert res.total.volume_iso_mm3 == pytest.approx(res.total.volume_mm3)
    # one slice only, 400 HU between 0 HU neighbours: above 130 HU while the weight of the
    # 400 HU voxel is >= (130 / 400) -> within 0.675 slice increments of its centre
    b = np.zeros((3, 6, 6), dtype=np.float32)
    b[1, 2:4, 2:4] = 400.0
    scan = pvcalc.make_scan(b, (3.0, 0.5, 0.5))
    res = pvcalc.score(scan, preset="isotropic_volume", isotropic_spacing_mm=0.01)
    assert res.total.volume_iso_mm3 == pytest.approx(2 * 0.675 * 3.0 * 1.0, rel=0.01)
