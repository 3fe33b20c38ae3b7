"""Public entry points: ``read_scan`` and ``write_scan``."""

from __future__ import annotations

import math
import numbers
import os

from pvcalc.io._dicom_read import read_dicom
from pvcalc.io._dicom_write import write_dicom
from pvcalc.io._errors import ScanFileError, check_exists
from pvcalc.io._nifti import is_nifti_path, read_nifti, write_nifti
from pvcalc.scan import (
    DIMS,
    HU_LIMITS,
    make_scan,
    scan_origin_mm,
    scan_spacing_mm,
    validate_scan,
)


def read_volume(path, *, series_uid=None, require_rescale=True, hu_range=None, strict=False,
                check_hu=True):
    """(values, origin_mm, spacing_mm, attrs) from a DICOM series or NIfTI file."""
    p = check_exists(path)
    if os.path.isfile(p) and is_nifti_path(p):
        if series_uid is not None:
            raise ValueError(f"series_uid applies to DICOM folders only, but {p} is a NIfTI "
                             "file; drop series_uid")
        return read_nifti(p)
    return read_dicom(p, series_uid=series_uid, require_rescale=require_rescale,
                      hu_range=hu_range, strict=strict, check_hu=check_hu)


def _check_hu_range(hu_range):
    """None, or (low, high) HU with either end None (= the default)."""
    if hu_range is None:
        return None
    expected = (f"hu_range must be None or (low, high) in HU within {HU_LIMITS[0]:g} to "
                f"{HU_LIMITS[1]:g}, either end None for the default, e.g. (-3024, 32767)")
    try:
        lo, hi = hu_range
    except (TypeError, ValueError):
        raise TypeError(f"{expected}; got {hu_range!r}") from None
    for v in (lo, hi):
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
            raise TypeError(f"{expected}; got {hu_range!r}")
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    for v in (lo, hi):
        if v is not None and not (math.isfinite(v) and HU_LIMITS[0] <= v <= HU_LIMITS[1]):
            raise ValueError(f"{expected}; got {hu_range!r}")
    if lo is not None and hi is not None and not lo < hi:
        raise ValueError(f"{expected}, low < high; got {hu_range!r}")
    return lo, hi


def read_scan(path, *, series_uid=None, hu_range=None, strict=False):
    """Read a CT scan from a DICOM series or a NIfTI file.

    Parameters
    ----------
    path : str or os.PathLike
        A folder holding one DICOM series (subfolders are searched too;
        non-DICOM files are ignored), a single DICOM file (read as a one-slice
        scan), or a ``.nii`` / ``.nii.gz`` file.
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several series.
    hu_range : (float or None, float or None), optional
        DICOM only: the plausible range of HU (low, high). A voxel outside it
        is an error, because a damaged PixelRepresentation, RescaleSlope or
        RescaleIntercept gives such values. Default (None, or None for either
        end): -2048 HU to 4095 HU for 12-bit data, to 2**(BitsStored - 1) - 1
        HU for wider data (32767 HU for 16 bits). Padding declared by
        PixelPaddingValue, and one fill value below the range (padding outside
        the field of view), are allowed. Widen it for real values outside,
        e.g. ``hu_range=(-3024, 32767)``.
    strict : bool, default False
        DICOM only: raise :class:`ScanFileError` instead of a
        :class:`ScanFileWarning` for files that are skipped (not DICOM images)
        and for signs of missing slices at the ends of the series.

    Returns
    -------
    scan : xarray.DataArray
        float32 HU, dims ("z", "y", "x"), voxel-centre coordinates in mm in
        the DICOM patient (LPS) frame, increasing along every axis. Attrs:
        ``units``, ``kvp`` (with ``kvp_source`` "dicom" or "default" = 120 kV
        when the file does not say), ``slice_thickness_mm`` (with
        ``slice_thickness_source``), ``source_path`` and, where the file
        has them, ``kernel``, ``manufacturer``, ``manufacturer_model``,
        ``series_uid``, ``series_description``, ``study_uid``, ``patient_id``,
        ``pixel_spacing_mm`` (row, column), ``spacing_between_slices_mm``.
        A scan read from DICOM also has ``n_skipped_files`` (files under
        ``path`` that are not DICOM images of the series), with their names
        in ``skipped_files``, and ``read_warnings`` when a warning was issued.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ScanFileError
        The content cannot be read as one consistent volume: no DICOM files,
        several series without ``series_uid``, missing or duplicated slices,
        mixed image sizes or pixel spacings, tilted or oblique geometry,
        missing required tags, undecodable compressed pixel data, oblique
        NIfTI affine, non-finite voxels; a damaged file, including a file
        named like the slices (or holding the series' UID) that cannot be
        read, a special file (FIFO, device) or a dangling link named like a
        slice; an implausible rescale or HU outside ``hu_range``. The message
        is one line naming the path, the problem and the fix.
    TypeError, ValueError
        ``hu_range`` is not None or a (low, high) pair of HU.

    Warns
    -----
    ScanFileWarning
        Files were skipped, or slices seem to be missing at the ends of the
        series (``strict=True`` makes these errors).

    Notes
    -----
    DICOM slices are sorted by their position along the slice normal
    n = row cosines x column cosines, d = n . ImagePositionPatient, and HU =
    stored value x RescaleSlope + RescaleIntercept per slice. Orientations
    with -1 cosines are flipped so that coordinates increase. NIfTI files are
    reoriented with ``nibabel.as_closest_canonical`` (RAS+) and then mapped
    to LPS (x_LPS = -x_RAS, y_LPS = -y_RAS) so both formats give the same
    coordinates for the same patient. See ``docs/io.md``.

    References
    ----------
    DICOM PS3.3, C.7.6.2 Image Plane Module (patient coordinate system) and
    C.8.2.1 CT Image Module. NIfTI-1 data format, sform/qform
    (https://nifti.nimh.nih.gov/nifti-1).

    Examples
    --------
    >>> import tempfile, os, numpy as np, pvcalc
    >>> scan = pvcalc.make_scan(np.full((2, 3, 4), 40.0), (3.0, 0.5, 0.5))
    >>> folder = os.path.join(tempfile.mkdtemp(), "ct")
    >>> _ = pvcalc.write_scan(scan, folder)
    >>> back = pvcalc.read_scan(folder)
    >>> back.shape, float(back.max()), float(back.attrs["kvp"])
    ((2, 3, 4), 40.0, 120.0)
    """
    values, origin, spacing, attrs = read_volume(path, series_uid=series_uid,
                                                 hu_range=_check_hu_range(hu_range),
                                                 strict=bool(strict))
    return _to_scan(path, values, origin, spacing, attrs)


