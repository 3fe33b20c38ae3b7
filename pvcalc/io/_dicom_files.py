"""Find the files of a DICOM series and parse their headers without surprises.

Only regular files are ever opened (a FIFO would block, a device never ends),
nothing is read past a file's size, and every header element the reader uses
is parsed here, inside one ``try``, so a damaged element is reported with the
file's name instead of surfacing later from pydicom's deferred parsing.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from typing import NamedTuple

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import UID

from pvcalc.io._errors import ScanFileError

#: Header values longer than this (bytes) are read only when used (the pixel data).
DEFER_BYTES = 4096
#: At most this many leading bytes of an unreadable file are searched for the
#: series' SeriesInstanceUID.
UID_SEARCH_BYTES = 1 << 20
#: Elements the reader uses, parsed (and so checked) as soon as a header is read.
HEADER_KEYWORDS = (
    "SOPClassUID", "Modality", "SeriesInstanceUID", "SeriesDescription", "StudyInstanceUID",
    "PatientID", "Manufacturer", "ManufacturerModelName", "ConvolutionKernel", "KVP",
    "SliceThickness", "SpacingBetweenSlices", "GantryDetectorTilt", "AcquisitionNumber",
    "InstanceNumber", "ImagesInAcquisition", "ImagePositionPatient", "ImageOrientationPatient",
    "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "Rows", "Columns",
    "PixelSpacing", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "PixelPaddingValue", "PixelPaddingRangeLimit", "RescaleIntercept", "RescaleSlope")
_META_KEYWORDS = ("MediaStorageSOPClassUID", "TransferSyntaxUID")
PIXEL_DATA_TAG = Tag(0x7FE0, 0x0010)
UNDEFINED_LENGTH = 0xFFFFFFFF


class Header(NamedTuple):
    """One parsed DICOM file: its path, size in bytes and dataset (pixels not read)."""

    path: str
    size: int
    ds: pydicom.Dataset


def short_name(path, root):
    """``path`` relative to the folder ``root`` (or its base name for a single file)."""
    return os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)


def _not_regular(f):
    """Why ``f`` cannot be read as a regular file (after following links), or None."""
    try:
        mode = os.stat(f).st_mode
    except OSError as exc:
        if os.path.islink(f):
            if exc.errno == errno.ELOOP:
                return "a symbolic link loop"
            return f"a dangling symbolic link (to {os.readlink(f)})"
        return f"cannot be examined ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
            "a character device" if stat.S_ISCHR(mode) else
            "a block device" if stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a special file")
    if os.path.islink(f):
        kind += f" (a symbolic link to {os.path.realpath(f)})"
    return kind


def list_files(path):
    """Regular files under ``path`` and the entries that are not.

    Returns ``(files, others)``: ``files`` is a sorted list of ``(path,
    size_bytes)`` of every regular file (recursively; links to files are
    followed, links to folders are not), ``others`` a list of ``(path, why)``
    for FIFOs, devices, sockets, dangling or looping links, linked folders and
    folders that cannot be listed. A single file is returned on its own.
    """
    if not os.path.isdir(path):
        why = _not_regular(path)
        if why is not None:
            raise ScanFileError(path, f"is {why}, not a regular file",
                                "point to a DICOM file, a DICOM series folder or a NIfTI file")
        return [(path, os.path.getsize(path))], []
    files, others = [], []

    def unlistable(err):
        others.append((err.filename, f"a folder that cannot be listed ({err.strerror})"))

    for root, dirs, names in os.walk(path, onerror=unlistable):
        dirs.sort()
        for d in dirs:
            if os.path.islink(os.path.join(root, d)):
                others.append((os.path.join(root, d),
                               "a symbolic link to a folder (not followed)"))
        for name in sorted(names):
            f = os.path.join(root, name)
            why = _not_regular(f)
            if why is None:
                files.append((f, os.path.getsize(f)))
            else:
                others.append((f, f"{why}, not a regular file"))
    return files, others


class _Damaged(Exception):
    pass


def _tag_text(tag):
    return f"({tag.group:04X},{tag.element:04X})"


def _parse_elements(ds, keywords, size):
    """Convert the elements the reader uses; raise _Damaged naming the bad one."""
    for kw in keywords:
        tag = Tag(kw)
        if tag not in ds:
            continue
        raw = ds.get_item(tag, keep_deferred=True)
        if isinstance(raw, RawDataElement) and raw.length != UNDEFINED_LENGTH \
                and raw.value_tell + raw.length > size:
            raise _Damaged(f"element {kw} {_tag_text(tag)} claims {raw.length} bytes, past the "
                           f"end of the file ({size} bytes)")
        try:
            _ = ds[tag].value
        except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds
            raise _Damaged(f"element {kw} {_tag_text(tag)} cannot be parsed: "
                           f"{' '.join(str(exc).split())}") from None


def _parse(f, size):
    """("image" | "other", Header) for a parsed file, else ("unreadable" | "damaged", why)."""
    if size == 0:
        return "unreadable", "empty (0 bytes)"
    try:
        ds = pydicom.dcmread(f, defer_size=DEFER_BYTES)
    except InvalidDicomError:
        return "unreadable", "not DICOM: no 'DICM' marker after a 128-byte preamble"
    except Exception as exc:  # noqa: BLE001 - a DICOM file pydicom cannot parse
        return "damaged", " ".join(str(exc).split()) or type(exc).__name__
    try:
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            _parse_elements(meta, _META_KEYWORDS, size)
            ts = meta.get("TransferSyntaxUID")
            if ts is not None and not UID(str(ts)).is_transfer_syntax:
                raise _Damaged(f"TransferSyntaxUID {str(ts) or '(empty)'} is not a DICOM "
                               "transfer syntax")
        _parse_elements(ds, HEADER_KEYWORDS, size)
        pixels = ds.get_item(PIXEL_DATA_TAG, keep_deferred=True)
        if isinstance(pixels, RawDataElement) and pixels.value_tell > size:
            raise _Damaged("the pixel data start past the end of the file")
    except _Damaged as exc:
        return "damaged", str(exc)
    header = Header(f, size, ds)
    if "Rows" in ds and "Columns" in ds:
        return "image", header
    sop_class = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    sop_class = sop_class if sop_class is not None else ds.get("SOPClassUID")
    if sop_class is None:
        return "damaged", "a DICOM file without a SOP Class UID (truncated?)"
    name = str(getattr(sop_class, "name", ""))
    if "Image Storage" in name:
        return "damaged", f"a {name} file without Rows/Columns (truncated?)"
    return "other", header


def read_headers(path):
    """Parse every file under ``path``.

    Returns ``(images, unreadable, others)``: image Headers; ``(path, why)`` of
    entries that are not DICOM at all (not regular, empty, no DICM marker); and
    DICOM files without an image (DICOMDIR, reports). A file that is DICOM but
    damaged raises ScanFileError, as does a folder without any DICOM image.
    """
    files, unreadable = list_files(path)
    if not files and not unreadable:
        raise ScanFileError(path, "the folder is empty (no files in it or its subfolders)",
                            "point to a folder that holds a DICOM series")
    images, others, damaged = [], [], []
    for f, size in files:
        kind, what = _parse(f, size)
        {"image": images, "other": others, "unreadable": unreadable}.get(
            kind, damaged).append(what if kind in ("image", "other") else (f, what))
    if damaged:
        f, why = damaged[0]
        raise ScanFileError(
            path, f"{len(damaged)} DICOM file(s) cannot be parsed, e.g. {short_name(f, path)}: "
            f"{why}", "remove or re-export the damaged file(s); a missing slice would make the "
            "volume wrong")
    if not images:
        if others:
            names = ", ".join(short_name(h.path, path) for h in others[:3])
            raise ScanFileError(
                path, f"{len(others)} DICOM file(s) found but none is an image "
                f"(e.g. {names}: no Rows/Columns, such as a DICOMDIR or a report)",
                "point to the folder that holds the image slices")
        listed = [short_name(f, path) + ("" if why.startswith("not DICOM") else f" ({why})")
                  for f, why in unreadable[:3]]
        more = "" if len(unreadable) <= 3 else f" and {len(unreadable) - 3} more"
        raise ScanFileError(
            path, f"no DICOM files found among {len(unreadable)} file(s) ({', '.join(listed)}"
            f"{more}); a DICOM file starts with a 128-byte preamble and 'DICM'",
            "point to a DICOM series folder or file, or to a .nii/.nii.gz file")
    return images, unreadable, others


def _name_pattern(f):
    """A file name with every run of digits replaced: slice_00012.dcm -> slice_#.dcm."""
    return re.sub(r"\d+", "#", os.path.basename(f).lower())


