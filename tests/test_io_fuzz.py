"""Fuzzing the DICOM reader: every corrupted series ends in a clear error or the right volume.

Two templates are corrupted: a series written by ``write_scan`` (integer HU
with negative values, slope 1) and a series built from a real CT slice that
pydicom ships (``CT_small.dcm``: a GE scanner slice, 16 bits stored, intercept
-1024, PixelPaddingValue -2000). Each variant copies a template and applies one
seeded corruption: truncation, bit flips in the header or in the pixel data,
special files (FIFO, symbolic links to ``/dev/null`` and ``/dev/zero``,
dangling and looping links), a wrong transfer syntax, a missing tag,
inconsistent spacing, huge dimensions, a bad rescale, a duplicated slice or a
second series. The oracle:

- the reader ends within a time limit (a thread with a timeout; one test runs
  a FIFO in a subprocess);
- it raises :class:`ScanFileError` with a one-line message naming the folder,
  or returns the original volume. A pixel bit flip may change exactly the
  flipped voxels (DICOM has no checksum); a header bit flip that lands in a
  value the reader uses may rescale the slice it is in (a valid RescaleSlope or
  RescaleIntercept read with another digit) or move coordinates by less than
  the reader's tolerances; nothing else may change.

``PVCALC_FUZZ_N=5000 pytest tests/test_io_fuzz.py`` runs a longer campaign.
"""

import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import generate_uid

import pvcalc
from pvcalc.io import ScanFileError, read_scan, write_scan

N_FAST = 300
N_SLOW = int(os.environ.get("PVCALC_FUZZ_N", "0"))
#: Seconds one read may take before it counts as a hang.
TIMEOUT_S = 10.0
PIXEL_DATA = 0x7FE00010

KINDS = ("truncate", "header_flip", "pixel_flip", "special", "transfer_syntax", "missing_tag",
         "spacing", "huge", "rescale", "duplicate", "mixed")
#: Kinds after which reading must fail: each makes the volume wrong or incomplete (so
#: does a truncation before the end of the pixel data).
MUST_FAIL = {"huge", "rescale", "duplicate", "mixed"}
BAD_SLOPES = ("0", "-0", "1e-30", "-1", "1e30", "nan", "inf", "abc")
TRANSFER_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50",
                     "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90",
                     "1.2.3.4")
TAGS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns",
        "RescaleSlope", "RescaleIntercept", "BitsAllocated", "BitsStored", "HighBit",
        "PixelRepresentation", "PhotometricInterpretation", "SamplesPerPixel", "PixelData",
        "SeriesInstanceUID", "Modality", "KVP", "SliceThickness", "InstanceNumber",
        "SOPInstanceUID", "WindowCenter")


# ------------------------------------------------------------------ templates

def _written_template(folder):
    rng = np.random.default_rng(11)
    values = np.round(rng.normal(0.0, 400.0, (6, 12, 12)))
    values[2, 3:6, 3:6] = 600.0
    scan = pvcalc.make_scan(values, (2.5, 0.6, 0.6), origin_mm=(-20.0, -50.5, 30.25))
    write_scan(scan, folder, uid_seed=5)
    return folder


def _real_ct_template(folder):
    """Four slices made from pydicom's real CT slice, 2.5 mm apart."""
    src = pydicom.data.get_testdata_file("CT_small.dcm")
    os.makedirs(folder)
    series = generate_uid(entropy_srcs=["fuzz-series"])
    for k in range(4):
        ds = pydicom.dcmread(src)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["fuzz", str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        x, y, _ = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x:g}", f"{y:g}", f"{2.5 * k:g}"]
        ds.SliceLocation = f"{2.5 * k:g}"
        ds.InstanceNumber = k + 1
        ds.save_as(os.path.join(folder, f"CT{k + 1:04d}.dcm"))
    return folder


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    root = tmp_path_factory.mktemp("templates")
    out = {}
    for name, make in (("written", _written_template), ("real_ct", _real_ct_template)):
        folder = make(str(root / name))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a clean template reads without warnings
            scan = read_scan(folder)
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
        raw = [pydicom.dcmread(f, defer_size=64).get_item(PIXEL_DATA, keep_deferred=True)
               for f in files]
        pix = [(r.value_tell, r.value_tell + r.length) for r in raw]  # pixel bytes [start, end)
        out[name] = (folder, scan, [os.path.basename(f) for f in files], pix)
    return out


