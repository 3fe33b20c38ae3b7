"""NIfTI input and output: round trips, the RAS -> LPS mapping and errors."""

import json

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pvcalc
from pvcalc.io import ScanFileError, read_scan, write_scan


def _scan(shape=(4, 16, 16), spacing=(2.5, 0.48828125, 0.7), origin=(-10.3, -120.1, 33.3),
          seed=0, **attrs):
    values = np.random.default_rng(seed).normal(40.0, 300.0, shape)
    return pvcalc.make_scan(values, spacing, origin_mm=origin, **attrs)


def _coord_error(a, b):
    return max(float(np.max(np.abs(a[d].values - b[d].values))) for d in ("z", "y", "x"))


@pytest.mark.parametrize("name", ["scan.nii", "scan.nii.gz"])
def test_round_trip_is_exact_with_sidecar(tmp_path, name):
    scan = _scan(kvp=80.0, slice_thickness_mm=3.0, kernel="Qr36", series_uid="1.2.3")
    write_scan(scan, tmp_path / name)
    side = json.loads((tmp_path / "scan.json").read_text())
    assert side["attrs"]["kvp"] == 80.0
    back = read_scan(tmp_path / name)
    np.testing.assert_array_equal(back.values, scan.values)
    assert _coord_error(back, scan) == 0.0
    assert back.attrs["kvp"] == 80.0 and back.attrs["slice_thickness_mm"] == 3.0
    assert back.attrs["kernel"] == "Qr36" and back.attrs["series_uid"] == "1.2.3"
    assert back.attrs["source_path"] == str(tmp_path / name)


def test_without_sidecar_coords_come_from_the_float32_affine(tmp_path):
    scan = _scan()
    write_scan(scan, tmp_path / "scan.nii.gz")
    (tmp_path / "scan.json").unlink()
    back = read_scan(tmp_path / "scan.nii.gz")
    np.testing.assert_array_equal(back.values, scan.values)
    assert _coord_error(back, scan) < 1e-4  # NIfTI-1 stores the affine as float32
    assert back.attrs["kvp"] == 120.0 and back.attrs["kvp_source"] == "default"
    assert back.attrs["slice_thickness_mm"] == 2.5
    assert back.attrs["slice_thickness_source"] == "increment"


def test_written_affine_is_lps_storage_in_ras_world(tmp_path):
    scan = _scan(shape=(2, 3, 4), spacing=(2.0, 0.5, 0.25), origin=(10.0, 20.0, 30.0))
    write_scan(scan, tmp_path / "s.nii")
    img = nib.load(tmp_path / "s.nii")
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    assert img.shape == (4, 3, 2) and img.get_data_dtype() == np.float32
    # voxel (i, j, k) = (x, y, z) index lies at RAS (-x, -y, z)
    ras = img.affine @ np.array([3, 2, 1, 1.0])
    np.testing.assert_allclose(ras[:3], [-(30 + 3 * 0.25), -(20 + 2 * 0.5), 10 + 2.0])
    assert img.get_fdata()[3, 2, 1] == pytest.approx(float(scan.values[1, 2, 3]))


@pytest.mark.parametrize("perm,flips", [
    ((0, 1, 2), (False, False, False)),   # RAS storage
    ((0, 1, 2), (True, True, False)),     # LPS storage
    ((2, 1, 0), (False, True, True)),     # axes stored as (z, y, x), some flipped
    ((1, 0, 2), (True, False, False)),    # x and y swapped
])
def test_foreign_affines_are_mapped_by_world_position(tmp_path, perm, flips):
    """A NIfTI from another tool: every voxel of the result must sit at the
    LPS position of the file voxel it came from (checked voxel by voxel)."""
    rng = np.random.default_rng(5)
    ras_shape = (5, 4, 3)
    sizes = np.array([0.6, 0.8, 2.0])
    start = np.array([-40.0, 12.0, -7.0])
    # build the file's affine: file axis a runs along RAS axis perm[a], possibly flipped
    affine = np.zeros((4, 4))
    affine[3, 3] = 1
    shape = tuple(ras_shape[p] for p in perm)
    for a, p in enumerate(perm):
        affine[p, a] = -sizes[p] if flips[a] else sizes[p]
    affine[:3, 3] = start
    data = np.round(rng.uniform(-100, 100, shape))
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "f.nii.gz")
    scan = read_scan(tmp_path / "f.nii.gz")
    inv = np.linalg.inv(affine)
    for (k, j, i), value in np.ndenumerate(scan.values):
        lps = np.array([scan.x[i], scan.y[j], scan.z[k]], dtype=float)
        ras = np.array([-lps[0], -lps[1], lps[2], 1.0])
        idx = np.rint(inv @ ras)[:3].astype(int)
        assert value == data[tuple(idx)]
    for d, size in zip("zyx", (sizes[2], sizes[1], sizes[0])):
        steps = np.diff(scan[d].values)
        np.testing.assert_allclose(steps, size, rtol=1e-6)


