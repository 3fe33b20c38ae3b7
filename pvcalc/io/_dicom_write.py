"""Write a scan as a DICOM CT Image Storage series (one file per slice)."""

from __future__ import annotations

import datetime
import glob
import math
import os

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    PYDICOM_ROOT_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from pvcalc.scan import scan_origin_mm, scan_spacing_mm

#: Stored values use at most this many of the 65536 int16 codes, leaving a margin.
_CODES = 65532
#: Finest automatic rescale step: 2**-10 HU.
_FINEST_EXPONENT = 10
FILE_PATTERN = "slice_{:05d}.dcm"
_FILE_GLOB = "slice_[0-9][0-9][0-9][0-9][0-9].dcm"


def choose_rescale(values, rescale_slope=None):
    """Pick (slope, intercept) so that ``round((v - intercept) / slope)`` fits int16.

    Integer-valued HU get slope 1 (lossless). Otherwise, and for ranges too
    wide for slope 1, the slope is the finest power of two 2**-k (k <= 10)
    that fits the range; powers of two keep ``stored * slope + intercept``
    exact in binary floating point. The intercept is 0 when the values fit
    without one, else the integer nearest the middle of the range.
    """
    vmin, vmax = float(np.min(values)), float(np.max(values))
    span = vmax - vmin + 1.0
    if rescale_slope is None:
        integral = bool(np.all(values == np.round(values)))
        if integral and span <= _CODES:
            slope = 1.0
        else:
            k = min(_FINEST_EXPONENT, math.floor(math.log2(_CODES / span)))
            slope = 2.0 ** (-k)
    else:
        try:
            slope = float(rescale_slope)
        except (TypeError, ValueError):
            raise TypeError(f"rescale_slope must be a positive number of HU per stored "
                            f"unit or None, got {rescale_slope!r}") from None
        if not math.isfinite(slope) or slope <= 0:
            raise ValueError(f"rescale_slope must be positive, got {rescale_slope!r}")
        if span / slope > _CODES:
            raise ValueError(
                f"rescale_slope={slope:g} cannot store HU from {vmin:g} to {vmax:g} in int16 "
                f"(needs {span / slope:.0f} steps, at most {_CODES}); use rescale_slope="
                f"{2.0 ** math.ceil(math.log2(span / _CODES)):g} or larger, or None for automatic")
    if slope == 1.0 and vmin >= -32768 and vmax <= 32767:
        intercept = 0.0
    else:
        intercept = float(round((vmin + vmax) / 2.0))
    return slope, intercept


def _ds(value):
    return format_number_as_ds(float(value))


#: Root of every UID written: pydicom's registered root, followed by a random
#: number or, with ``uid_seed``, the decimal SHA-512 of the seed and the UID's role
#: (``pydicom.uid.generate_uid(prefix=UID_ROOT, entropy_srcs=...)``), cut to 64 characters.
UID_ROOT = PYDICOM_ROOT_UID


def _uid(seed, *parts):
    if seed is None:
        return generate_uid(prefix=UID_ROOT)
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(seed), *map(str, parts)])


def _date_time(study_datetime):
    """DICOM DA and TM strings of ``study_datetime`` (default: now, local time)."""
    if study_datetime is None:
        study_datetime = datetime.datetime.now()
    elif not isinstance(study_datetime, datetime.date):
        raise TypeError(f"study_datetime must be a datetime.datetime or datetime.date, got "
                        f"{study_datetime!r}; e.g. datetime.datetime(2000, 1, 1)")
    elif not isinstance(study_datetime, datetime.datetime):
        study_datetime = datetime.datetime.combine(study_datetime, datetime.time())
    return study_datetime.strftime("%Y%m%d"), study_datetime.strftime("%H%M%S")


def _text(value, limit=64):
    return str(value)[:limit]


