"""The methods interface: registry, parameters, lesion inputs, regions, bad input."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import pvcalc
from pvcalc.methods import (
    METHODS,
    RESULT_COLUMNS,
    GroenParams,
    IntegratedParams,
    RegionParams,
    get_method,
    quantify,
)

ROOT = Path(__file__).resolve().parents[1]
CAL = pvcalc.Calibration(0.8)


def _scan(shape=(9, 60, 60), spacing=(1.5, 0.5, 0.5), noise=10.0, seed=0):
    rng = np.random.default_rng(seed)
    a = 40.0 + rng.normal(0.0, noise, shape)
    a[3:6, 10:16, 10:16] = 600.0
    a[3:6, 40:46, 40:46] = 300.0
    return pvcalc.make_scan(a, spacing)


def _table(**rows):
    """rows: name -> (z, y, x, radius) in mm."""
    return pd.DataFrame([(n, *v) for n, v in rows.items()],
                        columns=["lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm",
                                 "radius_mm"])


GOOD = {"a": (6.0, 6.25, 6.25, 3.0), "b": (6.0, 21.25, 21.25, 3.0)}


# --- registry and parameters -------------------------------------------------------------

def test_registry_is_read_only_and_complete():
    assert {"clinical", "adaptive_groen", "adaptive_background", "integrated",
            "volume_fraction", "swcs"} <= set(METHODS)
    with pytest.raises(TypeError):
        METHODS["x"] = None
    for name, spec in METHODS.items():
        assert spec.name == name
        spec.make_params()  # every default is valid


def test_unknown_method_suggests_the_closest_name():
    with pytest.raises(ValueError, match=r"unknown method 'volume_fractoin' \(did you mean "
                                         r"'volume_fraction'\?\)"):
        get_method("volume_fractoin")
    with pytest.raises(ValueError, match="did you mean 'integrated'"):
        quantify(_scan(), _table(**GOOD), methods=["intgrated"], calibration=CAL)
    with pytest.raises(TypeError, match="must be a string"):
        get_method(3)


def test_parameters_are_validated_with_clear_errors():
    with pytest.raises(ValueError, match="fraction must be > 0"):
        GroenParams(fraction=0)
    with pytest.raises(TypeError, match="fraction must be a number"):
        GroenParams(fraction="half")
    with pytest.raises(ValueError, match="volume_density must be one of"):
        IntegratedParams(volume_density="mean")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['fractoin'\] for method "
                                         r"'adaptive_groen' \(did you mean 'fraction'\?\)"):
        quantify(_scan(), _table(**GOOD), methods={"adaptive_groen": {"fractoin": 0.4}})
    with pytest.raises(TypeError, match="must be a GroenParams"):
        quantify(_scan(), _table(**GOOD), methods={"adaptive_groen": 0.4})
    with pytest.raises(ValueError, match="connectivity must be one of"):
        RegionParams(connectivity=8)
    with pytest.raises(ValueError, match="shell_width_mm must be > 0"):
        quantify(_scan(), _table(**GOOD), region_params={"shell_width_mm": 0})
    with pytest.raises(ValueError, match="not among the selected methods"):
        quantify(_scan(), _table(**GOOD), methods=["clinical"],
                 params={"adaptive_groen": {"fraction": 0.3}})


def test_params_change_the_result():
    scan = _scan(noise=0.0)
    t = _table(**GOOD)
    lo = quantify(scan, t, methods={"adaptive_groen": {"fraction": 0.2}})
    hi = quantify(scan, t, methods=["adaptive_groen"], params={"adaptive_groen": {
        "fraction": 0.9}})
    assert (lo["threshold_hu"] < hi["threshold_hu"]).all()


# --- calibration ----------------------------------------------------------------------

def test_calibration_methods_named_without_calibration_raise_naming_the_fix():
    for name in ("integrated", "volume_fraction", "swcs"):
        with pytest.raises(ValueError, match=rf"method '{name}' needs a calibration.*"
                                             r"calibration=pvcalc\.Calibration"):
            quantify(_scan(), _table(**GOOD), methods=[name])


def test_without_calibration_volumes_remain_and_masses_say_why():
    res = quantify(_scan(), _table(**GOOD))
    assert list(res["method"].unique()) == list(METHODS)
    vol_only = res[res.method.isin(["clinical", "adaptive_groen", "adaptive_background"])]
    assert vol_only["volume_mm3"].notna().all() and vol_only["mass_mg"].isna().all()
    assert vol_only["reason"].str.startswith("no calibration").all()
    needs = res[res.method.isin(["integrated", "volume_fraction", "swcs"])]
    assert needs["volume_mm3"].isna().all()
    assert needs["reason"].str.contains("needs one").all()
    with pytest.raises(TypeError, match="calibration must be a pvcalc.Calibration"):
        quantify(_scan(), _table(**GOOD), calibration=0.8)


# --- result table ----------------------------------------------------------------------

def test_result_columns_types_and_glossary():
    res = quantify(_scan(), _table(**GOOD), calibration=CAL)
    assert tuple(res.columns[:len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert len(res) == 2 * len(METHODS)
    assert list(res["lesion"]) == [n for n in GOOD for _ in METHODS]
    assert str(res["detected"].dtype) == "boolean"
    assert res["reason"].map(type).eq(str).all()
    # every NaN volume or mass has a reason
    for q in ("volume_mm3", "mass_mg"):
        assert (res.loc[res[q].isna(), "reason"] != "").all()
    glossary = (ROOT / "docs" / "methods" / "index.md").read_text()
    for col in res.columns:
        assert f"`{col}`" in glossary, f"column {col} missing from the glossary"


# --- lesion inputs -------------------------------------------------------------------------

def test_label_image_and_table_give_the_same_results():
    scan = _scan()
    t = _table(**GOOD)
    labels = pvcalc.rois.spherical_roi_labels(
        scan, t[["centre_z_mm", "centre_y_mm", "centre_x_mm"]].to_numpy(), 3.0,
        names=list(t["lesion"]))
    a = quantify(scan, t, calibration=CAL)
    b = quantify(scan, labels, calibration=CAL)
    pd.testing.assert_frame_equal(a, b)
    c = quantify(scan, labels.values, calibration=CAL)   # numpy: names label_<k>
    assert list(c["lesion"].unique()) == ["label_1", "label_2"]
    np.testing.assert_array_equal(c["mass_mg"].to_numpy(), a["mass_mg"].to_numpy())


def test_ellipsoidal_rois_from_radius_z():
    scan = _scan()
    t = _table(a=GOOD["a"]).assign(radius_z_mm=1.0)   # only the centre slice (1.5 mm spacing)
    res = quantify(scan, t, methods=["clinical"])
    assert res["volume_mm3"].iloc[0] == pytest.approx(36 * 1.5 * 0.25)


def test_candidates_find_the_lesions():
    scan = _scan()
    res = quantify(scan, "candidates", methods=["clinical", "adaptive_groen"])
    assert sorted(res["lesion"].unique()) == ["candidate_1", "candidate_2"]
    assert res.loc[res.method == "clinical", "volume_mm3"].tolist() == pytest.approx(
        [3 * 36 * 0.375] * 2)
    mask = np.zeros(scan.shape, dtype=np.int32)
    mask[:, :30, :30] = 1
    only = quantify(scan, "candidates", mask=mask, methods=["clinical"])
    assert list(only["lesion"]) == ["candidate_1"]
    with pytest.raises(ValueError, match="mask is only used with lesions='candidates'"):
        quantify(scan, _table(**GOOD), mask=mask)
    with pytest.raises(ValueError, match="must be 'candidates'"):
        quantify(scan, "candidate")


def test_regions_masks_follow_their_definition():
    """Shell = gap < distance <= gap + width from the ROI, by brute force over voxels."""
    scan = _scan(noise=0.0)
    t = _table(**GOOD)
    labels = pvcalc.rois.spherical_roi_labels(
        scan, t[["centre_z_mm", "centre_y_mm", "centre_x_mm"]].to_numpy(), 3.0)
    ctx = pvcalc.methods.ScanContext(scan=scan, labels=labels.values, label_names={1: "a"},
                                     finite=True)
    rp = RegionParams(shell_gap_mm=0.7, shell_width_mm=2.0)
    (region,) = pvcalc.methods.build_regions(ctx, [1], rp)
    z, y, x = np.meshgrid(*(np.asarray(scan.coords[d].values)[s] for d, s in
                            zip("zyx", region.crop)), indexing="ij")
    pts = np.stack([z[region.roi], y[region.roi], x[region.roi]], axis=1)
    allp = np.stack([z.ravel(), y.ravel(), x.ravel()], axis=1)
    dmin = np.sqrt(((allp[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    expected = ((dmin > 0.7) & (dmin <= 2.7)).reshape(region.roi.shape)
    expected &= (labels.values[region.crop] == 0)   # no bright structure in this crop
    np.testing.assert_array_equal(region.background, expected)
    np.testing.assert_array_equal(region.core, region.roi & (region.hu >= 130))
    np.testing.assert_array_equal(region.vicinity, region.roi & ~region.core)
    assert region.background_hu == 40.0 and region.background_sd_hu == 0.0


# --- bad input: one clear error or a row with a reason -----------------------------------

def _reasons(res):
    return res.groupby("lesion", sort=False)["reason"].first().to_dict()


def test_bad_rois_give_rows_with_reasons_not_tracebacks():
    scan = _scan()
    t = _table(good=GOOD["a"],
               outside=(6.0, 200.0, 6.0, 3.0),      # far outside the scan
               empty=(6.0, 21.1, 21.1, 0.1),        # no voxel centre within 0.1 mm
               border=(6.0, 0.5, 29.0, 3.0),        # at the scan's edge, shell clipped
               over_1=(6.0, 21.25, 21.25, 3.0),
               over_2=(6.0, 23.25, 21.25, 3.0))     # overlaps over_1
    res = quantify(scan, t, calibration=CAL, region_params={"min_background_voxels": 2000})
    r = _reasons(res)
    assert r["outside"].startswith("ROI outside the scan")
    assert r["empty"].startswith("empty ROI")
    assert r["over_1"].startswith("overlapping ROIs") and "over_2" in r["over_1"]
    assert r["over_2"].startswith("overlapping ROIs") and "over_1" in r["over_2"]
    assert r["border"].startswith("too few background voxels") and "border" in r["border"]
    bad = res[res.lesion != "good"]
    assert bad[["volume_mm3", "mass_mg"]].isna().all().all()
    assert bad["detected"].isna().all()


def test_a_border_roi_with_enough_background_is_measured():
    methods = ["clinical", "adaptive_groen", "adaptive_background", "integrated",
               "volume_fraction"]
    res = quantify(_scan(), _table(border=(6.0, 0.5, 29.0, 3.0)), calibration=CAL,
                   methods=methods)
    assert (res["reason"] == "").all()
    assert res[["volume_mm3", "mass_mg"]].notna().all().all()


def test_nan_in_the_scan():
    scan = _scan()
    a = scan.values.copy()
    a[4, 12, 12] = np.nan          # inside ROI a
    a[0, 55, 5] = np.nan           # far from every ROI
    bad = scan.copy(data=a)
    res = quantify(bad, _table(**GOOD), calibration=CAL)
    r = _reasons(res)
    assert r["a"].startswith("NaN in the ROI")
    assert r["b"] == ""
    ok = quantify(scan, _table(**GOOD), calibration=CAL)
    pd.testing.assert_frame_equal(res[res.lesion == "b"].reset_index(drop=True),
                                  ok[ok.lesion == "b"].reset_index(drop=True))


def test_malformed_input_raises_clear_errors():
    scan = _scan()
    with pytest.raises(TypeError, match="xarray.DataArray"):
        quantify(np.zeros((3, 3, 3)), _table(**GOOD))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['radius_mm'\]"):
        quantify(scan, _table(**GOOD).drop(columns="radius_mm"))
    with pytest.raises(ValueError, match="lesion names must be unique"):
        quantify(scan, pd.concat([_table(**GOOD)] * 2))
    with pytest.raises(ValueError, match="lesion 'a': radius_mm must be finite and positive"):
        quantify(scan, _table(a=(6.0, 6.0, 6.0, -1.0)))
    with pytest.raises(TypeError, match="lesions must be a DataFrame"):
        quantify(scan, [1, 2])
    with pytest.raises(ValueError, match="labels have shape"):
        quantify(scan, np.zeros((2, 2, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="listed twice"):
        quantify(scan, _table(**GOOD), methods=["clinical", "clinical"])
    with pytest.raises(TypeError, match="methods must be 'all'"):
        quantify(scan, _table(**GOOD), methods=3)


def test_a_failing_method_is_reported_per_lesion(monkeypatch):
    from pvcalc.methods import _groen

    def broken(region, params, calibration):
        if region.name == "a":
            raise RuntimeError("kernel exploded")
        return _groen.compute(region, params, calibration)

    spec = METHODS["adaptive_groen"]
    monkeypatch.setitem(pvcalc.methods._base._REGISTRY, "adaptive_groen",
                        dataclasses.replace(spec, compute=broken))
    res = quantify(_scan(), _table(**GOOD), methods=["adaptive_groen"])
    r = _reasons(res)
    assert r["a"] == "adaptive_groen failed: RuntimeError: kernel exploded"
    assert res.loc[res.lesion == "b", "volume_mm3"].notna().all()


def test_every_reason_in_the_source_is_documented():
    """The reasons the framework writes are listed in the glossary."""
    glossary = (ROOT / "docs" / "methods" / "index.md").read_text()
    for start in ("empty ROI", "ROI outside the scan", "overlapping ROIs",
                  "too few background voxels", "NaN in the ROI", "no calibration"):
        assert start in glossary
    assert re.search(r"failed: ", glossary)


def test_scan_with_one_slice_and_xarray_labels_names():
    a = np.full((1, 40, 40), 40.0)
    a[0, 18:22, 18:22] = 500.0
    scan = pvcalc.make_scan(a, (3.0, 0.5, 0.5))
    lab = np.zeros(a.shape, dtype=np.int32)
    lab[0, 15:25, 15:25] = 7
    labels = xr.DataArray(lab, dims=scan.dims, coords=scan.coords,
                          attrs={"label_names": {7: "x", 9: "missing"}})
    res = quantify(scan, labels, methods=["clinical", "integrated"], calibration=CAL)
    r = _reasons(res)
    assert r["missing"].startswith("empty ROI")
    row = res[(res.lesion == "x") & (res.method == "integrated")].iloc[0]
    assert row["mass_mg"] == pytest.approx(0.8 * 460 * 16 * 0.75 / 1000)


def test_core_needs_the_clinical_minimum_size_and_shells_drop_only_structures():
    a = np.full((5, 60, 60), 40.0)
    a[2, 30, 30] = 400.0                 # one bright voxel inside ROI "single"
    a[2, 8:11, 8:11] = 400.0             # a 9-voxel lesion inside ROI "lesion"
    a[2, 8, 20] = 400.0                  # an isolated bright voxel in lesion's shell
    a[1:4, 2:6, 18:22] = 700.0           # a bright structure in lesion's shell
    scan = pvcalc.make_scan(a, (1.0, 0.5, 0.5))
    t = _table(single=(2.0, 15.0, 15.0, 2.0), lesion=(2.0, 4.5, 4.5, 2.5))
    res = quantify(scan, t, methods=["adaptive_groen"],
                   region_params={"shell_gap_mm": 0.5, "shell_width_mm": 6.0})
    r = res.set_index("lesion")
    # 0.25 mm2 pixels: the core needs ceil(1 / 0.25) = 4 voxels, so one voxel is no core
    assert not r.loc["single", "detected"] and r.loc["single", "volume_mm3"] == 0.0
    assert r.loc["lesion", "detected"] and r.loc["lesion", "volume_mm3"] == 9 * 0.25
    # the structure is out of the shell, the single voxel in it: mean = (40 n + 400) / (n + 1)
    labels = pvcalc.rois.spherical_roi_labels(scan, [(2.0, 4.5, 4.5)], 2.5)
    ctx = pvcalc.methods.ScanContext(scan=scan, labels=labels.values, label_names={1: "l"},
                                     finite=True)
    (region,) = pvcalc.methods.build_regions(   # plain mean: no outlier clipping
        ctx, [1], RegionParams(shell_gap_mm=0.5, shell_width_mm=6.0,
                               background_statistic="mean"))
    shell_hu = region.hu[region.background]
    assert shell_hu.max() == 400.0 and np.count_nonzero(shell_hu == 400.0) == 1
    assert not np.any(shell_hu == 700.0)
    assert region.background_hu == pytest.approx(40.0 + 360.0 / shell_hu.size)


def test_clipped_background_ignores_a_second_tissue_and_is_unbiased_in_noise():
    rng = np.random.default_rng(4)
    a = 40.0 + rng.normal(0.0, 20.0, (7, 80, 80))
    a[:, :, 46:] = -850.0 + rng.normal(0.0, 20.0, (7, 80, 34))   # lung beside the ROI
    scan = pvcalc.make_scan(a, (1.0, 0.5, 0.5))
    labels = pvcalc.rois.spherical_roi_labels(scan, [(3.0, 20.0, 20.0)], 2.5)
    ctx = pvcalc.methods.ScanContext(scan=scan, labels=labels.values, label_names={1: "l"},
                                     finite=True)
    (clipped,) = pvcalc.methods.build_regions(ctx, [1], RegionParams())
    (plain,) = pvcalc.methods.build_regions(ctx, [1], RegionParams(background_statistic="mean"))
    assert plain.background_hu < -100.0            # the lung drags the plain mean
    n = clipped.n_background
    assert abs(clipped.background_hu - 40.0) < 4 * 20.0 * np.sqrt(3.0 / n)  # 3: correlation slack
    assert 17.0 < clipped.background_sd_hu < 23.0
    # pure Gaussian noise: the clipped and plain estimates agree to a small fraction of an SE
    pure = scan.copy(data=(40.0 + rng.normal(0.0, 20.0, scan.shape)).astype(np.float32))
    ctx = pvcalc.methods.ScanContext(scan=pure, labels=labels.values, label_names={1: "l"},
                                     finite=True)
    (c2,) = pvcalc.methods.build_regions(ctx, [1], RegionParams())
    (p2,) = pvcalc.methods.build_regions(ctx, [1], RegionParams(background_statistic="mean"))
    assert abs(c2.background_hu - p2.background_hu) < 0.1 * 20.0 / np.sqrt(p2.n_background)


def test_background_keeps_correlated_noise_above_the_threshold():
    """40 HU correlated noise on 75 HU: noise blobs >= 130 HU stay in the shell (no low bias)."""
    from scipy import ndimage

    rng = np.random.default_rng(11)
    white = rng.normal(0.0, 1.0, (9, 200, 200))
    smooth = ndimage.gaussian_filter(white, (0.0, 1.2, 1.2))   # blobs of several voxels
    a = 75.0 + 40.0 * smooth / smooth.std()
    scan = pvcalc.make_scan(a, (3.0, 0.5, 0.5))
    centres = [(12.0, y, x) for y in (20.0, 50.0, 80.0) for x in (20.0, 50.0, 80.0)]
    labels = pvcalc.rois.spherical_roi_labels(scan, centres, 4.5, radius_z_mm=4.0)
    names = {k + 1: f"r{k}" for k in range(len(centres))}
    ctx = pvcalc.methods.ScanContext(scan=scan, labels=labels.values, label_names=names,
                                     finite=True)
    regions = pvcalc.methods.build_regions(ctx, list(names), RegionParams())
    blobs = sum(int(np.count_nonzero(r.hu[r.background] >= 130.0)) for r in regions)
    assert blobs > 100                     # the shells hold many noise voxels above 130 HU
    bias = np.mean([r.background_hu for r in regions]) - 75.0
    assert abs(bias) < 1.5                 # dropping those blobs would read about 6 HU low
    assert 36.0 < np.mean([r.background_sd_hu for r in regions]) < 44.0
