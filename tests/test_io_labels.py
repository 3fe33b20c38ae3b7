"""Label images on a scan's grid: inputs, names and grid / value errors."""

import nibabel as nib
import numpy as np
import pytest
import xarray as xr

import pvcalc
from pvcalc.io import CORONARY_LABEL_NAMES, ScanFileError, read_labels, write_scan


@pytest.fixture
def scan():
    return pvcalc.make_scan(np.zeros((4, 16, 16)), (3.0, 0.5, 0.5), origin_mm=(-6.0, 10.0, -4.0))


@pytest.fixture
def lab():
    lab = np.zeros((4, 16, 16), dtype=np.int64)
    lab[1, 2:5, 2:5] = 1
    lab[2, 8:10, 3:7] = 3
    lab[3, 10:12, 10:12] = 7
    return lab


def _same_grid(labels, scan):
    for d in ("z", "y", "x"):
        np.testing.assert_array_equal(labels[d].values, scan[d].values)


def test_array_input_and_default_coronary_names(scan, lab):
    labels = read_labels(lab, like=scan)
    assert labels.dtype == np.int32 and labels.dims == ("z", "y", "x")
    np.testing.assert_array_equal(labels.values, lab)
    _same_grid(labels, scan)
    assert labels.attrs["label_names"] == {1: "LM", 2: "LAD", 3: "LCX", 4: "RCA", 7: "label_7"}
    assert CORONARY_LABEL_NAMES == {1: "LM", 2: "LAD", 3: "LCX", 4: "RCA"}


def test_custom_names(scan, lab):
    labels = read_labels(lab, like=scan, names={1: "lesion", 3: "other", 7: "rod"})
    assert labels.attrs["label_names"] == {1: "lesion", 3: "other", 7: "rod"}


@pytest.mark.parametrize("names,exc,msg", [
    ([1, 2], TypeError, r"names must be a dict mapping label integers to names"),
    ({0: "bg"}, ValueError, r"names keys must be positive label integers, got 0"),
    ({1: 5}, TypeError, r"names values must be str, got 5 for label 1"),
])
def test_bad_names(scan, lab, names, exc, msg):
    with pytest.raises(exc, match=msg):
        read_labels(lab, like=scan, names=names)


def test_bool_mask_and_integral_floats_are_accepted(scan, lab):
    np.testing.assert_array_equal(read_labels(lab > 0, like=scan).values, (lab > 0))
    np.testing.assert_array_equal(read_labels(lab.astype(np.float32), like=scan).values, lab)


def test_dataarray_on_the_same_grid(scan, lab):
    da = xr.DataArray(lab, dims=("z", "y", "x"), coords={d: scan[d].values for d in "zyx"})
    np.testing.assert_array_equal(read_labels(da, like=scan).values, lab)


def test_dataarray_on_a_shifted_grid_is_an_error(scan, lab):
    da = xr.DataArray(lab, dims=("z", "y", "x"),
                      coords={"z": scan.z.values, "y": scan.y.values + 0.5, "x": scan.x.values})
    with pytest.raises(ValueError, match=r"labels: label grid differs from the scan: y "
                                         r"coordinates 10\.5 to 18 mm vs scan 10 to 17\.5 mm "
                                         r"\(off by up to 0\.5 mm\); resample the labels"):
        read_labels(da, like=scan)


def test_shape_mismatch_is_an_error(scan, lab):
    with pytest.raises(ValueError, match=r"label grid differs from the scan: shape \(4, 16, 15\) "
                                         r"\(z, y, x\) vs scan \(4, 16, 16\)"):
        read_labels(lab[:, :, :15], like=scan)


def test_non_integer_negative_nan_and_wrong_type_are_errors(scan, lab):
    with pytest.raises(ValueError, match=r"label values must be integers, found 1 non-integer "
                                         r"value\(s\) such as 2\.5.*nearest-neighbour"):
        bad = lab.astype(float)
        bad[0, 0, 0] = 2.5
        read_labels(bad, like=scan)
    with pytest.raises(ValueError, match=r"label values must be non-negative, found minimum -1"):
        bad = lab.copy()
        bad[0, 0, 0] = -1
        read_labels(bad, like=scan)
    with pytest.raises(ValueError, match=r"label image contains NaN"):
        bad = lab.astype(float)
        bad[0, 0, 0] = np.nan
        read_labels(bad, like=scan)
    with pytest.raises(ValueError, match=r"label values must be integers, got dtype <U1"):
        read_labels(np.full((4, 16, 16), "a"), like=scan)
    with pytest.raises(ValueError, match=r"label image must be 3D \(z, y, x\), got shape \(16, 16\)"):
        read_labels(lab[0], like=scan)
    with pytest.raises(TypeError, match=r"like must be an xarray\.DataArray"):
        read_labels(lab, like=lab)