def write_dicom(scan, folder, *, uid_seed=None, rescale_slope=None, overwrite=False,
                series_number=1, series_description=None, study_datetime=None):
    """Write ``scan`` (already validated) into ``folder``; return the file paths."""
    folder = os.fspath(folder)
    date, time = _date_time(study_datetime)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileExistsError(f"{folder}: exists and is not a folder; DICOM series are written "
                              "as a folder of files (or give a .nii/.nii.gz path for NIfTI)")
    if os.path.isdir(folder) and os.listdir(folder):
        if not overwrite:
            raise FileExistsError(
                f"{folder}: folder is not empty; writing a series into it could mix two "
                "series. Choose an empty or new folder, or pass overwrite=True to replace "
                f"earlier pvcalc slices ({FILE_PATTERN.format(1)}, ...)")
        for old in glob.glob(os.path.join(folder, _FILE_GLOB)):
            os.remove(old)
    os.makedirs(folder, exist_ok=True)

    values = np.asarray(scan.values, dtype=np.float64)
    slope, intercept = choose_rescale(values, rescale_slope)
    stored = np.round((values - intercept) / slope)
    stored = np.clip(stored, -32768, 32767).astype("<i2")
    dz, dy, dx = scan_spacing_mm(scan)
    z0, y0, x0 = scan_origin_mm(scan)
    zs = np.asarray(scan.coords["z"].values, dtype=np.float64)
    attrs = scan.attrs
    study_uid = attrs.get("study_uid") or _uid(uid_seed, "study")
    series_uid = _uid(uid_seed, "series", series_number)
    frame_uid = _uid(uid_seed, "frame", series_number)
    kvp = "" if attrs.get("kvp_source") == "default" else _ds(attrs["kvp"])

    base = Dataset()
    base.SpecificCharacterSet = "ISO_IR 100"
    base.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    base.SOPClassUID = CTImageStorage
    base.StudyDate = base.SeriesDate = base.ContentDate = date
    base.StudyTime = base.SeriesTime = base.ContentTime = time
    base.AccessionNumber = ""
    base.Modality = "CT"
    base.Manufacturer = _text(attrs.get("manufacturer", ""))
    if attrs.get("manufacturer_model"):
        base.ManufacturerModelName = _text(attrs["manufacturer_model"])
    base.ReferringPhysicianName = ""
    base.SeriesDescription = _text(series_description or attrs.get("series_description")
                                   or "pvcalc scan")
    base.PatientName = _text(attrs.get("patient_name", "pvcalc^phantom"))
    base.PatientID = _text(attrs.get("patient_id", "PVCALC"))
    base.PatientBirthDate = ""
    base.PatientSex = ""
    base.SliceThickness = _ds(attrs["slice_thickness_mm"])
    base.KVP = kvp
    if attrs.get("kernel"):
        base.ConvolutionKernel = _text(attrs["kernel"], 16 * 8)
    base.BodyPartExamined = "HEART"
    base.PatientPosition = "HFS"
    base.StudyInstanceUID = study_uid
    base.SeriesInstanceUID = series_uid
    base.StudyID = "1"
    base.SeriesNumber = int(series_number)
    base.AcquisitionNumber = 1
    base.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    base.FrameOfReferenceUID = frame_uid
    base.PositionReferenceIndicator = ""
    base.SpacingBetweenSlices = _ds(dz)
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.Rows, base.Columns = int(scan.shape[1]), int(scan.shape[2])
    base.PixelSpacing = [_ds(dy), _ds(dx)]
    base.BitsAllocated = 16
    base.BitsStored = 16
    base.HighBit = 15
    base.PixelRepresentation = 1
    base.WindowCenter = "40"
    base.WindowWidth = "400"
    base.RescaleIntercept = _ds(intercept)
    base.RescaleSlope = _ds(slope)
    base.RescaleType = "HU"

    paths = []
    for k in range(scan.shape[0]):
        ds = Dataset(dict(base.items()))  # shares the unchanging elements of base
        sop_uid = _uid(uid_seed, "sop", series_number, k)
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(x0), _ds(y0), _ds(zs[k])]
        ds.SliceLocation = _ds(zs[k])
        ds.PixelData = stored[k].tobytes()
        ds["PixelData"].VR = "OW"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.file_meta = meta
        path = os.path.join(folder, FILE_PATTERN.format(k + 1))
        ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
        paths.append(path)
    return paths

