"""Read one DICOM series (a folder, nested folders or one file) into a volume.

All geometry is checked before any pixel is decoded, so an inconsistent
series fails fast with a message naming the problem and the fix.
"""

from __future__ import annotations

import math
import os
from collections import Counter

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from pvcalc.io._errors import ScanFileError

#: Largest off-axis direction cosine accepted as axial (about 0.06 degrees).
ORIENTATION_TOL = 1e-3
#: Slice positions may deviate from a uniform grid by this fraction of the
#: slice increment (decimal rounding in the DICOM position strings); more is
#: a gap, i.e. missing slices.
POSITION_RTOL = 0.01
#: Two slices closer than this fraction of the increment are duplicates.
DUPLICATE_RTOL = 0.01

_CT_RESCALE_TAGS = ("RescaleSlope", "RescaleIntercept")
_REQUIRED = {
    "ImagePositionPatient": "(0020,0032)",
    "ImageOrientationPatient": "(0020,0037)",
    "PixelSpacing": "(0028,0030)",
    "Rows": "(0028,0010)",
    "Columns": "(0028,0011)",
}
_TAG_NUMBERS = {**_REQUIRED, "RescaleSlope": "(0028,1053)",
                "RescaleIntercept": "(0028,1052)", "PixelData": "(7FE0,0010)"}
_FIX_SERIES = "pick one with series_uid='<UID>' (CLI: --series <UID>)"


def list_files(path):
    """All regular files under ``path`` (recursively, sorted), or [path]."""
    if os.path.isfile(path):
        return [path]
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        out.extend(os.path.join(root, f) for f in sorted(files))
    return out


def _short(path, root):
    rel = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
    return rel


def _read_headers(path):
    """Read every DICOM image header under ``path``; return (images, others)."""
    files = list_files(path)
    if not files:
        raise ScanFileError(path, "the folder is empty (no files in it or its subfolders)",
                            "point to a folder that holds a DICOM series")
    images, non_dicom, non_image, damaged = [], [], [], []
    for f in files:
        try:
            # large values (the pixel data) are read from the file only when used
            ds = pydicom.dcmread(f, defer_size=4096)
        except InvalidDicomError:  # no preamble + 'DICM': not a DICOM file
            non_dicom.append(f)
            continue
        except Exception as exc:  # noqa: BLE001 - a DICOM file pydicom cannot parse
            damaged.append((f, " ".join(str(exc).split())))
            continue
        sop_class = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
        if "Rows" in ds and "Columns" in ds:
            images.append((f, ds))
        elif "Image Storage" in str(getattr(sop_class, "name", "")):
            damaged.append((f, f"a {sop_class.name} file without Rows/Columns (truncated?)"))
        else:
            non_image.append(f)
    if damaged:
        f, why = damaged[0]
        raise ScanFileError(
            path, f"{len(damaged)} DICOM file(s) cannot be parsed, e.g. {_short(f, path)}: {why}",
            "remove or re-export the damaged file(s); a missing slice would make the volume "
            "wrong")
    if not images:
        if non_image:
            names = ", ".join(_short(f, path) for f in non_image[:3])
            raise ScanFileError(
                path, f"{len(non_image)} DICOM file(s) found but none is an image "
                f"(e.g. {names}: no Rows/Columns, such as a DICOMDIR or a report)",
                "point to the folder that holds the image slices")
        names = ", ".join(_short(f, path) for f in non_dicom[:3])
        more = "" if len(non_dicom) <= 3 else f" and {len(non_dicom) - 3} more"
        raise ScanFileError(
            path, f"no DICOM files found among {len(files)} file(s) ({names}{more}); "
            "a DICOM file starts with a 128-byte preamble and 'DICM'",
            "point to a DICOM series folder or file, or to a .nii/.nii.gz file")
    return images


def _text(ds, key):
    v = ds.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, pydicom.multival.MultiValue):
        return "\\".join(str(x) for x in v)
    return str(v).strip() or None


#: At most this many series are listed in an error; the rest are counted.
_MAX_SERIES_LISTED = 8


def _series_table(groups):
    parts = []
    # the largest series first: the likely candidates for a volume
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    for uid, items in ordered[:_MAX_SERIES_LISTED]:
        desc = _text(items[0][1], "SeriesDescription") or "no description"
        parts.append(f"{uid or '<no SeriesInstanceUID>'} ('{desc}', {len(items)} slices)")
    if len(ordered) > _MAX_SERIES_LISTED:
        parts.append(f"and {len(ordered) - _MAX_SERIES_LISTED} more")
    return "; ".join(parts)