def _to_scan(path, values, origin, spacing, attrs):
    for k, d in enumerate(DIMS):
        if values.shape[k] == 1:
            attrs.setdefault(f"spacing_{d}_mm", float(spacing[k]))
    try:
        return make_scan(values, spacing, origin_mm=origin, **attrs)
    except (ValueError, TypeError) as exc:
        raise ScanFileError(os.fspath(path), str(exc).rstrip("."),
                            "the file content is not a valid scan") from exc


def write_scan(scan, path, *, format=None, uid_seed=None, rescale_slope=None,
               overwrite=False, study_datetime=None):
    """Write a scan as a NIfTI file or a DICOM CT series folder.

    Parameters
    ----------
    scan : xarray.DataArray
        A valid scan (see :func:`pvcalc.make_scan`).
    path : str or os.PathLike
        Ending in ``.nii`` or ``.nii.gz``: one float32 NIfTI-1 file plus a
        JSON sidecar ``<name>.json`` holding the attrs and the exact grid.
        Otherwise a folder that receives one DICOM file per slice
        (``slice_00001.dcm``, ...).
    format : {"nifti", "dicom"}, optional
        Default: inferred from ``path``.
    uid_seed : str or int, optional
        DICOM only: derive Study/Series/FrameOfReference/SOP instance UIDs
        deterministically from this seed (default: random UIDs). The study
        UID of a scan read from DICOM (attr ``study_uid``) is kept. Every UID
        starts with pydicom's root ``1.2.826.0.1.3680043.8.498.``.
    rescale_slope : float, optional
        DICOM only: HU per stored integer. Default: 1 for integer-valued HU,
        otherwise the finest power of two (at most 2**-10 HU) whose int16
        range covers the values.
    overwrite : bool, default False
        Allow writing into an existing file or non-empty folder (earlier
        ``slice_*.dcm`` files there are deleted first; other files are left).
    study_datetime : datetime.datetime or datetime.date, optional
        DICOM only: StudyDate/Time, SeriesDate/Time and ContentDate/Time
        (a date alone means midnight). Default: the current local date and
        time. With ``uid_seed`` as well, the same scan gives the same bytes.

    Returns
    -------
    path : str
        The file or folder written.

    Notes
    -----
    DICOM stores int16 values v_s with HU = v_s x RescaleSlope +
    RescaleIntercept, so a DICOM round trip reproduces HU to within half a
    rescale step (exactly for integer HU with slope 1); coordinates are
    written as decimal strings of up to 16 characters. The NIfTI data are
    float32 (exact for a float32 scan).

    Examples
    --------
    >>> import tempfile, os, numpy as np, pvcalc
    >>> scan = pvcalc.make_scan(np.arange(24.0).reshape(2, 3, 4), (2.5, 0.7, 0.7))
    >>> out = pvcalc.write_scan(scan, os.path.join(tempfile.mkdtemp(), "scan.nii.gz"))
    >>> bool((pvcalc.read_scan(out) == scan).all())
    True
    """
    validate_scan(scan)
    p = os.fspath(path)
    nifti = is_nifti_path(p)
    if format is None:
        format = "nifti" if nifti else "dicom"
    if format not in ("nifti", "dicom"):
        raise ValueError(f"format must be 'nifti' or 'dicom', got {format!r}")
    if format == "nifti" and not nifti:
        raise ValueError(f"format='nifti' needs a path ending in .nii or .nii.gz, got {p!r}; "
                         "add the suffix")
    if format == "dicom" and nifti:
        raise ValueError(f"format='dicom' writes a folder, but {p!r} ends like a NIfTI file; "
                         "choose a folder name")
    if format == "nifti":
        if (uid_seed, rescale_slope, study_datetime) != (None, None, None):
            raise ValueError("uid_seed, rescale_slope and study_datetime apply to DICOM output "
                             "only; drop them for a .nii/.nii.gz path")
        if os.path.exists(p) and not overwrite:
            raise FileExistsError(f"{p}: file exists; pass overwrite=True to replace it")
        write_nifti(scan, p, scan_origin_mm(scan), scan_spacing_mm(scan))
        return p
    write_dicom(scan, p, uid_seed=uid_seed, rescale_slope=rescale_slope, overwrite=overwrite,
                study_datetime=study_datetime)
    return p
