"""Calibration, risk categories, result objects and error messages of pvcalc.scoring."""

import json
import warnings

import numpy as np
import pytest

import pvcalc
from pvcalc import PRESETS, Calibration, ScoringPreset, risk_category


def lesion_scan(hu=300.0, kvp=120.0):
    a = np.zeros((2, 8, 8), dtype=np.float32)
    a[0, 2:4, 2:4] = hu
    return pvcalc.make_scan(a, (3.0, 0.5, 0.5), kvp=kvp)


# --- calibration -------------------------------------------------------------------

def rod_phantom(water_hu=5.0, ha_hu=255.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    a = np.full((4, 60, 60), -100.0) + rng.normal(0, noise, (4, 60, 60))
    zz, yy, xx = np.mgrid[:4, :60, :60] * np.array([2.0, 0.5, 0.5])[:, None, None, None]
    water = (yy - 7.5) ** 2 + (xx - 7.5) ** 2 <= 4.0 ** 2
    ha = (yy - 20.0) ** 2 + (xx - 20.0) ** 2 <= 4.0 ** 2
    a[water] += water_hu + 100.0
    a[ha] += ha_hu + 100.0
    return pvcalc.make_scan(a, (2.0, 0.5, 0.5)), water, ha


def test_calibration_from_rods_circles_and_masks():
    scan, water, ha = rod_phantom()
    cal = Calibration.from_rods(scan, ((7.5, 7.5), 3.0), ((20.0, 20.0), 3.0))
    assert cal.c_ha_mg_cm3_per_hu == pytest.approx(200.0 / 250.0)
    assert (cal.water_hu, cal.ha_hu, cal.ha_density_mg_cm3) == pytest.approx((5.0, 255.0, 200.0))
    assert cal.mass_reference_hu == 0.0
    cal_m = Calibration.from_rods(scan, water, ha, ha_density_mg_cm3=400.0,
                                  mass_reference="water")
    assert cal_m.c_ha_mg_cm3_per_hu == pytest.approx(400.0 / 250.0)
    assert cal_m.mass_reference_hu == pytest.approx(5.0)
    # a 3-value centre with a length: a cylinder over the middle two slices only
    cal_c = Calibration.from_rods(scan, ((3.0, 7.5, 7.5), 3.0, 4.0), ((3.0, 20.0, 20.0), 3.0))
    assert cal_c.c_ha_mg_cm3_per_hu == pytest.approx(0.8)


def test_calibration_from_noisy_rods_matches_roi_means():
    scan, water, ha = rod_phantom(noise=15.0, seed=3)
    cal = Calibration.from_rods(scan, water, ha)
    v = scan.values.astype(np.float64)
    assert cal.c_ha_mg_cm3_per_hu == pytest.approx(200.0 / (v[ha].mean() - v[water].mean()))
    assert cal.c_ha_mg_cm3_per_hu == pytest.approx(0.8, rel=0.03)


def test_mass_score_formula():
    scan = lesion_scan(300.0)
    res = pvcalc.score(scan, calibration=Calibration(0.8))
    # 4 voxels x 300 HU x 0.75 mm3 = 900 HU mm3 -> 0.8 x 900 / 1000 mg
    assert res.total.mass_mg == pytest.approx(0.72)
    assert res.lesions["mass_mg"].tolist() == pytest.approx([0.72])
    res_w = pvcalc.score(scan, calibration=Calibration(0.8, mass_reference_hu=50.0))
    assert res_w.total.mass_mg == pytest.approx(0.8 * 4 * 250.0 * 0.75 / 1000)
    assert res_w.by_label["mass_mg"].tolist() == pytest.approx([res_w.total.mass_mg])


def test_mass_without_calibration_is_an_explicit_error():
    res = pvcalc.score(lesion_scan())
    assert "mass_mg" not in res.lesions.columns
    assert "mass_mg" not in res.by_label.columns
    assert not res.total.has_mass
    with pytest.raises(ValueError, match="without a calibration"):
        _ = res.total.mass_mg
    assert "mass_mg" not in res.to_dict()["total"]
    assert "no calibration" in repr(res)


def test_calibration_errors_and_warnings():
    with pytest.raises(ValueError, match="c_ha_mg_cm3_per_hu must be a positive number"):
        Calibration(-0.8)
    with pytest.raises(TypeError, match="mg HA"):
        Calibration("abc")
    with pytest.warns(UserWarning, match="plausible range"):
        Calibration(5.0)
    scan, water, ha = rod_phantom()
    with pytest.raises(ValueError, match="not swapped"):
        Calibration.from_rods(scan, ha, water)
    with pytest.raises(ValueError, match="overlap"):
        Calibration.from_rods(scan, water, water)
    with pytest.raises(ValueError, match="contains no voxel"):
        Calibration.from_rods(scan, ((500.0, 500.0), 1.0), ha)
    with pytest.raises(ValueError, match="shape"):
        Calibration.from_rods(scan, water[:2], ha)
    with pytest.raises(TypeError, match="boolean"):
        Calibration.from_rods(scan, water.astype(int), ha)
    with pytest.raises(ValueError, match="mass_reference"):
        Calibration.from_rods(scan, water, ha, mass_reference="air")
    with pytest.raises(TypeError, match="calibration must be a pvcalc.Calibration"):
        pvcalc.score(scan, calibration=0.8)


# --- risk categories -----------------------------------------------------------------

@pytest.mark.parametrize("value,standard,cac_drs,acc", [
    (0.0, "0", "0", "0"), (0.3, "1-10", "1-99", "1-99"), (10.0, "1-10", "1-99", "1-99"),
    (10.4, "11-100", "1-99", "1-99"), (99.99, "11-100", "1-99", "1-99"),
    (100.0, "11-100", "100-299", ">=100"), (100.5, "101-400", "100-299", ">=100"),
    (299.9, "101-400", "100-299", ">=100"), (300.0, "101-400", ">=300", ">=100"),
    (400.0, "101-400", ">=300", ">=100"), (400.01, ">400", ">=300", ">=100")])
def test_risk_category_boundaries(value, standard, cac_drs, acc):
    assert risk_category(value) == standard
    assert risk_category(value, "cac_drs") == cac_drs
    assert risk_category(value, scheme="acc_aha_2018") == acc


def test_risk_category_rounding_and_arrays_and_errors():
    assert risk_category(0.4, round_first=True) == "0"
    assert risk_category(10.4, round_first=True) == "1-10"
    assert risk_category(10.5, round_first=True) == "11-100"
    assert risk_category(np.array([0, 5, 50])).tolist() == ["0", "1-10", "11-100"]
    with pytest.raises(ValueError, match="valid schemes are"):
        risk_category(3.0, scheme="nope")
    with pytest.raises(ValueError, match=">= 0"):
        risk_category(-1.0)
    with pytest.raises(ValueError, match="finite"):
        risk_category(np.nan)


# --- presets and options -------------------------------------------------------------

def test_bad_preset_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown preset 'agatson'.*'standard'"):
        pvcalc.score(lesion_scan(), preset="agatson")
    with pytest.raises(TypeError, match="preset must be"):
        pvcalc.score(lesion_scan(), preset=3)


def test_unknown_or_invalid_override():
    with pytest.raises(TypeError, match="unknown scoring option.*'min_area_mm2'"):
        pvcalc.score(lesion_scan(), min_area=0.5)
    with pytest.raises(ValueError, match=r"connectivity must be one of \[4, 8\], got 6"):
        pvcalc.score(lesion_scan(), connectivity=6)
    with pytest.raises(ValueError, match="min_area_mm2 must be >= 0"):
        ScoringPreset(min_area_mm2=-1)
    with pytest.raises(ValueError, match="non-decreasing"):
        ScoringPreset(weight_cutoffs_hu=(300, 200, 400))
    with pytest.raises(TypeError, match="min_voxels must be an integer"):
        ScoringPreset(min_voxels=2.5)
    with pytest.raises(ValueError, match="risk_scheme"):
        pvcalc.score(lesion_scan(), risk_scheme="x")


def test_presets_are_documented_and_distinct():
    fields = {name: p.to_dict() for name, p in PRESETS.items()}
    for name, p in PRESETS.items():
        assert p.name == name and p.source
        if name != "standard":
            diff = {k for k in fields[name] if fields[name][k] != fields["standard"][k]}
            assert diff - {"name", "source"}, name
    res = pvcalc.score(lesion_scan(), preset=PRESETS["standard"], connectivity=4)
    assert res.preset.name == "standard+custom" and res.preset.connectivity == 4


def test_parallel_and_serial_kernels_agree():
    rng = np.random.default_rng(5)
    a = rng.normal(60, 60, (6, 40, 40)).astype(np.float32)
    lab = rng.integers(0, 3, a.shape).astype(np.int32)
    scan = pvcalc.make_scan(a, (1.5, 0.5, 0.5))
    for labels in (None, lab):
        s = pvcalc.score(scan, labels=labels, preset="3d_lesions").lesions
        p = pvcalc.score(scan, labels=labels, preset="3d_lesions", parallel=True).lesions
        assert s.equals(p)


# --- labels --------------------------------------------------------------------------

def test_labels_errors():
    scan = lesion_scan()
    with pytest.raises(ValueError, match="labels have shape"):
        pvcalc.score(scan, labels=np.ones((2, 8, 7), dtype=np.int32))
    shifted = scan.copy(data=np.ones(scan.shape, dtype=np.int32))
    shifted = shifted.assign_coords(x=shifted.x + 0.5)
    with pytest.raises(ValueError, match="different grid: their 'x' coordinate"):
        pvcalc.score(scan, labels=shifted)
    with pytest.raises(ValueError, match="dims"):
        pvcalc.score(scan, labels=shifted.transpose("x", "y", "z"))
    with pytest.raises(TypeError, match="whole numbers"):
        pvcalc.score(scan, labels=np.full(scan.shape, 0.5))
    with pytest.raises(ValueError, match="0 = not scored"):
        pvcalc.score(scan, labels=np.full(scan.shape, -1))
    with pytest.raises(TypeError, match="integer array"):
        pvcalc.score(scan, labels=np.full(scan.shape, "a"))


def test_labels_as_bool_float_and_list_names():
    scan = lesion_scan()
    mask = np.zeros(scan.shape, dtype=bool)
    mask[0, 2:4, 2:3] = True
    res = pvcalc.score(scan, labels=mask, min_area_mm2=0)
    assert res.total.n_lesions == 1 and res.lesions["n_voxels"].tolist() == [2]
    lab = scan.copy(data=mask.astype(np.float64) * 2)
    lab.attrs = {"label_names": ["background", "LM", "LAD"]}
    res = pvcalc.score(scan, labels=lab, min_area_mm2=0)
    assert res.by_label["label_name"].tolist() == ["LM", "LAD"]
    assert res.by_label["n_lesions"].tolist() == [0, 1]


# --- result objects ------------------------------------------------------------------

def test_result_to_dict_is_json_and_repr_is_informative():
    res = pvcalc.score(lesion_scan(450.0), calibration=Calibration(0.8), preset="isotropic_volume")
    d = json.loads(json.dumps(res.to_dict()))
    assert d["total"]["agatston"] == pytest.approx(4.0)
    assert d["total"]["risk_category"] == "1-10"
    assert d["preset"]["name"] == "isotropic_volume"
    assert d["lesions"][0]["weight"] == 4
    assert "volume_iso_mm3" in d["total"]
    r = repr(res)
    assert "isotropic_volume" in r and "Agatston 4.00" in r and "risk '1-10'" in r
    assert "agatston=4.00" in repr(res.total)


def test_lesion_columns_and_units():
    res = pvcalc.score(lesion_scan(), calibration=Calibration(0.8))
    assert list(res.lesions.columns) == [
        "lesion", "lesion_3d", "label", "slice_index", "z_mm", "n_voxels", "area_mm2",
        "peak_hu", "mean_hu", "weight", "agatston", "volume_mm3", "mass_mg",
        "centroid_z_mm", "centroid_y_mm", "centroid_x_mm"]
    row = res.lesions.iloc[0]
    assert (row.centroid_y_mm, row.centroid_x_mm) == pytest.approx((1.25, 1.25))


def test_scan_validation_reaches_the_user():
    with pytest.raises(TypeError, match="xarray.DataArray"):
        pvcalc.score(np.zeros((2, 4, 4)))
    scan = lesion_scan()
    bad = scan.copy(data=np.where(scan.values > 0, np.nan, 0.0).astype(np.float32))
    with pytest.raises(ValueError, match="NaN"):
        pvcalc.score(bad)


def test_no_warning_on_a_plain_call():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        pvcalc.score(lesion_scan())


def test_lesions_3d_view():
    a = np.zeros((3, 10, 10), dtype=np.float32)
    a[0:2, 2:4, 2:4] = 250.0     # one 3D lesion over slices 0-1
    a[1, 2, 4] = 500.0           # touching it in slice 1
    a[2, 7:9, 7:9] = 150.0       # a separate lesion in slice 2
    res = pvcalc.score(pvcalc.make_scan(a, (3.0, 0.5, 0.5)), calibration=Calibration(0.8))
    l3 = res.lesions_3d
    assert l3["n_slices"].tolist() == [2, 1]
    assert l3["n_voxels"].tolist() == [9, 4]
    assert l3["peak_hu"].tolist() == [500.0, 150.0]
    assert l3["agatston"].sum() == pytest.approx(res.total.agatston)
    assert l3["mass_mg"].sum() == pytest.approx(res.total.mass_mg)
    assert len(l3) == res.total.n_lesions_3d
    assert l3.loc[0, "centroid_z_mm"] == pytest.approx((4 * 0.0 + 5 * 3.0) / 9)
    empty = pvcalc.score(pvcalc.make_scan(np.zeros((2, 4, 4)), (3.0, 0.5, 0.5))).lesions_3d
    assert len(empty) == 0 and "agatston" in empty.columns


# --- values that are not numbers, or not plausible -------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"c_ha_mg_cm3_per_hu": True}, TypeError, r"c_ha_mg_cm3_per_hu must be a number, not a bool"),
    ({"c_ha_mg_cm3_per_hu": 0.8, "mass_reference_hu": True}, TypeError,
     r"mass_reference_hu must be a number, not a bool"),
    ({"c_ha_mg_cm3_per_hu": 0.8, "mass_reference_hu": 1e6}, ValueError,
     r"mass_reference_hu must be a background level within -1000 to 100 HU"),
    ({"c_ha_mg_cm3_per_hu": 0.8, "mass_reference_hu": -5000.0}, ValueError,
     r"within -1000 to 100 HU"),
])
def test_calibration_rejects_bools_and_implausible_references(kwargs, error, match):
    with pytest.raises(error, match=match):
        Calibration(**kwargs)