def _choose_series(path, images, series_uid):
    groups = {}
    for f, ds in images:
        groups.setdefault(_text(ds, "SeriesInstanceUID"), []).append((f, ds))
    if series_uid is not None:
        uid = str(series_uid).strip()
        if uid not in groups:
            raise ScanFileError(
                path, f"series_uid {uid!r} is not in this folder; series found: "
                f"{_series_table(groups)}", _FIX_SERIES)
        return groups[uid]
    if len(groups) > 1:
        raise ScanFileError(
            path, f"{len(groups)} series found in one folder: {_series_table(groups)}",
            _FIX_SERIES)
    return next(iter(groups.values()))


def _num(ds, key):
    """Tag value as a finite float, or None when absent, empty or not a number."""
    v = ds.get(key)
    if v is None or v == "":
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _floats(ds, key, n):
    try:
        v = [float(x) for x in ds[key].value]
    except (TypeError, ValueError, KeyError):
        return None
    return np.array(v) if len(v) == n and all(math.isfinite(x) for x in v) else None


def _axial_axes(path, row, col):
    """Map the row/column direction cosines to patient axes; reject non-axial."""
    ok = True
    axes = []
    for vec in (row, col):
        norm = np.linalg.norm(vec)
        if not 0.99 < norm < 1.01:
            ok = False
            break
        vec = vec / norm
        a = int(np.argmax(np.abs(vec)))
        off = np.delete(np.abs(vec), a)
        if a == 2 or off.max() > ORIENTATION_TOL:
            ok = False
        axes.append((a, 1.0 if vec[a] > 0 else -1.0))
    normal = np.cross(row, col)
    if ok and axes[0][0] != axes[1][0]:
        return axes, normal
    nz = abs(normal[2]) / max(np.linalg.norm(normal), 1e-12)
    angle = math.degrees(math.acos(min(1.0, nz)))
    cos = "\\".join(f"{v:g}" for v in (*row, *col))
    raise ScanFileError(
        path, f"slices are not axial: ImageOrientationPatient is {cos} "
        f"(slice normal tilted {angle:.2f} degrees from the patient z axis; gantry tilt or "
        "an oblique reconstruction)",
        "pvcalc needs axial slices; reconstruct axially or resample the series "
        "(for example dcm2niix corrects gantry tilt) before scoring")


def _check_tags(path, root, items, require_rescale):
    for f, ds in items:
        need = list(_REQUIRED)
        if require_rescale and str(ds.get("Modality", "")).upper() == "CT":
            need += list(_CT_RESCALE_TAGS)
        missing = [k for k in need if k not in ds or ds[k].value in (None, "")]
        if missing:
            names = ", ".join(f"{k} {_TAG_NUMBERS[k]}" for k in missing)
            raise ScanFileError(
                path, f"slice {_short(f, root)} lacks required tag(s) {names}",
                "re-export the series from the scanner or PACS with the full CT image header")
        for key, n in (("ImagePositionPatient", 3), ("ImageOrientationPatient", 6),
                       ("PixelSpacing", 2)):
            if _floats(ds, key, n) is None:
                raise ScanFileError(
                    path, f"{key} {_TAG_NUMBERS[key]} of {_short(f, root)} is not {n} numbers "
                    f"(got {ds[key].value!r})", "re-export the series with a valid header")
        for key in ("RescaleSlope", "RescaleIntercept", "NumberOfFrames", "SamplesPerPixel"):
            if key in ds and ds[key].value not in (None, "") and _num(ds, key) is None:
                raise ScanFileError(
                    path, f"{key} of {_short(f, root)} is not a number (got {ds[key].value!r})",
                    "re-export the series with a valid header")
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise ScanFileError(
                path, f"{_short(f, root)} is a multi-frame (enhanced) image with "
                f"{int(ds.NumberOfFrames)} frames, which pvcalc does not read",
                "export the series as one file per slice (classic CT Image Storage)")
        if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            raise ScanFileError(
                path, f"{_short(f, root)} has {int(ds.SamplesPerPixel)} samples per pixel "
                "(a colour image), not a greyscale CT slice",
                "point to the original CT series, not a screenshot or colour export")


def _check_uniform(path, what, items, root, key, fmt):
    values = Counter(key(ds) for _, ds in items)
    if len(values) > 1:
        listing = ", ".join(f"{fmt(v)} in {n} slice(s)" for v, n in values.most_common())
        raise ScanFileError(
            path, f"slices have mixed {what}: {listing}",
            "a series must have one image size and pixel spacing; select the slices of "
            "one reconstruction or resample them")


