"""Lesion-by-lesion scoring of simulated phantoms: rod calibration and ROI attribution."""

import numpy as np
import pytest
from naive_scoring import naive_score

import phantoms
import pvcalc
from pvcalc.calibration import rod_calibration
from pvcalc.evaluation import score_lesions
from pvcalc.rois import spherical_roi_labels, truth_roi_labels
from pvcalc.scan import scan_spacing_mm
from pvcalc.scoring import PRESETS


@pytest.fixture(scope="module")
def cci_noise_free():
    phantom = phantoms.cci_phantom()
    scan, truth = phantoms.simulate(phantom, phantoms.get_protocol("calcium_scoring"), seed=0,
                                    noise=False)
    return phantom, scan, truth


def test_rod_calibration_recovers_the_simulators_hu_per_density(cci_noise_free):
    phantom, scan, _ = cci_noise_free
    calibration = rod_calibration(scan, phantom)
    # noise-free rods read water = 0 HU and HA = k(kVp) x 200 mg/cm3, so c_HA = 1 / k
    assert calibration.c_ha_mg_cm3_per_hu == pytest.approx(1.0 / phantoms.hu_per_mg_cm3(120.0),
                                                           rel=1e-3)


def test_rod_calibration_follows_the_repositioning():
    # the compact replica's 10 mm rods (20 mm physical rods, with their z section:
    # tests/test_cci_geometry.py)
    phantom = phantoms.cci_phantom(geometry="compact")
    protocol = phantoms.get_protocol("calcium_scoring")
    (scan, _), = phantoms.repeat(phantom, protocol, seed=5, n_repeats=1, noise=False,
                                 translation_sd_mm=(0.0, 1.5, 1.5))
    assert abs(scan.attrs["translation_y_mm"]) + abs(scan.attrs["translation_x_mm"]) > 0.5
    expected = 1.0 / phantoms.hu_per_mg_cm3(120.0)
    assert rod_calibration(scan, phantom).c_ha_mg_cm3_per_hu == pytest.approx(expected, rel=1e-3)
    # with wide ROIs (1 mm margin) the shift matters: followed, the error stays below 1%
    # (the PSF tail inside the rod); ignored, the ROIs reach over the rods' edges: 7%
    assert rod_calibration(scan, phantom, margin_mm=1.0).c_ha_mg_cm3_per_hu == pytest.approx(
        expected, rel=0.01)
    unshifted = scan.copy()
    unshifted.attrs = {k: v for k, v in scan.attrs.items() if not k.startswith("rod_")}
    unshifted.attrs.update(translation_y_mm=0.0, translation_x_mm=0.0)
    assert rod_calibration(unshifted, phantom, margin_mm=1.0).c_ha_mg_cm3_per_hu > 1.05 * expected


def test_rod_calibration_needs_both_rods():
    phantom = phantoms.cci_phantom(calibration_rods=False)
    scan, _ = phantoms.simulate(phantom, phantoms.get_protocol("calcium_scoring"), seed=0,
                                noise=False)
    with pytest.raises(ValueError, match="needs a water rod.*Calibration"):
        rod_calibration(scan, phantom)


def test_score_lesions_attributes_every_insert_and_zeros_the_missed(cci_noise_free):
    phantom, scan, truth = cci_noise_free
    calibration = pvcalc.Calibration(c_ha_mg_cm3_per_hu=0.8)
    table = score_lesions(scan, truth, calibration=calibration)
    assert list(table["lesion"]) == [les.name for les in phantom.lesions]
    np.testing.assert_allclose(table["true_volume_mm3"], truth["volume_mm3"].values)
    # each row holds what its own ROI holds, scored the slow way (tests/naive_scoring.py:
    # ndimage.label per slice and label, >= 130 HU, area >= 1 mm2, weights 1-4)
    labels = truth_roi_labels(scan, truth)
    rows = naive_score(scan.values, scan_spacing_mm(scan), PRESETS["standard"],
                       labels=labels.values, c_ha=0.8)
    for col, naive in (("agatston", "agatston"), ("volume_score_mm3", "volume_mm3"),
                       ("mass_score_mg", "mass_mg")):
        expected = [sum(r[naive] for r in rows if r["label"] == i + 1)
                    for i in range(truth.sizes["lesion"])]
        np.testing.assert_allclose(table[col], expected, rtol=1e-9, atol=1e-12)
    assert sum(table["agatston"] > 0) >= 6
    # 1 mm inserts at 200 mg/cm3 vanish below 130 HU after blur; they stay as 0 rows
    small_ld = table.set_index("lesion").loc["small_ld"]
    assert small_ld["agatston"] == 0 and not small_ld["detected"]
    assert table.set_index("lesion").loc["large_hd", "detected"]


