"""phantoms.truth: the schema, validate_truth, lesion_table, fraction_map / fraction_box,
netCDF round trip."""

import math
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings

from phantoms import (
    CardiacMotion,
    ConstantVelocity,
    Cylinder,
    Lesion,
    Phantom,
    Sphere,
    ThoraxBody,
    fraction_box,
    fraction_boxes,
    fraction_map,
    get_protocol,
    lesion_table,
    simulate,
    simulate_patches,
    simulate_repeat,
    validate_truth,
)
from phantoms import strategies as pst
from phantoms import truth as truth_module

ROOT = Path(__file__).resolve().parents[1]
GATED = get_protocol("calcium_scoring", matrix=96)
HELICAL = get_protocol("low_dose_chest", matrix=96)
R_SPHERE, R_CYL, L_CYL = 1.5, 1.2, 2.4


def _phantom():
    return Phantom(ThoraxBody(), [
        Lesion(Sphere((0.5, 1.0, -4.0), R_SPHERE), 400.0, name="sphere"),
        Lesion(Cylinder((-1.0, -3.0, 4.0), R_CYL, L_CYL), 800.0,
               CardiacMotion((0.0, 0.6, 0.8), 40.0), name="cyl"),
        Lesion(Sphere((1.0, 6.0, 2.0), 1.0), 200.0, ConstantVelocity((0.0, 5.0, 10.0))),
    ], z_extent_mm=(-9.0, 9.0), name="truth-test")


ANALYTIC = [4 / 3 * math.pi * R_SPHERE ** 3, math.pi * R_CYL ** 2 * L_CYL,
            4 / 3 * math.pi * 1.0 ** 3]


@pytest.fixture(scope="module")
def full():
    return simulate(_phantom(), GATED, seed=4, noise=False)


def _voxel_mm3(scan):
    return float(scan.attrs["increment_mm"]) * float(np.diff(scan.y[:2])[0]) * \
        float(np.diff(scan.x[:2])[0])


# -- every simulated truth is valid ----------------------------------------------------
@pytest.mark.parametrize("protocol", [GATED, HELICAL], ids=["gated", "helical"])
@pytest.mark.parametrize("maps", [True, False], ids=["maps", "no-maps"])
def test_every_simulated_truth_is_valid(protocol, maps):
    ph = _phantom()
    truths = [simulate(ph, protocol, seed=1, fraction_maps=maps)[1],
              simulate_patches(ph, protocol, seed=1, fraction_maps=maps)[1],
              simulate_repeat(ph, protocol, seed=1, index=2, fraction_maps=maps)[1]]
    empty = Phantom(ThoraxBody(), [], z_extent_mm=(-6.0, 6.0))
    truths.append(simulate(empty, protocol, seed=0, fraction_maps=maps)[1])
    for truth in truths:
        validate_truth(truth)
        assert truth.attrs["schema_version"] == truth_module.SCHEMA_VERSION
        assert ("fraction" in truth) == maps
        assert len(truth.dims) == (3 if maps else 2)      # never one dim per lesion
    assert truths[-1].sizes["lesion"] == 0 and len(lesion_table(truths[-1])) == 0


@settings(max_examples=10, database=None)
@given(pst.scans(mode="full", noise=False, motion=True))
def test_drawn_full_scans_have_valid_truth(pair):
    scan, truth = pair
    validate_truth(truth)
    vox = _voxel_mm3(scan)
    for i in range(truth.sizes["lesion"]):
        f = fraction_map(truth, i, scan)
        assert float(f.sum(dtype=np.float64)) * vox == pytest.approx(
            float(truth.fraction_volume_mm3[i]), rel=1e-12)