def _check_positions(path, root, items, d):
    """Duplicates and gaps along the slice normal (d sorted ascending)."""
    n = d.size
    if n < 2:
        return
    steps = np.diff(d)
    typical = float(np.median(steps))
    scale = typical if typical > 0 else float(d[-1] - d[0]) / max(n - 1, 1)
    dup = np.flatnonzero(steps <= DUPLICATE_RTOL * max(scale, 1e-6))
    if dup.size:
        k = int(dup[0])
        acq = {str(ds.get("AcquisitionNumber", "")) for _, ds in items} - {""}
        hint = (f" (the series holds {len(acq)} acquisitions, AcquisitionNumber "
                f"{', '.join(sorted(acq))}: e.g. several cardiac phases)") if len(acq) > 1 else ""
        raise ScanFileError(
            path, f"{dup.size} duplicated slice position(s) along the slice normal, first "
            f"at {d[k]:.4f} mm ({_short(items[k][0], root)} and {_short(items[k + 1][0], root)})"
            f"{hint}",
            "remove the duplicated files or split the acquisitions into separate folders")
    total = float(d[-1] - d[0])
    step = total / (n - 1)
    dev = d - (d[0] + step * np.arange(n))
    if np.max(np.abs(dev)) > POSITION_RTOL * typical:
        k = int(np.argmax(np.abs(steps - typical)))
        missing = max(int(round(steps[k] / typical)) - 1, 0)
        what = (f"about {missing} missing slice(s)" if missing
                else "non-uniform slice spacing")
        raise ScanFileError(
            path, f"slices are not uniformly spaced ({what}): steps range from "
            f"{steps.min():.4f} to {steps.max():.4f} mm (typical {typical:.4f} mm), worst "
            f"between positions {d[k]:.4f} and {d[k + 1]:.4f} mm",
            "check that no slice files are missing, or resample onto a uniform grid")


def _decode(path, root, f, ds, rows, cols):
    if "PixelData" not in ds:
        raise ScanFileError(path, f"slice {_short(f, root)} lacks required tag(s) PixelData "
                            "(7FE0,0010)", "re-export the series with its pixel data")
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises several kinds
        name = getattr(ts, "name", None) or str(ts)
        fix = ("install a decoder (pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg, "
               "or python-gdcm) or decompress the files first (e.g. gdcmconv --raw, dcmdjpeg)"
               if getattr(ts, "is_compressed", False) else
               "the file is damaged or truncated; re-export the series")
        raise ScanFileError(
            path, f"pixel data of {_short(f, root)} cannot be decoded (transfer syntax "
            f"{name}, {ts}): {' '.join(str(exc).split())}", fix) from exc
    if arr.shape != (rows, cols):
        raise ScanFileError(
            path, f"pixel data of {_short(f, root)} has shape {arr.shape}, but Rows x Columns "
            f"is {rows} x {cols}", "the file is damaged; re-export the series")
    slope = _num(ds, "RescaleSlope")
    intercept = _num(ds, "RescaleIntercept")
    slope = 1.0 if slope is None else slope
    intercept = 0.0 if intercept is None else intercept
    return arr.astype(np.float64) * slope + intercept