def test_nifti_label_file_from_write_scan(tmp_path, scan, lab):
    write_scan(pvcalc.make_scan(lab, (3.0, 0.5, 0.5), origin_mm=(-6.0, 10.0, -4.0)),
               tmp_path / "labels.nii.gz")
    labels = read_labels(tmp_path / "labels.nii.gz", like=scan)
    np.testing.assert_array_equal(labels.values, lab)
    _same_grid(labels, scan)
    assert labels.attrs["source_path"] == str(tmp_path / "labels.nii.gz")


def test_foreign_nifti_labels_on_the_scan_grid(tmp_path, scan, lab):
    """Labels saved by another tool next to a NIfTI scan, same affine, int16."""
    write_scan(scan, tmp_path / "scan.nii.gz")
    affine = nib.load(tmp_path / "scan.nii.gz").affine
    nib.save(nib.Nifti1Image(lab.transpose(2, 1, 0).astype(np.int16), affine),
             tmp_path / "seg.nii.gz")
    labels = read_labels(tmp_path / "seg.nii.gz", like=pvcalc.read_scan(tmp_path / "scan.nii.gz"))
    np.testing.assert_array_equal(labels.values, lab)


def test_dicom_label_series(tmp_path, scan, lab):
    write_scan(pvcalc.make_scan(lab, (3.0, 0.5, 0.5), origin_mm=(-6.0, 10.0, -4.0)),
               tmp_path / "seg")
    np.testing.assert_array_equal(read_labels(tmp_path / "seg", like=scan).values, lab)


def test_npy_file(tmp_path, scan, lab):
    np.save(tmp_path / "l.npy", lab)
    np.testing.assert_array_equal(read_labels(tmp_path / "l.npy", like=scan).values, lab)
    (tmp_path / "bad.npy").write_bytes(b"nope")
    with pytest.raises(ScanFileError, match=r"bad\.npy: cannot be read as a numpy \.npy array"):
        read_labels(tmp_path / "bad.npy", like=scan)


def test_file_on_another_grid_is_a_scan_file_error(tmp_path, scan, lab):
    write_scan(pvcalc.make_scan(lab, (3.0, 0.5, 0.5), origin_mm=(-3.0, 10.0, -4.0)),
               tmp_path / "l.nii")
    with pytest.raises(ScanFileError, match=r"l\.nii: label grid differs from the scan: z "
                                            r"coordinates -3 to 6 mm vs scan -6 to 3 mm"):
        read_labels(tmp_path / "l.nii", like=scan)
    write_scan(pvcalc.make_scan(lab[:3], (3.0, 0.5, 0.5)), tmp_path / "short.nii")
    with pytest.raises(ScanFileError, match=r"shape \(3, 16, 16\) \(z, y, x\) vs scan"):
        read_labels(tmp_path / "short.nii", like=scan)


def test_non_integer_file_is_a_scan_file_error(tmp_path, scan):
    write_scan(pvcalc.make_scan(np.full((4, 16, 16), 0.5), (3.0, 0.5, 0.5),
                                origin_mm=(-6.0, 10.0, -4.0)), tmp_path / "p.nii")
    with pytest.raises(ScanFileError, match=r"p\.nii: label values must be integers"):
        read_labels(tmp_path / "p.nii", like=scan)


def test_missing_label_file(tmp_path, scan):
    with pytest.raises(FileNotFoundError, match=r"nope\.nii\.gz: no such file or folder"):
        read_labels(tmp_path / "nope.nii.gz", like=scan)


def test_label_names_round_trip_through_the_nifti_sidecar(tmp_path):
    import pvcalc

    scan = pvcalc.make_scan(np.zeros((2, 4, 4)), (3.0, 0.5, 0.5))
    image = scan.copy(data=np.zeros((2, 4, 4), np.float32))
    image[0, 1, 1] = 1
    image[1, 2, 2] = 7
    image.attrs["label_names"] = {"1": "large_hd", "7": "small_ld"}
    pvcalc.write_scan(image, tmp_path / "labels.nii.gz")
    labels = pvcalc.read_labels(tmp_path / "labels.nii.gz", like=scan)
    assert labels.attrs["label_names"] == {1: "large_hd", 7: "small_ld"}
    # names given by the caller win over the sidecar
    named = pvcalc.read_labels(tmp_path / "labels.nii.gz", like=scan, names={1: "a", 7: "b"})
    assert named.attrs["label_names"] == {1: "a", 7: "b"}