# -- fraction maps ---------------------------------------------------------------------
def test_fraction_map_sums_to_the_rendered_and_the_analytic_volume(full):
    scan, truth = full
    vox = _voxel_mm3(scan)
    for i in range(3):
        f = fraction_map(truth, i, scan)
        assert f.dims == scan.dims and f.dtype == np.float32
        for d in scan.dims:
            np.testing.assert_array_equal(f[d].values, scan[d].values)
        assert 0.0 <= float(f.min()) and float(f.max()) <= 1.0 + 1e-6
        rendered = float(f.sum(dtype=np.float64)) * vox
        # the stored rendered volume is exactly these fractions x voxel volume
        assert rendered == pytest.approx(float(truth.fraction_volume_mm3[i]), rel=1e-12)
        # gated scan: the moving lesions still sum to their analytic volume
        assert rendered == pytest.approx(ANALYTIC[i], rel=5e-3)
    # by name as by index
    np.testing.assert_array_equal(fraction_map(truth, "cyl", scan), fraction_map(truth, 1, scan))
    assert fraction_map(truth, "cyl", scan).attrs["lesion"] == "cyl"


def test_fraction_map_on_patches_and_cut_outs_is_the_full_map_cut_out(full):
    scan, truth = full
    patches, ptruth = simulate_patches(_phantom(), GATED, seed=4, noise=False)
    for p in patches:
        for i in range(3):
            whole = fraction_map(truth, i, scan).sel(z=p.z, y=p.y, x=p.x)
            np.testing.assert_array_equal(fraction_map(ptruth, i, p).values, whole.values)
    cut = scan.isel(z=slice(2, 4), y=slice(40, 55), x=slice(30, 60))
    np.testing.assert_array_equal(fraction_map(truth, 0, cut).values,
                                  fraction_map(truth, 0, scan).values[2:4, 40:55, 30:60])


def test_fraction_box_is_the_non_zero_block_of_the_fraction_map(full):
    scan, truth = full
    cuts = [scan, scan.isel(z=slice(2, 4), y=slice(40, 55), x=slice(30, 60)),
            scan.isel(x=slice(0, 10))]           # the last one misses every lesion
    for cut in cuts:
        for i in range(3):
            whole = fraction_map(truth, i, cut).values
            index, box = fraction_box(truth, i, cut)
            assert box.dtype == np.float32 and box.shape == cut.values[index].shape
            np.testing.assert_array_equal(whole[index], box)
            rest = whole.copy()
            rest[index] = 0
            assert not rest.any()
        # all lesions at once: each the non-zero block of its own fraction map
        boxes = fraction_boxes(truth, cut)
        assert len(boxes) == 3
        for i, (index, box) in enumerate(boxes):
            whole = fraction_map(truth, i, cut).values
            np.testing.assert_array_equal(whole[index], box)
            rest = whole.copy()
            rest[index] = 0
            assert not rest.any()
    # a copy: changing it leaves the truth alone
    index, box = fraction_box(truth, 0, scan)
    box[...] = 7.0
    assert float(fraction_box(truth, 0, scan)[1].max()) <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="lesion index must be in 0-2"):
        fraction_box(truth, 5, scan)


@pytest.mark.parametrize("change", ["half_pixel", "pixel", "every_other", "flipped"])
def test_fraction_map_refuses_a_scan_off_the_truth_grid(full, change):
    scan, truth = full
    if change == "half_pixel":
        other = scan.assign_coords(x=scan.x + 0.5 * GATED.pixel_mm)
    elif change == "pixel":
        other = simulate(_phantom(), GATED.replace(pixel_mm=0.4), seed=4, noise=False)[0]
    elif change == "every_other":
        other = scan.isel(y=slice(None, None, 2))
    else:
        other = scan.isel(z=slice(None, None, -1))
    axis = {"half_pixel": "x", "pixel": "y", "every_other": "y", "flipped": "z"}[change]
    with pytest.raises(ValueError, match=f"scan's {axis} coordinates do not lie on the "
                                         "truth's grid"):
        fraction_map(truth, 0, other)


