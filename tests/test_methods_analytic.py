"""Partial-volume methods against analytic truth.

- Voxel-aligned cubes, noise- and blur-free: every method returns the exact
  volume, the integrated methods the exact mass, swcs its exact sum.
- Noise-free blurred sphere and cylinder (simulator, slice profile and PSF):
  integrated and volume_fraction masses within 2% of the analytic mass.
- clinical equals pvcalc.score per label exactly, on random scans and
  simulated phantoms, for every preset.
"""

import numpy as np
import pandas as pd
import pytest

import phantoms
import pvcalc
from phantoms import Cylinder, Lesion, Phantom, Sphere, ThoraxBody, get_protocol
from pvcalc.methods import quantify

BACKGROUND_HU = 40.0
C_HA = 0.8  # mg HA cm^-3 HU^-1

# (name, z0, y0, x0 index of the first voxel, edge in voxels (z, y, x), HU)
CUBES = [("dense", 4, 10, 10, (2, 6, 6), 840.0),
         ("medium", 4, 10, 40, (3, 4, 4), 440.0),
         ("faint", 5, 40, 25, (2, 8, 8), 190.0)]
SPACING = (1.5, 0.5, 0.5)


def cube_scan():
    a = np.full((12, 60, 60), BACKGROUND_HU)
    rows = []
    for name, z0, y0, x0, (ez, ey, ex), hu in CUBES:
        a[z0:z0 + ez, y0:y0 + ey, x0:x0 + ex] = hu
        centre = [(i0 + 0.5 * (e - 1)) * s for i0, e, s in zip((z0, y0, x0), (ez, ey, ex),
                                                                 SPACING)]
        rows.append((name, *centre))
    table = pd.DataFrame(rows, columns=["lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm"])
    table["radius_mm"] = 4.0       # holds every cube with at least 1 mm to spare
    table["radius_z_mm"] = 4.5
    return pvcalc.make_scan(a, SPACING), table


def test_cubes_exact_volume_and_mass():
    scan, table = cube_scan()
    cal = pvcalc.Calibration(C_HA)
    res = quantify(scan, table, calibration=cal).set_index(["lesion", "method"])
    voxel = np.prod(SPACING)
    for name, _, _, _, edges, hu in CUBES:
        n = int(np.prod(edges))
        true_volume = n * voxel
        true_mass = C_HA * (hu - BACKGROUND_HU) * true_volume / 1000.0   # density = c (HU - bkg)
        for method in ("clinical", "adaptive_groen", "adaptive_background", "integrated",
                       "volume_fraction"):
            row = res.loc[(name, method)]
            assert row["reason"] == ""
            assert row["detected"]
            assert row["volume_mm3"] == pytest.approx(true_volume, rel=1e-12), (name, method)
        for method in ("integrated", "volume_fraction", "adaptive_groen", "adaptive_background"):
            assert res.loc[(name, method), "mass_mg"] == pytest.approx(true_mass, rel=1e-12)
        # clinical mass: plain HU (the calibration's reference 0), McCollough et al. 2007
        assert res.loc[(name, "clinical"), "mass_mg"] == pytest.approx(
            C_HA * hu * true_volume / 1000.0, rel=1e-12)
        # swcs of a blur-free cube far above mu: every cube voxel weighs 1, smoothing
        # keeps the sum (kernel sums to 1, the ROI holds the neighbours)
        assert res.loc[(name, "swcs"), "swcs"] == pytest.approx(
            n * SPACING[1] * SPACING[2] * SPACING[0] / 3.0, rel=1e-12)
        assert res.loc[(name, "integrated"), "background_hu"] == BACKGROUND_HU
    # Agatston of the dense cube: area 9 mm2 x weight 4 per slice, 2 slices x 1.5 / 3
    assert res.loc[("dense", "clinical"), "agatston"] == pytest.approx(9.0 * 4 * 2 * 0.5)


def test_volume_fraction_over_the_roi_equals_integrated():
    scan, table = cube_scan()
    rng = np.random.default_rng(3)
    noisy = scan + rng.normal(0.0, 15.0, scan.shape).astype(np.float32)
    cal = pvcalc.Calibration(C_HA)
    res = quantify(noisy, table, calibration=cal,
                   methods={"integrated": None, "volume_fraction": {"mask": "roi"}})
    a = res[res.method == "integrated"].reset_index(drop=True)
    b = res[res.method == "volume_fraction"].reset_index(drop=True)
    for col in ("mass_mg", "volume_mm3", "z_score"):
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy())