# ------------------------------------------------------------------ corruptions

def _flip(path, offsets, rng):
    data = bytearray(Path(path).read_bytes())
    for o in offsets:
        data[o] ^= 1 << int(rng.integers(8))
    Path(path).write_bytes(data)


def _edit(path, **changes):
    ds = pydicom.dcmread(path)
    for key, value in changes.items():
        if value is None:
            if key in ds:
                del ds[key]
        else:
            setattr(ds, key, value)
    ds.save_as(path)


def _set_transfer_syntax(path, uid):
    """Rewrite the file meta with another TransferSyntaxUID, keeping the dataset bytes."""
    data = Path(path).read_bytes()
    meta_end = 144 + int.from_bytes(data[140:144], "little")  # (0002,0000) group length
    meta = pydicom.dcmread(path).file_meta
    meta.TransferSyntaxUID = uid
    buf = DicomBytesIO()
    write_file_meta_info(buf, meta, enforce_standard=True)
    Path(path).write_bytes(data[:132] + buf.getvalue() + data[meta_end:])


def _special(folder, name, rng):
    kinds = ["fifo", "dev_null", "dev_zero", "dangling", "loop"]
    kind = kinds[int(rng.integers(len(kinds)))]
    p = os.path.join(folder, name)
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "dev_null":
        os.symlink("/dev/null", p)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", p)
    elif kind == "dangling":
        os.symlink(os.path.join(folder, "no_such_target.dcm"), p)
    else:
        os.symlink(p, p)
    return kind