def test_fraction_map_errors(full):
    scan, truth = full
    with pytest.raises(ValueError, match=r"lesion 'nope' is not in the truth; its lesions are"):
        fraction_map(truth, "nope", scan)
    with pytest.raises(ValueError, match=r"lesion index must be in 0-2 \(the truth has 3"):
        fraction_map(truth, 3, scan)
    with pytest.raises(TypeError, match="lesion must be a lesion name"):
        fraction_map(truth, True, scan)
    with pytest.raises(TypeError, match="scan must be an xarray.DataArray with dims"):
        fraction_map(truth, 0, scan.values)
    twins = truth.assign(name=("lesion", np.array(["a", "a", "b"])))
    with pytest.raises(ValueError, match=r"'a' is shared by lesions \[0, 1\]"):
        fraction_map(twins, "a", scan)
    _, no_maps = simulate(_phantom(), GATED, seed=4, noise=False, fraction_maps=False)
    with pytest.raises(ValueError, match="no fraction maps.*fraction_maps=True"):
        fraction_map(no_maps, 0, scan)


# -- lesion table ------------------------------------------------------------------------
def test_lesion_table_is_the_datasets_per_lesion_variables(full):
    scan, truth = full
    table = lesion_table(truth)
    per_lesion = [v for v in truth.data_vars if truth[v].dims == ("lesion",)]
    assert list(table.columns) == ["lesion", "lesion_index"] + [v for v in per_lesion
                                                                 if v != "name"]
    assert list(table["lesion"]) == ["sphere", "cyl", "lesion_2"]
    assert list(table["lesion_index"]) == [0, 1, 2]
    for v in per_lesion:
        if v != "name":
            np.testing.assert_array_equal(table[v].to_numpy(), truth[v].values)
    # the columns every study row carries
    for column in ("shape", "volume_mm3", "mass_mg", "density_mg_cm3", "hu", "delta_hu",
                   "background_hu", "centre_z_mm", "centre_y_mm", "centre_x_mm", "radius_mm",
                   "length_mm", "motion", "peak_velocity_mm_s", "fraction_volume_mm3"):
        assert column in table
    # the centres are where the phantom put the lesions (no repositioning here)
    np.testing.assert_array_equal(table[["centre_z_mm", "centre_y_mm", "centre_x_mm"]].iloc[0],
                                  (0.5, 1.0, -4.0))


def test_every_lesion_variable_is_documented():
    page = (ROOT / "docs" / "dev" / "truth.md").read_text()
    for name, *_ in truth_module.LESION_VARIABLES:
        assert f"`{name}`" in page, name
    for name in ("grid_origin_mm", "grid_spacing_mm", "grid_shape", "fraction",
                 "fraction_start", "fraction_shape", "fraction_volume_mm3", "schema_version",
                 "fraction_voxel", "grid_axis"):
        assert f"`{name}`" in page, name


def test_repeat_truth_centres_follow_the_repositioning():
    ph = _phantom()
    scan, truth = simulate_repeat(ph, GATED, seed=2, index=1, noise=False)
    table = lesion_table(truth)
    t = np.array([scan.attrs[f"translation_{d}_mm"] for d in "zyx"])
    assert np.linalg.norm(t) > 0
    # the fraction map's centroid sits at the truth centre (static sphere, gated scan)
    f = fraction_map(truth, 0, scan)
    w = f.values.astype(np.float64)
    zz, yy, xx = np.meshgrid(scan.z, scan.y, scan.x, indexing="ij")
    centroid = [(w * c).sum() / w.sum() for c in (zz, yy, xx)]
    np.testing.assert_allclose(centroid[1:], table.loc[0, ["centre_y_mm", "centre_x_mm"]]
                               .to_numpy(dtype=float), atol=0.02)
    # z is sampled by 3 mm slices: the box-profile centroid is exact only to the sampling
    assert abs(centroid[0] - table.loc[0, "centre_z_mm"]) < 0.5


# -- netCDF --------------------------------------------------------------------------------
@pytest.mark.parametrize("read", [xr.open_dataset, xr.load_dataset], ids=["open", "load"])
def test_netcdf_round_trip_gives_a_valid_equal_truth(full, tmp_path, read):
    scan, truth = full
    path = tmp_path / "truth.nc"
    truth.to_netcdf(path)
    back = read(path)
    try:
        validate_truth(back)
        xr.testing.assert_equal(back, truth)
        assert back.attrs == truth.attrs
        assert lesion_table(back).equals(lesion_table(truth))
        for i in range(3):
            np.testing.assert_array_equal(fraction_map(back, i, scan).values,
                                          fraction_map(truth, i, scan).values)
    finally:
        back.close()