def test_dicom_and_nifti_give_the_same_scan(tmp_path):
    scan = pvcalc.make_scan(np.round(_scan().values), (2.5, 0.5, 0.7), origin_mm=(1, -2, 3))
    write_scan(scan, tmp_path / "dcm")
    write_scan(scan, tmp_path / "n.nii.gz")
    a, b = read_scan(tmp_path / "dcm"), read_scan(tmp_path / "n.nii.gz")
    np.testing.assert_array_equal(a.values, b.values)
    assert _coord_error(a, b) < 1e-9


def test_oblique_affine_is_an_error(tmp_path):
    c, s = np.cos(0.2), np.sin(0.2)
    affine = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.float32), affine), tmp_path / "o.nii")
    with pytest.raises(ScanFileError, match=r"o\.nii: NIfTI affine is oblique.*resample the "
                                            r"image onto an axis-aligned grid"):
        read_scan(tmp_path / "o.nii")


def test_4d_is_an_error_but_singleton_fourth_axis_is_fine(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 2, 2), np.float32), np.eye(4)),
             tmp_path / "t.nii")
    with pytest.raises(ScanFileError, match=r"NIfTI image has shape \(3, 3, 2, 2\), not 3D"):
        read_scan(tmp_path / "t.nii")
    nib.save(nib.Nifti1Image(np.ones((3, 3, 2, 1), np.float32), np.eye(4)),
             tmp_path / "s.nii")
    assert read_scan(tmp_path / "s.nii").shape == (2, 3, 3)


def test_nan_voxels_are_an_error_naming_the_file(tmp_path):
    data = np.zeros((3, 3, 2), np.float32)
    data[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii")
    with pytest.raises(ScanFileError, match=r"nan\.nii: scan contains 1 NaN or infinite"):
        read_scan(tmp_path / "nan.nii")


def test_damaged_file_and_sidecar_are_errors(tmp_path):
    (tmp_path / "bad.nii.gz").write_bytes(b"definitely not gzip")
    with pytest.raises(ScanFileError, match=r"bad\.nii\.gz: cannot be read as NIfTI"):
        read_scan(tmp_path / "bad.nii.gz")
    write_scan(_scan(shape=(2, 3, 3)), tmp_path / "ok.nii")
    (tmp_path / "ok.json").write_text("{not json")
    with pytest.raises(ScanFileError, match=r"ok\.json: JSON sidecar cannot be read"):
        read_scan(tmp_path / "ok.nii")


def test_meters_are_converted_to_mm(tmp_path):
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.diag([0.001, 0.001, 0.003, 1]))
    img.header.set_xyzt_units("meter")
    nib.save(img, tmp_path / "m.nii")
    assert pvcalc.scan_spacing_mm(read_scan(tmp_path / "m.nii")) == pytest.approx((3, 1, 1))


def test_write_errors(tmp_path):
    scan = _scan(shape=(2, 3, 3))
    write_scan(scan, tmp_path / "a.nii")
    with pytest.raises(FileExistsError, match=r"a\.nii: file exists; pass overwrite=True"):
        write_scan(scan, tmp_path / "a.nii")
    write_scan(scan, tmp_path / "a.nii", overwrite=True)
    with pytest.raises(ValueError, match=r"format='nifti' needs a path ending in \.nii"):
        write_scan(scan, tmp_path / "folder", format="nifti")
    with pytest.raises(ValueError, match=r"format='dicom' writes a folder"):
        write_scan(scan, tmp_path / "b.nii", format="dicom")
    with pytest.raises(ValueError, match=r"uid_seed, rescale_slope and study_datetime apply to DICOM"):
        write_scan(scan, tmp_path / "c.nii", rescale_slope=1.0)
    with pytest.raises(ValueError, match=r"series_uid applies to DICOM folders only"):
        read_scan(tmp_path / "a.nii", series_uid="1.2")


@settings(max_examples=8)
@given(shape=st.tuples(st.integers(1, 4), st.integers(2, 5), st.integers(2, 5)),
       spacing=st.tuples(*[st.floats(0.1, 5.0) for _ in range(3)]),
       origin=st.tuples(*[st.floats(-500, 500) for _ in range(3)]),
       seed=st.integers(0, 1000), gz=st.booleans())
def test_property_nifti_round_trip(tmp_path_factory, shape, spacing, origin, seed, gz):
    scan = _scan(shape=shape, spacing=spacing, origin=origin, seed=seed)
    path = tmp_path_factory.mktemp("n") / ("s.nii.gz" if gz else "s.nii")
    write_scan(scan, path)
    back = read_scan(path)
    np.testing.assert_array_equal(back.values, scan.values)
    # the grid is rebuilt as origin + k * spacing, with spacing derived from the
    # coordinates, so only the last few bits can change
    assert _coord_error(back, scan) < 1e-9
    assert pvcalc.scan_spacing_mm(back) == pytest.approx(pvcalc.scan_spacing_mm(scan), rel=1e-12)
