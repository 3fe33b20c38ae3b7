"""Read one DICOM series (a folder, nested folders or one file) into a volume.

All geometry is checked before any pixel is decoded, so an inconsistent
series fails fast with a message naming the problem and the fix.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter

import numpy as np
import pydicom

from pvcalc.io._dicom_files import Header, check_unreadable, read_headers, short_name
from pvcalc.io._dicom_pixels import (
    check_memory,
    check_pixel_data,
    check_pixel_module,
    decode,
)
from pvcalc.io._errors import ScanFileError, ScanFileWarning

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
    "BitsAllocated": "(0028,0100)",
    "BitsStored": "(0028,0101)",
    "PixelRepresentation": "(0028,0103)",
}
_TAG_NUMBERS = {**_REQUIRED, "RescaleSlope": "(0028,1053)",
                "RescaleIntercept": "(0028,1052)", "PixelData": "(7FE0,0010)",
                "NumberOfFrames": "(0028,0008)", "SamplesPerPixel": "(0028,0002)"}
_FIX_SERIES = "pick one with series_uid='<UID>' (CLI: --series <UID>)"
_FIX_STRICT = "pass strict=True (CLI: --strict) to make this an error"
_short = short_name


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
        desc = _text(items[0].ds, "SeriesDescription") or "no description"
        parts.append(f"{uid or '<no SeriesInstanceUID>'} ('{desc}', {len(items)} slices)")
    if len(ordered) > _MAX_SERIES_LISTED:
        parts.append(f"and {len(ordered) - _MAX_SERIES_LISTED} more")
    return "; ".join(parts)


def _choose_series(path, images, series_uid):
    groups = {}
    for h in images:
        groups.setdefault(_text(h.ds, "SeriesInstanceUID"), []).append(h)
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
    for f, size, ds in items:
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
                    path, f"{key} {_TAG_NUMBERS[key]} of {_short(f, root)} is not a number "
                    f"(got {ds[key].value!r})",
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
        check_pixel_module(path, root, Header(f, size, ds))


def _check_uniform(path, what, items, root, key, fmt):
    values = Counter(key(h.ds) for h in items)
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
        acq = {str(h.ds.get("AcquisitionNumber", "")) for h in items} - {""}
        hint = (f" (the series holds {len(acq)} acquisitions, AcquisitionNumber "
                f"{', '.join(sorted(acq))}: e.g. several cardiac phases)") if len(acq) > 1 else ""
        raise ScanFileError(
            path, f"{dup.size} duplicated slice position(s) along the slice normal, first "
            f"at {d[k]:.4f} mm ({_short(items[k].path, root)} and {_short(items[k + 1].path, root)})"
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


def read_dicom(path, *, series_uid=None, require_rescale=True, hu_range=None, strict=False,
               check_hu=True):
    """Read one DICOM series into ``(values, origin_mm, spacing_mm, attrs)``.

    ``values`` is a float32 (z, y, x) array after RescaleSlope/Intercept;
    ``origin_mm`` and ``spacing_mm`` are (z, y, x) in patient LPS mm.
    ``hu_range``: (low, high) plausible HU (None: the default for BitsStored);
    ``check_hu=False`` skips that check (label images). ``strict``: files
    that are skipped, or signs of missing end slices, are errors.
    """
    root = path
    images, unreadable, others = read_headers(path)
    items = _choose_series(path, images, series_uid)
    skipped = check_unreadable(path, items, unreadable)
    skipped += [(h.path, "a DICOM file without an image, such as a DICOMDIR or a report")
                for h in others]
    notes = []
    if skipped:
        listed = ", ".join(f"{_short(f, root)} ({why})" for f, why in skipped[:5])
        more = "" if len(skipped) <= 5 else f" and {len(skipped) - 5} more"
        text = (f"skipped {len(skipped)} file(s) that are not DICOM images of the series: "
                f"{listed}{more}")
        if strict:
            raise ScanFileError(path, f"{text}; strict=True allows only slices of the series",
                                "remove the other files or read without strict=True")
        notes.append(text)
    _check_tags(path, root, items, require_rescale)
    _check_uniform(path, "pixel layouts (BitsAllocated, BitsStored, PixelRepresentation)",
                   items, root, lambda ds: (int(ds.BitsAllocated), int(ds.BitsStored),
                                            int(ds.PixelRepresentation)),
                   lambda v: f"{v[0]}/{v[1]}/{'signed' if v[2] else 'unsigned'}")
    _check_uniform(path, "image sizes (Rows x Columns)", items, root,
                   lambda ds: (int(ds.Rows), int(ds.Columns)), lambda v: f"{v[0]} x {v[1]}")
    _check_uniform(path, "PixelSpacing (mm)", items, root,
                   lambda ds: tuple(round(float(x), 6) for x in ds.PixelSpacing),
                   lambda v: f"{v[0]:g} x {v[1]:g}")
    _check_uniform(path, "ImageOrientationPatient", items, root,
                   lambda ds: tuple(round(float(x), 4) for x in ds.ImageOrientationPatient),
                   lambda v: "\\".join(f"{x:g}" for x in v))
    first = items[0].ds
    iop = _floats(first, "ImageOrientationPatient", 6)
    if iop is None:
        raise ScanFileError(path, "ImageOrientationPatient (0020,0037) is not 6 numbers",
                            "re-export the series with a valid CT image header")
    row, col = iop[:3], iop[3:]
    ((ax_r, sg_r), (ax_c, sg_c)), _ = _axial_axes(path, row, col)
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    ipp = []
    for f, _, ds in items:
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
    end_note = _missing_ends(items)
    if end_note and strict:
        raise ScanFileError(path, end_note, "restore the missing slice files, or read without "
                            "strict=True to score the slices present")
    notes += [end_note] if end_note else []
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
    for h in items:
        check_pixel_data(path, root, h, rows, cols)
    check_memory(path, len(items), rows, cols)
    vol = np.empty((len(items), rows, cols), dtype=np.float32)  # HU computed in float64
    for k, h in enumerate(items):
        vol[k] = decode(path, root, h, rows, cols, hu_range, check_range=check_hu)
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
    attrs = _attrs(path, items[0].ds, dz, n)
    attrs["n_skipped_files"] = len(skipped)
    if skipped:
        attrs["skipped_files"] = tuple(_short(f, root) for f, _ in skipped)
    for note in notes:
        warnings.warn(ScanFileWarning(f"{path}: {note}; {_FIX_STRICT}"), stacklevel=4)
    if notes:
        attrs["read_warnings"] = tuple(notes)
    origin = (float(z[0]), origin_yx[0], origin_yx[1])
    return (np.ascontiguousarray(vol), origin, (dz, spacing[1], spacing[0]), attrs)


def _missing_ends(items):
    """Why slices seem to be missing at the ends of the series, or None.

    Two signs, where the headers carry them: InstanceNumbers that run
    consecutively along the slice positions but start above 1, and an
    ImagesInAcquisition (one acquisition) larger than the number of slices.
    """
    n = len(items)
    inst = [_num(h.ds, "InstanceNumber") for h in items]
    if n > 1 and None not in inst:
        steps = set(np.diff(inst))
        if len(steps) == 1 and abs(steps.pop()) == 1 and min(inst) > 1:
            return (f"InstanceNumber runs {int(min(inst))} to {int(max(inst))} along the slice "
                    f"positions, so it starts at {int(min(inst))}, not 1: the first "
                    f"{int(min(inst)) - 1} slice(s) may be missing")
    expected = {_num(h.ds, "ImagesInAcquisition") for h in items}
    acquisitions = {_text(h.ds, "AcquisitionNumber") for h in items}
    if len(expected) == 1 and len(acquisitions) == 1:
        m = expected.pop()
        if m is not None and m > n:
            return (f"ImagesInAcquisition (0020,1002) is {int(m)}, but the series has {n} "
                    f"slice(s): {int(m) - n} may be missing")
    return None


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