# -- validate_truth rejects broken truths -------------------------------------------------
def _broken(truth, how):
    t = truth.copy(deep=True)
    if how == "dataarray":
        return t["volume_mm3"]
    if how == "no_version":
        del t.attrs["schema_version"]
    elif how == "old_layout":
        del t.attrs["schema_version"]
        t["fraction_0"] = (("z_0", "y_0", "x_0"), np.zeros((1, 1, 1)))
    elif how == "version":
        t.attrs["schema_version"] = 99
    elif how == "missing":
        t = t.drop_vars("mass_mg")
    elif how == "dims":
        t["hu"] = ("grid_axis", np.zeros(3))
    elif how == "dtype":
        t["volume_mm3"] = ("lesion", np.array(["big", "small", "tiny"]))
    elif how == "nan":
        t["density_mg_cm3"][1] = np.nan
    elif how == "index":
        t = t.isel(lesion=[2, 0, 1])
    elif how == "axes":
        t = t.assign_coords(grid_axis=["x", "y", "z"])
    elif how == "spacing":
        t["grid_spacing_mm"][0] = 0.0
    elif how == "incomplete":
        t = t.drop_vars("fraction_start")
    elif how == "outside":
        t["fraction_start"][0, 2] = int(t["grid_shape"][2])
    elif how == "count":
        t = t.isel(fraction_voxel=slice(1, None))
    elif how == "range":
        t["fraction"][int(np.argmax(t["fraction"].values))] = 1.5
    elif how == "volume":
        t["fraction_volume_mm3"][0] = t["fraction_volume_mm3"][0] * 1.01
    return t


BROKEN = {
    "dataarray": (TypeError, "expected an xarray.Dataset, got DataArray"),
    "no_version": (ValueError, r"attr 'schema_version' is missing; build truth with"),
    "old_layout": (ValueError, r"attr 'schema_version' is missing \(per-lesion fraction_<i> "
                               r"variables are an older layout\)"),
    "version": (ValueError, r"schema_version is 99, this version of phantoms reads 1"),
    "missing": (ValueError, r"variable 'mass_mg' is missing; build truth with phantoms"),
    "dims": (ValueError, r"variable 'hu' has dims \('grid_axis',\), expected \('lesion',\)"),
    "dtype": (TypeError, r"variable 'volume_mm3' has dtype <U5, expected float"),
    "nan": (ValueError, r"variable 'density_mg_cm3' has non-finite values"),
    "index": (ValueError, r"coordinate 'lesion' must be 0, 1, ..., n - 1.*assign_coords"),
    "axes": (ValueError, r"coordinate 'grid_axis' must be \['z', 'y', 'x'\]"),
    "spacing": (ValueError, r"grid_origin_mm must be finite and grid_spacing_mm finite and "
                            r"> 0, got .* and \[0.0, 0.49, 0.49\]"),
    "incomplete": (ValueError, r"fraction maps are incomplete: \['fraction_start'\] missing"),
    "outside": (ValueError, r"fraction boxes .* must lie inside the grid of shape \[6, 96, 96\]"),
    "count": (ValueError, r"dim 'fraction_voxel' has \d+ values, the fraction boxes hold \d+"),
    "range": (ValueError, r"variable 'fraction' must hold finite fractions in \[0, 1\], got "
                          r"values in \[0, 1.5\]"),
    "volume": (ValueError, r"fraction_volume_mm3 of lesion 0 is .* its fractions x voxel"),
}


@pytest.mark.parametrize("how", list(BROKEN))
def test_validate_truth_rejects_broken_truths_with_a_clear_message(full, how):
    _, truth = full
    error, message = BROKEN[how]
    with pytest.raises(error, match="not a valid phantoms truth Dataset: " + message):
        validate_truth(_broken(truth, how))
    # the readers check the truth first
    with pytest.raises(error, match=re.escape("not a valid phantoms truth Dataset")):
        lesion_table(_broken(truth, how))