def test_mass_reference_must_stay_below_the_threshold():
    # with a lowered threshold, a reference of 80 HU would give calcium voxels negative mass
    scan = lesion_scan(hu=90.0)
    with pytest.raises(ValueError, match=r"mass_reference_hu = 80 HU is not below the calcium "
                                         r"threshold 50 HU"):
        pvcalc.score(scan, calibration=Calibration(0.8, mass_reference_hu=80.0),
                     threshold_hu=50.0)


def test_score_rejects_huge_float64_values_and_bool_scans_like_make_scan():
    import xarray as xr

    coords = {d: np.arange(4.0) * 0.5 for d in ("z", "y", "x")}
    attrs = {"kvp": 120.0, "slice_thickness_mm": 0.5}
    huge = xr.DataArray(np.full((4, 4, 4), 1e300), dims=("z", "y", "x"), coords=coords,
                        attrs=attrs)
    with pytest.raises(ValueError, match=r"outside -32768 to 65535 HU"):
        pvcalc.score(huge, calibration=Calibration(0.8))
    mask = xr.DataArray(np.ones((4, 4, 4), bool), dims=("z", "y", "x"), coords=coords,
                        attrs=attrs)
    with pytest.raises(TypeError, match=r"boolean array; a mask is not a scan"):
        pvcalc.score(mask)
    with pytest.raises(TypeError, match=r"boolean array; a mask is not a scan"):
        pvcalc.make_scan(mask.values, 0.5)


@pytest.mark.parametrize("text", ["-0.8", "0", "nan", "inf", "-inf"])
def test_cli_calibration_must_be_a_positive_finite_number(text, capsys):
    from pvcalc.cli._common import parse_calibration

    with pytest.raises(ValueError, match=rf"--calibration must be a positive, finite c_HA in mg "
                                         rf"HA cm\^-3 HU\^-1.*got '{text}'"):
        parse_calibration(text)