def read_dicom(path, *, series_uid=None, require_rescale=True):
    """Read one DICOM series into ``(values, origin_mm, spacing_mm, attrs)``.

    ``values`` is a float32 (z, y, x) array after RescaleSlope/Intercept;
    ``origin_mm`` and ``spacing_mm`` are (z, y, x) in patient LPS mm.
    """
    root = path
    images = _read_headers(path)
    items = _choose_series(path, images, series_uid)
    _check_tags(path, root, items, require_rescale)
    _check_uniform(path, "image sizes (Rows x Columns)", items, root,
                   lambda ds: (int(ds.Rows), int(ds.Columns)), lambda v: f"{v[0]} x {v[1]}")
    _check_uniform(path, "PixelSpacing (mm)", items, root,
                   lambda ds: tuple(round(float(x), 6) for x in ds.PixelSpacing),
                   lambda v: f"{v[0]:g} x {v[1]:g}")
    _check_uniform(path, "ImageOrientationPatient", items, root,
                   lambda ds: tuple(round(float(x), 4) for x in ds.ImageOrientationPatient),
                   lambda v: "\\".join(f"{x:g}" for x in v))
    first = items[0][1]
    iop = _floats(first, "ImageOrientationPatient", 6)
    if iop is None:
        raise ScanFileError(path, "ImageOrientationPatient (0020,0037) is not 6 numbers",
                            "re-export the series with a valid CT image header")
    row, col = iop[:3], iop[3:]
    ((ax_r, sg_r), (ax_c, sg_c)), _ = _axial_axes(path, row, col)
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    ipp = []
    for f, ds in items:
        p = _floats(ds, "ImagePositionPatient", 3)
        if p is None:
            raise ScanFileError(path, f"ImagePositionPatient of {_short(f, root)} is not "
                                "3 numbers", "re-export the series with a valid header")
        ipp.append(p)
    ipp = np.array(ipp)
    order = np.argsort(ipp @ normal, kind="stable")
    ipp = ipp[order]
    items = [items[k] for k in order]
    d = ipp @ normal
    _check_positions(path, root, items, d)
    ps_row, ps_col = (float(x) for x in first.PixelSpacing)
    if ps_row <= 0 or ps_col <= 0:
        raise ScanFileError(path, f"PixelSpacing must be positive, got {ps_row:g} x {ps_col:g}",
                            "re-export the series with a valid header")
    inplane = ipp @ np.column_stack([row, col])
    shear = np.ptp(inplane, axis=0) if len(items) > 1 else np.zeros(2)
    if np.any(shear > max(0.01, 0.01 * min(ps_row, ps_col))):
        tilt = _num(first, "GantryDetectorTilt")
        note = f"; GantryDetectorTilt is {tilt:g} degrees" if tilt is not None else ""
        raise ScanFileError(
            path, f"slice positions shift in-plane from slice to slice (by up to "
            f"{shear.max():.3f} mm{note}): a gantry-tilted or sheared acquisition",
            "pvcalc needs an unsheared axial volume; correct the tilt first (for example "
            "with dcm2niix) or reconstruct without tilt")
    rows, cols = int(first.Rows), int(first.Columns)
    vol = np.empty((len(items), rows, cols), dtype=np.float32)  # HU computed in float64
    for k, (f, ds) in enumerate(items):
        vol[k] = _decode(path, root, f, ds, rows, cols)
    # in-plane: array axes are (row index -> along col cosines, column index -> along row)
    spacing = {ax_c: ps_row, ax_r: ps_col}
    sign = {ax_c: sg_c, ax_r: sg_r}
    if ax_r == 1:  # column index runs along patient y: transpose so axes are (y, x)
        vol = vol.transpose(0, 2, 1)
    origin_yx = []
    for a, axis in ((1, 1), (0, 2)):  # patient y -> array axis 1, x -> axis 2
        start = float(ipp[0, a])
        n = vol.shape[axis]
        if sign[a] < 0:
            vol = np.flip(vol, axis=axis)
            start -= (n - 1) * spacing[a]
        origin_yx.append(start)
    z = ipp[:, 2]
    if z[-1] < z[0]:
        vol = vol[::-1]
        z = z[::-1]
        items = items[::-1]
    n = len(items)
    if n > 1:
        dz = float((z[-1] - z[0]) / (n - 1))
    else:
        dz = _single_slice_spacing(path, first)
    attrs = _attrs(path, items[0][1], dz, n)
    origin = (float(z[0]), origin_yx[0], origin_yx[1])
    return (np.ascontiguousarray(vol), origin, (dz, spacing[1], spacing[0]), attrs)


def _single_slice_spacing(path, ds):
    for key in ("SpacingBetweenSlices", "SliceThickness"):
        v = _num(ds, key)
        if v is not None and v > 0:
            return v
    raise ScanFileError(
        path, "one slice without SpacingBetweenSlices or SliceThickness, so its z spacing "
        "is unknown", "point to the folder holding the whole series")


def _attrs(path, ds, dz, n):
    attrs = {}
    kvp = _num(ds, "KVP")
    if kvp is not None and kvp > 0:
        attrs["kvp"] = kvp
        attrs["kvp_source"] = "dicom"
    else:
        attrs["kvp"] = 120.0
        attrs["kvp_source"] = "default"
    thick = _num(ds, "SliceThickness")
    if thick is not None and thick > 0:
        attrs["slice_thickness_mm"] = thick
        attrs["slice_thickness_source"] = "dicom"
    else:
        attrs["slice_thickness_mm"] = float(dz)
        attrs["slice_thickness_source"] = "increment"
    for key, name in (("ConvolutionKernel", "kernel"), ("Manufacturer", "manufacturer"),
                      ("ManufacturerModelName", "manufacturer_model"),
                      ("SeriesInstanceUID", "series_uid"),
                      ("SeriesDescription", "series_description"),
                      ("StudyInstanceUID", "study_uid"), ("PatientID", "patient_id")):
        v = _text(ds, key)
        if v is not None:
            attrs[name] = v
    ps = ds.get("PixelSpacing")
    attrs["pixel_spacing_mm"] = tuple(float(x) for x in ps)
    sbs = _num(ds, "SpacingBetweenSlices")
    if sbs is not None:
        attrs["spacing_between_slices_mm"] = sbs
    if n == 1:
        attrs["spacing_z_mm"] = float(dz)
    attrs["source_path"] = os.path.abspath(path)
    return attrs