def _extension(f):
    ext = os.path.splitext(f)[1].lower()
    return ext if re.search("[a-z]", ext) else ""  # '.1234' of a UID-named file is no extension


def _carries_uid(f, uids):
    if _not_regular(f) is not None or not uids:
        return False
    with open(f, "rb") as fh:
        head = fh.read(min(os.path.getsize(f), UID_SEARCH_BYTES))
    return any(uid.encode("ascii", "ignore") in head for uid in uids)


def check_unreadable(path, series, unreadable):
    """Raise for an unreadable entry that looks like a slice of ``series``.

    An entry is taken for a lost slice when its name has the extension or the
    name pattern (digits aside) of the series' files, or when its first bytes
    hold the series' SeriesInstanceUID. Returns the entries that are plainly
    not part of the series.
    """
    exts = {_extension(h.path) for h in series} - {""}
    patterns = {_name_pattern(h.path) for h in series}
    uids = {str(h.ds.get("SeriesInstanceUID", "")) for h in series} - {""}
    lost, plain = [], []
    for f, why in unreadable:
        if _extension(f) in exts or _name_pattern(f) in patterns:
            lost.append((f, why, "it is named like the slices of the series"))
        elif _carries_uid(f, uids):
            lost.append((f, why, "it holds the series' SeriesInstanceUID"))
        else:
            plain.append((f, why))
    if lost:
        f, why, because = lost[0]
        more = f" (and {len(lost) - 1} more such file(s))" if len(lost) > 1 else ""
        raise ScanFileError(
            path, f"{short_name(f, path)} cannot be read: it is {why}, but {because}, so a "
            f"slice may be missing{more}",
            "restore or re-export the file, or remove it if it is not part of the series")
    return plain
