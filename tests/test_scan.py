"""The scan data model: construction, derived geometry, and the validator's messages."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

import pvcalc
from pvcalc import make_scan, scan_origin_mm, scan_spacing_mm, validate_scan


def test_make_scan_builds_voxel_centre_coordinates():
    scan = make_scan(np.ones((3, 4, 5)), (2.5, 0.5, 0.4), origin_mm=(-10, 1, 2), kvp=100)
    assert scan.dtype == np.float32
    assert scan.dims == ("z", "y", "x")
    np.testing.assert_allclose(scan.z, [-10, -7.5, -5])
    np.testing.assert_allclose(scan.x, 2 + 0.4 * np.arange(5))
    assert scan.attrs["units"] == "HU"
    assert scan.attrs["kvp"] == 100.0
    assert scan.attrs["slice_thickness_mm"] == 2.5  # contiguous by default


@given(spacing=st.tuples(*[st.floats(0.1, 10) for _ in range(3)]),
       origin=st.tuples(*[st.floats(-500, 500) for _ in range(3)]))
def test_spacing_and_origin_are_derived_back_from_coordinates(spacing, origin):
    scan = make_scan(np.zeros((3, 2, 4)), spacing, origin_mm=origin)
    np.testing.assert_allclose(scan_spacing_mm(scan), spacing, rtol=1e-9)
    np.testing.assert_allclose(scan_origin_mm(scan), origin, rtol=1e-12, atol=1e-9)


def test_scalar_spacing_means_isotropic():
    assert scan_spacing_mm(make_scan(np.zeros((2, 2, 2)), 0.7)) == pytest.approx((0.7,) * 3)


def test_single_slice_takes_z_spacing_from_thickness():
    scan = make_scan(np.zeros((1, 4, 4)), (3.0, 0.5, 0.5))
    assert scan_spacing_mm(scan)[0] == 3.0


@pytest.mark.parametrize("array, match", [
    (np.zeros((4, 4)), "must be 3D"),
    (np.array([[["a"]]]), "must be numeric"),
])
def test_make_scan_rejects_bad_arrays(array, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make_scan(array, 1.0)


@pytest.mark.parametrize("spacing, match", [
    ((0, 1, 1), "spacing_mm must be positive"),
    ((-1, 1, 1), "spacing_mm must be positive"),
    ((1, 1), "3 numbers"),
    ((np.nan, 1, 1), "finite"),
])
def test_make_scan_rejects_bad_spacing(spacing, match):
    with pytest.raises(ValueError, match=match):
        make_scan(np.zeros((2, 2, 2)), spacing)


def test_make_scan_rejects_bad_thickness_and_kvp():
    with pytest.raises(ValueError, match="slice_thickness_mm must be a positive"):
        make_scan(np.zeros((2, 2, 2)), 1.0, slice_thickness_mm=0)
    with pytest.raises(ValueError, match="kvp must be a positive"):
        make_scan(np.zeros((2, 2, 2)), 1.0, kvp=-120)


def test_validator_rejects_nan_with_count_and_fix():
    data = np.zeros((2, 2, 2))
    data[0, 0, 0] = np.nan
    data[1, 1, 1] = np.inf
    with pytest.raises(ValueError, match=r"2 NaN or infinite voxel\(s\).*fillna"):
        make_scan(data, 1.0)


def test_validator_rejects_wrong_dims_and_types():
    scan = make_scan(np.zeros((2, 3, 4)), 1.0)
    with pytest.raises(ValueError, match=r"must have dims \('z', 'y', 'x'\).*transpose"):
        validate_scan(scan.transpose("x", "y", "z"))
    with pytest.raises(TypeError, match="must be an xarray.DataArray.*make_scan"):
        validate_scan(np.zeros((2, 3, 4)))


def test_validator_rejects_non_uniform_and_non_monotonic_coordinates():
    scan = make_scan(np.zeros((4, 2, 2)), 1.0)
    gapped = scan.assign_coords(z=[0.0, 1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="not uniformly spaced.*resample"):
        validate_scan(gapped)
    reversed_z = scan.assign_coords(z=[3.0, 2.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="must increase strictly.*sortby"):
        validate_scan(reversed_z)
    duplicated = scan.assign_coords(z=[0.0, 1.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="zero or negative spacing"):
        validate_scan(duplicated)


def test_validator_requires_protocol_attributes():
    scan = make_scan(np.zeros((2, 2, 2)), 1.0)
    del scan.attrs["kvp"]
    with pytest.raises(ValueError, match="lacks the attribute 'kvp'"):
        validate_scan(scan)


def test_validator_requires_coordinates():
    bare = xr.DataArray(np.zeros((2, 2, 2), np.float32), dims=("z", "y", "x"),
                        attrs={"kvp": 120, "slice_thickness_mm": 3})
    with pytest.raises(ValueError, match="has no 'z' coordinate"):
        validate_scan(bare)


def test_public_names_are_exported():
    for name in ("make_scan", "validate_scan", "scan_spacing_mm"):
        assert callable(getattr(pvcalc, name))


def test_single_voxel_axes_keep_their_spacing():
    scan = make_scan(np.zeros((1, 1, 3)), (2.0, 0.6, 0.5))
    assert scan_spacing_mm(scan) == pytest.approx((2.0, 0.6, 0.5))


def test_huge_finite_values_are_out_of_range_not_mistaken_for_infinity():
    # their sum overflows float32: the message must name the range, not NaN or inf
    with pytest.raises(ValueError, match=r"scan holds HU from 3e\+38 to 3e\+38 \(8 voxel\(s\) "
                                         r"outside -32768 to 65535 HU"):
        make_scan(np.full((2, 2, 2), 3e38, np.float32), 1.0)


@pytest.mark.parametrize("array, error, match", [
    (np.zeros((2, 2, 2), dtype=bool), TypeError, r"got a boolean array; a mask is not a scan"),
    (np.zeros((2, 2, 2), dtype=complex), TypeError, r"complex dtype complex128.*array\.real"),
    (np.full((2, 2, 2), 1e300), ValueError, (r"HU from 1e\+300 to 1e\+300 .*outside -32768 "
                                             r"to 65535 HU")),
    (np.full((2, 2, 2), -40000.0), ValueError, r"outside -32768 to 65535 HU"),
])
def test_make_scan_rejects_values_that_are_not_hu(array, error, match):
    with pytest.raises(error, match=match):
        make_scan(array, 1.0)


def test_the_hu_limits_themselves_are_accepted():
    data = np.zeros((2, 2, 2))
    data[0, 0, 0], data[1, 1, 1] = -32768.0, 65535.0
    scan = make_scan(data, 1.0)
    assert float(scan.min()) == -32768.0 and float(scan.max()) == 65535.0


@pytest.mark.parametrize("values", [np.zeros((2, 2, 2), bool), np.zeros((2, 2, 2), complex),
                                    np.full((2, 2, 2), 1e300)])
def test_validator_rejects_the_same_values_as_make_scan(values):
    bare = xr.DataArray(values, dims=("z", "y", "x"),
                        coords={d: np.arange(2.0) for d in ("z", "y", "x")},
                        attrs={"kvp": 120.0, "slice_thickness_mm": 1.0})
    with pytest.raises((TypeError, ValueError), match=r"boolean|complex|outside -32768"):
        validate_scan(bare)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"spacing_mm": "3"}, TypeError, (r"spacing_mm must be a number or 3 numbers.*strings "
                                      r"and booleans are not numbers")),
    ({"spacing_mm": True}, TypeError, r"spacing_mm must be a number"),
    ({"spacing_mm": (1.0, True, 1.0)}, TypeError, r"spacing_mm must be a number"),
    ({"origin_mm": ("0", 0, 0)}, TypeError, r"origin_mm must be a number"),
    ({"slice_thickness_mm": "3"}, TypeError, (r"slice_thickness_mm must be a number in mm, "
                                              r"got str '3'")),
    ({"kvp": True}, TypeError, r"kvp must be a number in kV, got bool True"),
    ({"kvp": 1e6}, ValueError, r"kvp must be a tube voltage within 40-150 kV"),
    ({"kvp": 20.0}, ValueError, r"within 40-150 kV"),
])
def test_make_scan_rejects_bools_strings_and_implausible_kvp(kwargs, error, match):
    args = {"spacing_mm": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        make_scan(np.zeros((2, 2, 2)), args.pop("spacing_mm"), **args)


def test_validator_checks_the_kvp_range_of_attrs():
    scan = make_scan(np.zeros((2, 2, 2)), 1.0)
    scan.attrs["kvp"] = 1e6
    with pytest.raises(ValueError, match=r"scan.attrs\['kvp'\] must be a tube voltage within"):
        validate_scan(scan)
    scan.attrs["kvp"] = 150  # the upper end itself is a valid tube voltage
    assert validate_scan(scan) is scan