def _blurred_lesions():
    lesions = [Lesion(Sphere((0.0, -8.0, -6.0), 2.0), 400.0, name="sphere_4mm"),
               Lesion(Sphere((0.0, 8.0, 7.0), 2.5), 800.0, name="sphere_5mm"),
               Lesion(Cylinder((0.0, -8.0, 8.0), 1.5, 3.0), 400.0, name="cylinder_3mm"),
               Lesion(Cylinder((0.0, 8.0, -8.0), 2.5, 5.0), 200.0, name="cylinder_5mm")]
    ph = Phantom(ThoraxBody(), lesions, z_extent_mm=(-15.0, 15.0))
    return ph


@pytest.mark.parametrize("protocol", ["calcium_scoring", "thin_slice_cscT"])
def test_blurred_sphere_and_cylinder_mass_within_2_percent(protocol):
    ph = _blurred_lesions()
    prot = get_protocol(protocol, matrix=96)
    scan, truth = phantoms.simulate(ph, prot, seed=0, noise=False, fraction_maps=False)
    # the calibration of the material itself: density = (HU - background) / k(kVp)
    cal = pvcalc.Calibration(1.0 / phantoms.hu_per_mg_cm3(float(scan.attrs["kvp"])))
    table = pd.DataFrame({
        "lesion": [str(v) for v in truth["name"].values],
        "centre_z_mm": truth["centre_z_mm"].values, "centre_y_mm": truth["centre_y_mm"].values,
        "centre_x_mm": truth["centre_x_mm"].values,
        "radius_mm": 5.0, "radius_z_mm": 7.5})   # lesion + 2.5 mm in-plane, + slice profile
    res = quantify(scan, table, calibration=cal, methods=["integrated", "volume_fraction"])
    true_mass = dict(zip(table["lesion"], truth["mass_mg"].values))
    for _, row in res.iterrows():
        assert row["reason"] == ""
        assert row["mass_mg"] == pytest.approx(true_mass[row["lesion"]], rel=0.02), (
            row["lesion"], row["method"], row["mass_mg"], true_mass[row["lesion"]])


def _random_scan(rng, shape=(7, 48, 48)):
    a = rng.normal(60.0, 70.0, shape)
    for _ in range(6):   # bright blobs so that every preset has lesions to score
        z, y, x = (rng.integers(0, s) for s in shape)
        a[max(z - 1, 0):z + 1, max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] += rng.uniform(100, 700)
    spacing = (float(rng.choice([0.5, 1.0, 2.5, 3.0])), 0.45, 0.45)
    return pvcalc.make_scan(a, spacing, slice_thickness_mm=3.0)


def _score_by_label(scan, labels, preset, cal):
    return pvcalc.score(scan, labels=labels, preset=preset, calibration=cal).by_label.set_index(
        "label")


@pytest.mark.parametrize("preset", sorted(pvcalc.PRESETS))
def test_clinical_equals_score_exactly_on_random_scans(preset):
    rng = np.random.default_rng(sorted(pvcalc.PRESETS).index(preset))
    cal = pvcalc.Calibration(0.8, mass_reference_hu=3.0)
    for _ in range(3):
        scan = _random_scan(rng)
        labels = np.zeros(scan.shape, dtype=np.int32)
        labels[:, 2:22, 2:22] = 1
        labels[:, 26:46, 5:40] = 2
        labels[1:5, 5:15, 25:45] = 3
        ref = _score_by_label(scan, labels, preset, cal)
        res = quantify(scan, labels, methods={"clinical": {"preset": preset}},
                       calibration=cal).set_index("lesion")
        for lab in (1, 2, 3):
            row = res.loc[f"label_{lab}"]
            for col in ("agatston", "volume_mm3", "mass_mg"):
                assert row[col] == ref.loc[lab, col], (preset, lab, col)


def test_clinical_equals_score_exactly_on_a_simulated_phantom():
    ph = phantoms.cci_phantom()
    scan, truth = phantoms.simulate(ph, get_protocol("calcium_scoring"), seed=5,
                                    fraction_maps=False)
    cal = pvcalc.calibration.rod_calibration(scan, ph)
    table = pd.DataFrame({
        "lesion": [str(v) for v in truth["name"].values],
        "centre_z_mm": truth["centre_z_mm"].values, "centre_y_mm": truth["centre_y_mm"].values,
        "centre_x_mm": truth["centre_x_mm"].values, "radius_mm": 5.0})
    labels = pvcalc.rois.spherical_roi_labels(
        scan, table[["centre_z_mm", "centre_y_mm", "centre_x_mm"]].to_numpy(), 5.0,
        names=list(table["lesion"]))
    for preset in ("standard", "min_area_0", "resample_3mm", "isotropic_volume"):
        ref = _score_by_label(scan, labels, preset, cal)
        res = quantify(scan, table, calibration=cal,
                       methods={"clinical": {"preset": preset}}).reset_index(drop=True)
        for i, row in res.iterrows():
            for col in ("agatston", "volume_mm3", "mass_mg"):
                assert row[col] == ref.loc[i + 1, col], (preset, row["lesion"], col)