def corrupt(template, folder, kind, rng):
    """Copy the template to ``folder`` and apply one corruption of ``kind``.

    Returns a dict describing it: the file touched (index ``k``) and, for pixel
    flips, the flipped voxels.
    """
    src, scan, names, pix = template
    shutil.copytree(src, folder)
    n = len(names)
    k = int(rng.integers(n))
    path = os.path.join(folder, names[k])
    size = os.path.getsize(path)
    start, end = pix[k]
    info = {"kind": kind, "k": k, "voxels": set()}
    if kind == "truncate":
        cut = int(rng.choice([0, 1, 64, 128, 132, 200, start - 1, start, end - 1, size - 1]))
        cut = min(max(cut if rng.random() < 0.7 else int(rng.integers(size)), 0), size - 1)
        with open(path, "r+b") as fh:
            fh.truncate(cut)
        # bytes after the pixel data (trailing elements) are not read: losing them is harmless
        info["must_fail"] = cut < end
    elif kind == "header_flip":
        _flip(path, rng.integers(0, start, size=int(rng.integers(1, 4))), rng)
    elif kind == "pixel_flip":
        offsets = rng.integers(start, end, size=int(rng.integers(1, 4)))
        _flip(path, offsets, rng)
        nx = scan.shape[2]
        for o in offsets:
            i = (int(o) - start) // 2
            info["voxels"].add((i // nx, i % nx))
    elif kind == "special":
        like = rng.random() < 0.5
        name = (names[-1][:-8] + "9999.dcm") if like else "lock"
        info["special"] = _special(folder, name, rng)
        info["slice_like"] = like
    elif kind == "transfer_syntax":
        _set_transfer_syntax(path, TRANSFER_SYNTAXES[int(rng.integers(len(TRANSFER_SYNTAXES)))])
    elif kind == "missing_tag":
        tag = TAGS[int(rng.integers(len(TAGS)))]
        _edit(path, **{tag: None})
        info["tag"] = tag
    elif kind == "spacing":
        ds = pydicom.dcmread(path)
        which = int(rng.integers(3))
        if which == 0:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [f"{x:g}", f"{y:g}", f"{z + rng.choice([-0.7, 0.4, 1.1]):g}"]
        elif which == 1:
            ds.PixelSpacing = [f"{float(ds.PixelSpacing[0]) * 1.1:g}", str(ds.PixelSpacing[1])]
        else:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [f"{x + 0.5:g}", f"{y:g}", f"{z:g}"]
        ds.save_as(path)
    elif kind == "huge":
        value = int(rng.choice([65535, 40000, 4096]))
        targets = names if rng.random() < 0.5 else [names[k]]
        for name in targets:
            _edit(os.path.join(folder, name), Rows=value, Columns=value)
    elif kind == "rescale":
        if rng.random() < 0.2:
            # signed data read as unsigned: wrong only where a stored value is negative
            info["must_fail"] = any(pydicom.dcmread(os.path.join(folder, name)).pixel_array.min()
                                    < 0 for name in names)
            for name in names:
                _edit(os.path.join(folder, name), PixelRepresentation=0)
        else:
            slope = BAD_SLOPES[int(rng.integers(len(BAD_SLOPES)))]
            targets = names if rng.random() < 0.5 else [names[k]]
            for name in targets:
                p = os.path.join(folder, name)
                data = Path(p).read_bytes()
                ds = pydicom.dcmread(p)
                # write the raw string: pydicom would refuse to store 'abc' in a DS
                ds["RescaleSlope"] = pydicom.DataElement(0x00281053, "LO", slope)
                ds.save_as(p)
                assert Path(p).read_bytes() != data
    elif kind == "duplicate":
        dup = os.path.join(folder, "copy_" + names[k])
        shutil.copy(path, dup)
        if rng.random() < 0.5:
            _edit(dup, SOPInstanceUID=generate_uid())
    elif kind == "mixed":
        other = os.path.join(folder, "other_" + names[k])
        shutil.copy(path, other)
        if rng.random() < 0.5:
            _edit(other, SeriesInstanceUID=generate_uid())
        else:
            ds = pydicom.dcmread(other)
            ds.Rows = ds.Columns = 4
            ds.PixelData = np.zeros((4, 4), "<i2").tobytes()
            ds.save_as(other)
    else:
        raise ValueError(kind)
    return info


# ------------------------------------------------------------------ oracle

def _read_with_timeout(folder):
    box = {}

    def target():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                box["scan"] = read_scan(folder)
        except BaseException as exc:  # noqa: BLE001 - the oracle classifies it
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(TIMEOUT_S)
    if t.is_alive():
        return "hang", None
    return ("error", box["error"]) if "error" in box else ("scan", box["scan"])


def _affine_of(a, b):
    """True if slice ``a`` equals s * b + t for some s > 0 (a rescale read anew)."""
    A = np.column_stack([b.ravel(), np.ones(b.size)])
    (s, t), *_ = np.linalg.lstsq(A, a.ravel(), rcond=None)
    return s > 0 and np.allclose(s * b + t, a, rtol=0, atol=1e-3 * max(1.0, abs(s)))


def check_variant(template, folder, info):
    """The oracle; returns None when the outcome is acceptable, else why not."""
    _, ref, _, _ = template
    outcome, value = _read_with_timeout(folder)
    if outcome == "hang":
        return f"read_scan did not return within {TIMEOUT_S} s"
    if outcome == "error":
        if not isinstance(value, ScanFileError):
            return f"raised {type(value).__name__}: {value}"
        msg = str(value)
        if "\n" in msg or folder not in msg:
            return f"message is not one line naming the folder: {msg!r}"
        return None
    scan = value
    if info.get("must_fail", info["kind"] in MUST_FAIL):
        return "returned a volume although the corruption makes it wrong"
    if scan.shape != ref.shape:
        return f"returned shape {scan.shape} instead of {ref.shape}"
    got, want = scan.values, ref.values
    k = info["k"]
    if info["kind"] == "pixel_flip":
        diff = {tuple(v) for v in np.argwhere(got[k] != want[k])}
        others = np.delete(np.arange(ref.shape[0]), k)
        if not diff <= info["voxels"] or np.any(got[others] != want[others]):
            return "pixel flips changed voxels that were not flipped"
        return _coords_equal(scan, ref, 0.0)
    if info["kind"] == "header_flip":
        others = np.delete(np.arange(ref.shape[0]), k)
        if np.any(got[others] != want[others]):
            return "a header flip in one file changed other slices"
        if np.any(got[k] != want[k]) and not _affine_of(got[k], want[k]):
            return "a header flip changed a slice in a way no valid rescale explains"
        return _coords_equal(scan, ref, 0.011)
    if np.any(got != want):
        return "returned a volume with different values"
    return _coords_equal(scan, ref, 0.0)


def _coords_equal(scan, ref, tol):
    for d in ("z", "y", "x"):
        err = float(np.max(np.abs(scan[d].values - ref[d].values)))
        if err > tol + 1e-9:
            return f"the {d} coordinates moved by {err:.4g} mm"
    return None


def run_campaign(templates, tmp_path, n, seed):
    rng = np.random.default_rng(seed)
    failures, counts = [], {}
    names = sorted(templates)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        tname = names[int(rng.integers(len(names)))]
        folder = str(tmp_path / f"v{i:05d}")
        info = corrupt(templates[tname], folder, kind, rng)
        why = check_variant(templates[tname], folder, info)
        counts[kind] = counts.get(kind, 0) + 1
        if why is not None:
            failures.append(f"variant {i} ({tname}, {info}): {why}")
        shutil.rmtree(folder, ignore_errors=True)
    return failures, counts


def test_fuzz_corrupted_series_fail_clearly_or_read_correctly(templates, tmp_path):
    failures, counts = run_campaign(templates, tmp_path, N_FAST, seed=20240611)
    assert set(counts) == set(KINDS)
    assert not failures, f"{len(failures)} of {N_FAST} variants:\n" + "\n".join(failures[:20])


@pytest.mark.slow
@pytest.mark.skipif(N_SLOW == 0, reason="set PVCALC_FUZZ_N (e.g. 5000) for the long campaign")
def test_fuzz_long_campaign(templates, tmp_path):
    failures, _ = run_campaign(templates, tmp_path, N_SLOW, seed=N_SLOW)
    assert not failures, f"{len(failures)} of {N_SLOW} variants:\n" + "\n".join(failures[:20])


# ------------------------------------------------------------------ one test per class

def _copy(templates, name, tmp_path):
    folder = str(tmp_path / name)
    shutil.copytree(templates[name][0], folder)
    return folder, templates[name]


@pytest.mark.parametrize("special", ["fifo", "dev_null", "dev_zero", "dangling", "loop"])
def test_special_file_named_like_a_slice_is_an_error_not_a_hang(templates, tmp_path, special):
    folder, _ = _copy(templates, "written", tmp_path)
    p = os.path.join(folder, "slice_00099.dcm")
    {"fifo": lambda: os.mkfifo(p), "dev_null": lambda: os.symlink("/dev/null", p),
     "dev_zero": lambda: os.symlink("/dev/zero", p),
     "dangling": lambda: os.symlink(p + ".missing", p), "loop": lambda: os.symlink(p, p)}[special]()
    outcome, value = _read_with_timeout(folder)
    assert outcome == "error", outcome
    assert isinstance(value, ScanFileError)
    assert "slice_00099.dcm" in str(value) and "not a regular file" in str(value)


def test_special_file_with_another_name_is_skipped_and_reported(templates, tmp_path):
    folder, (_, ref, _, _) = _copy(templates, "written", tmp_path)
    os.mkfifo(os.path.join(folder, "pipe"))
    with pytest.warns(pvcalc.io.ScanFileWarning, match=r"skipped 1 file.*pipe \(a FIFO"):
        scan = read_scan(folder)
    np.testing.assert_array_equal(scan.values, ref.values)
    assert scan.attrs["n_skipped_files"] == 1 and scan.attrs["skipped_files"] == ("pipe",)
    with pytest.raises(ScanFileError, match=r"pipe \(a FIFO.*strict=True"):
        read_scan(folder, strict=True)


def test_fifo_does_not_hang_read_scan_or_the_cli(templates, tmp_path):
    folder, _ = _copy(templates, "written", tmp_path)
    os.mkfifo(os.path.join(folder, "slice_00099.dcm"))
    code = f"import pvcalc\ntry:\n    pvcalc.read_scan({folder!r})\nexcept pvcalc.ScanFileError:\n    pass"
    subprocess.run([sys.executable, "-c", code], timeout=120, check=True)
    proc = subprocess.run([sys.executable, "-m", "pvcalc.cli", "score", folder],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "slice_00099.dcm" in proc.stderr and "FIFO" in proc.stderr


@pytest.mark.parametrize("slope", BAD_SLOPES)
def test_bad_rescale_slope_is_an_error(templates, tmp_path, slope):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    p = os.path.join(folder, names[2])
    ds = pydicom.dcmread(p)
    ds["RescaleSlope"] = pydicom.DataElement(0x00281053, "LO", slope)
    ds.save_as(p)
    with pytest.raises(ScanFileError, match=rf"RescaleSlope \(0028,1053\) of {names[2]}"):
        read_scan(folder)


def test_flipped_pixel_representation_is_an_error_naming_the_limit(templates, tmp_path):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    for name in names:
        _edit(os.path.join(folder, name), PixelRepresentation=0)
    with pytest.raises(ScanFileError, match=r"outside the plausible CT range -2048 to 32767 HU "
                                            r"for 16-bit data.*PixelRepresentation.*"
                                            r"hu_range=\(-2048, 65[0-9]{3}\).*--hu-range"):
        read_scan(folder)


def test_hu_range_keyword_overrides_the_limit(templates, tmp_path):
    folder, (_, ref, _, _) = _copy(templates, "written", tmp_path)
    lo, hi = float(ref.min()), float(ref.max())
    with pytest.raises(ScanFileError, match=r"plausible CT range -500 to 32767 HU"):
        read_scan(folder, hu_range=(-500, None))
    scan = read_scan(folder, hu_range=(lo, hi))
    np.testing.assert_array_equal(scan.values, ref.values)
    with pytest.raises(ValueError, match=r"hu_range must be"):
        read_scan(folder, hu_range=(100, -100))
    with pytest.raises(TypeError, match=r"hu_range must be"):
        read_scan(folder, hu_range=("a", 5))


def test_real_ct_padding_outside_the_field_of_view_is_accepted(templates):
    # CT_small.dcm has PixelPaddingValue -2000 (stored), i.e. -3024 HU
    _, scan, _, _ = templates["real_ct"]
    raw = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm")).pixel_array
    np.testing.assert_array_equal(scan.values[0], raw.astype(np.float32) - 1024)


@pytest.mark.parametrize("how", ["empty", "preamble", "truncated"])
@pytest.mark.parametrize("which", [0, -1])
def test_unreadable_first_or_last_slice_is_an_error_not_a_short_volume(templates, tmp_path,
                                                                         how, which):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    p = os.path.join(folder, names[which])
    data = Path(p).read_bytes()
    if how == "empty":
        data = b""
    elif how == "preamble":
        data = data[:128] + b"DICX" + data[132:]
    else:
        data = data[:100]
    Path(p).write_bytes(data)
    with pytest.raises(ScanFileError, match=rf"{names[which]}.*cannot be read"):
        read_scan(folder)


def test_unreadable_file_carrying_the_series_uid_is_an_error(templates, tmp_path):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    data = Path(os.path.join(folder, names[3])).read_bytes()
    os.remove(os.path.join(folder, names[3]))
    Path(folder, "export.bin").write_bytes(b"\0" * 130 + data[132:])
    with pytest.raises(ScanFileError, match=r"export\.bin.*SeriesInstanceUID"):
        read_scan(folder)


def test_plainly_non_dicom_files_are_skipped_with_a_count(templates, tmp_path):
    folder, (_, ref, _, _) = _copy(templates, "written", tmp_path)
    Path(os.path.join(folder, "README.txt")).write_text("notes")
    with pytest.warns(pvcalc.io.ScanFileWarning, match=r"skipped 1 file\(s\).*README\.txt"):
        scan = read_scan(folder)
    np.testing.assert_array_equal(scan.values, ref.values)
    assert scan.attrs["n_skipped_files"] == 1
    with pytest.raises(ScanFileError, match=r"README\.txt"):
        read_scan(folder, strict=True)


def test_missing_first_slice_is_reported_from_instance_numbers(templates, tmp_path):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    os.remove(os.path.join(folder, names[0]))
    with pytest.warns(pvcalc.io.ScanFileWarning, match=r"InstanceNumber.*starts at 2"):
        scan = read_scan(folder)
    assert scan.shape[0] == len(names) - 1
    with pytest.raises(ScanFileError, match=r"InstanceNumber.*starts at 2"):
        read_scan(folder, strict=True)


def test_images_in_acquisition_reports_missing_end_slices(templates, tmp_path):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    for name in names:
        _edit(os.path.join(folder, name), ImagesInAcquisition=len(names), InstanceNumber=None)
    os.remove(os.path.join(folder, names[-1]))
    with pytest.raises(ScanFileError, match=rf"ImagesInAcquisition.*{len(names)}"):
        read_scan(folder, strict=True)


def test_unknown_vr_from_a_bit_flip_is_a_scan_file_error(templates, tmp_path):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    p = os.path.join(folder, names[1])
    data = bytearray(Path(p).read_bytes())
    i = data.find(b"\x28\x00\x10\x00US")  # Rows, explicit VR
    data[i + 4] = ord("Q")
    Path(p).write_bytes(data)
    with pytest.raises(ScanFileError, match=rf"{names[1]}.*\(0028,0010\).*Unknown Value "
                                            r"Representation 'QS'"):
        read_scan(folder)


def test_huge_rows_and_columns_are_checked_before_any_allocation(templates, tmp_path):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    for name in names:
        _edit(os.path.join(folder, name), Rows=65535, Columns=65535)
    with pytest.raises(ScanFileError, match=r"PixelData \(7FE0,0010\) of slice_00001\.dcm holds "
                                            r"288 bytes, but Rows x Columns x BitsAllocated/8 "
                                            r"= 65535 x 65535 x 2 = 8589672450 bytes"):
        read_scan(folder)


def test_invalid_transfer_syntax_is_a_scan_file_error(templates, tmp_path):
    folder, (_, _, names, _) = _copy(templates, "written", tmp_path)
    p = os.path.join(folder, names[0])
    ds = pydicom.dcmread(p)
    ds.file_meta.TransferSyntaxUID = "1.2.3.4"
    ds.save_as(p)
    with pytest.raises(ScanFileError, match=r"slice_00001\.dcm.*TransferSyntaxUID 1\.2\.3\.4 "
                                            r"is not a DICOM transfer syntax"):
        read_scan(folder)


def test_cli_never_prints_a_traceback(templates, tmp_path):
    """In-process for a sample of variants, one real process for a few."""
    from pvcalc.cli import main

    rng = np.random.default_rng(7)
    folders = []
    for i in range(2 * len(KINDS)):
        folder = str(tmp_path / f"cli{i:02d}")
        corrupt(templates["written" if i % 2 else "real_ct"], folder, KINDS[i % len(KINDS)],
                rng)
        folders.append(folder)
    import contextlib
    import io
    for folder in folders:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(["score", folder])
        assert code in (0, 2), (folder, code)
        if code == 2:
            assert err.getvalue().startswith("pvcalc: error:"), err.getvalue()
    for folder in folders[:len(KINDS)][::3]:
        proc = subprocess.run([sys.executable, "-m", "pvcalc.cli", "score", folder],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode in (0, 2) and "Traceback" not in proc.stderr, proc.stderr


def test_cli_strict_and_hu_range_options(templates, tmp_path, capsys):
    from pvcalc.cli import main

    folder, _ = _copy(templates, "written", tmp_path)
    Path(os.path.join(folder, "notes.txt")).write_text("x")
    assert main(["score", folder, "--strict"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert main(["score", folder, "--hu-range", "-500", "4000"]) == 2
    assert "plausible CT range -500 to 4000 HU" in capsys.readouterr().err
    assert main(["score", folder]) == 0
    err = capsys.readouterr().err
    assert "pvcalc: warning: " in err and "notes.txt" in err and "Traceback" not in err