def test_truth_labels_cover_each_footprint_and_spheres_refuse_overlap(cci_noise_free):
    _, scan, truth = cci_noise_free
    labels = truth_roi_labels(scan, truth, margin_mm=1.0)
    for i in range(truth.sizes["lesion"]):
        footprint = phantoms.fraction_map(truth, i, scan).values > 0
        assert footprint.any() and np.all(labels.values[footprint] == i + 1)
    with pytest.raises(ValueError, match="overlap; use a smaller radius_mm"):
        spherical_roi_labels(scan, [(0, 0, 0), (0, 0, 1.0)], 2.0)


def _dilated_footprints(truth, scan, grow):
    """The slow way: each lesion's footprint in its full-scan fraction map, dilated by a
    box of ``2 grow + 1`` voxels (``ndimage.binary_dilation``), the first lesion winning
    where two meet. The dilation runs on the footprint's bounding box (from the map's
    non-zero voxels) grown by ``grow`` and clipped to the scan: a box dilation reaches
    no farther, so this equals the dilation of the whole scan, at a fraction of its cost."""
    from scipy import ndimage

    expected = np.zeros(scan.shape, dtype=np.int32)
    for i in range(truth.sizes["lesion"]):
        footprint = phantoms.fraction_map(truth, i, scan).values > 0
        if not footprint.any():
            continue
        nz = np.nonzero(footprint)
        box = tuple(slice(max(int(a.min()) - g, 0), min(int(a.max()) + g + 1, n))
                    for a, g, n in zip(nz, grow, scan.shape))
        grown = ndimage.binary_dilation(footprint[box],
                                        structure=np.ones(tuple(2 * grow + 1), bool))
        block = expected[box]
        block[grown & (block == 0)] = i + 1
    return expected


@pytest.mark.parametrize("margin_mm", [0.5, 2.0, 3.0])
def test_truth_labels_equal_a_full_scan_dilation(cci_noise_free, margin_mm):
    """Against the slow way (:func:`_dilated_footprints`), also for a scan cut through a
    lesion."""
    _, scan, truth = cci_noise_free
    grow = np.ceil(margin_mm / np.asarray(scan_spacing_mm(scan))).astype(int)
    labels = truth_roi_labels(scan, truth, margin_mm=margin_mm)
    np.testing.assert_array_equal(labels.values, _dilated_footprints(truth, scan, grow))
    assert len(np.unique(labels.values)) == truth.sizes["lesion"] + 1
    # a lesion against the scan's edge: cut the scan through the first insert
    index, _ = phantoms.fraction_box(truth, 0, scan)
    cut = scan.isel(x=slice(index[2].start + 2, None))
    np.testing.assert_array_equal(truth_roi_labels(cut, truth, margin_mm=margin_mm).values,
                                  _dilated_footprints(truth, cut, grow))


def test_reference_marks_the_missing_philips_volume_scores():
    from pvcalc.reference import qrm_reference_scores

    table = qrm_reference_scores()
    philips = table["scanner"].str.startswith("Philips")
    assert table.loc[philips, "volume_score_mm3"].isna().all()
    # the other scanners keep their zeros (missed inserts) as measurements
    others = table.loc[~philips]
    assert others["volume_score_mm3"].notna().all()
    assert ((others["volume_score_mm3"] == 0) == (others["agatston"] == 0)).mean() > 0.95
    assert set(table["body"]) == {"small", "large"} and len(table) == 4 * 2 * 5 * 9
