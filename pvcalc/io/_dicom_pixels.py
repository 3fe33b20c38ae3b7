"""Pixel-module and rescale checks, and the decoding of one slice to HU.

Everything that can be checked from the headers is checked before any pixel
array is allocated: the bit layout, the rescale, the length of the pixel data
against Rows x Columns, and the memory the volume needs. After decoding, the
HU of every slice must lie in a plausible CT range, which catches a wrong
PixelRepresentation or rescale that would otherwise give silently wrong HU.
"""

from __future__ import annotations

import math
import os

import numpy as np
from pydicom.dataelem import RawDataElement

from pvcalc.io._dicom_files import PIXEL_DATA_TAG, UNDEFINED_LENGTH, short_name
from pvcalc.io._errors import ScanFileError
from pvcalc.scan import HU_LIMITS

#: Accepted RescaleSlope, HU per stored unit. CT scanners write 1; pvcalc's
#: writer uses powers of two from 2**-10 to 2. A slope of 0 or below, or far
#: outside this range, turns every voxel into the intercept, inverts the image
#: or overflows.
SLOPE_RANGE = (2.0 ** -12, 16.0)
#: Default lowest plausible CT number (HU): air is -1000 HU; noise of low-dose
#: scans reaches a few hundred HU below it. -2048 is the lowest value of
#: 12-bit signed storage.
HU_FLOOR = -2048.0
#: Default highest plausible CT number (HU) of 12-bit data (4096 codes).
HU_CEILING_12_BIT = 4095.0
_FIX_HEADER = "re-export the series with a valid header"


def default_hu_range(bits_stored):
    """(lowest, highest) plausible HU for data of ``bits_stored`` bits.

    12 bits or fewer: -2048 to 4095 HU. Wider data (extended CT scales for
    metal): up to the largest signed value of ``bits_stored`` bits, e.g.
    32767 HU for 16 bits.

    Examples
    --------
    >>> default_hu_range(12), default_hu_range(16)
    ((-2048.0, 4095.0), (-2048.0, 32767.0))
    """
    return HU_FLOOR, max(HU_CEILING_12_BIT, 2.0 ** (int(bits_stored) - 1) - 1)


def _int(ds, key, default=None):
    v = ds.get(key, default)
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def check_pixel_module(path, root, header):
    """Bit layout and rescale of one image header (nothing is decoded)."""
    ds, name = header.ds, short_name(header.path, root)
    bits = {k: _int(ds, k) for k in ("BitsAllocated", "BitsStored", "HighBit",
                                     "PixelRepresentation", "Rows", "Columns")}
    problems = []
    if bits["BitsAllocated"] not in (8, 16, 32):
        problems.append(f"BitsAllocated is {ds.get('BitsAllocated')!r} (8, 16 or 32 expected)")
    elif bits["BitsStored"] is None or not 1 <= bits["BitsStored"] <= bits["BitsAllocated"]:
        problems.append(f"BitsStored is {ds.get('BitsStored')!r} (1 to BitsAllocated "
                        f"{bits['BitsAllocated']} expected)")
    elif "HighBit" in ds and bits["HighBit"] != bits["BitsStored"] - 1:
        problems.append(f"HighBit is {ds.get('HighBit')!r}, not BitsStored - 1 = "
                        f"{bits['BitsStored'] - 1}")
    if bits["PixelRepresentation"] not in (0, 1):
        problems.append(f"PixelRepresentation is {ds.get('PixelRepresentation')!r} (0 unsigned "
                        "or 1 signed expected)")
    for key in ("Rows", "Columns"):
        if bits[key] is None or bits[key] < 1:
            problems.append(f"{key} is {ds.get(key)!r} (at least 1 expected)")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        problems.append(f"PhotometricInterpretation is {photometric!r} (a CT slice is "
                        "MONOCHROME2 or MONOCHROME1)")
    if problems:
        raise ScanFileError(path, f"pixel description of {name} is invalid: "
                            + "; ".join(problems), _FIX_HEADER)
    slope = ds.get("RescaleSlope")
    if slope not in (None, ""):
        try:
            value = float(slope)
        except (TypeError, ValueError):
            value = math.nan
        lo, hi = SLOPE_RANGE
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ScanFileError(
                path, f"RescaleSlope (0028,1053) of {name} is {slope!r}: HU = stored value x "
                f"RescaleSlope + RescaleIntercept needs a finite, positive slope between "
                f"2**-12 and {hi:g} HU per stored unit (CT scanners write 1); this one would "
                "make every HU wrong", "the header is damaged; re-export the series")
    intercept = ds.get("RescaleIntercept")
    if intercept not in (None, ""):
        try:
            ok = math.isfinite(float(intercept))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ScanFileError(path, f"RescaleIntercept (0028,1052) of {name} is not a finite "
                                f"number (got {intercept!r})", _FIX_HEADER)


def check_pixel_data(path, root, header, rows, cols):
    """The pixel data must hold Rows x Columns samples and lie inside the file."""
    ds, name = header.ds, short_name(header.path, root)
    if "PixelData" not in ds:
        raise ScanFileError(path, f"slice {name} lacks required tag(s) PixelData (7FE0,0010)",
                            "re-export the series with its pixel data")
    raw = ds.get_item(PIXEL_DATA_TAG, keep_deferred=True)
    if not isinstance(raw, RawDataElement):
        return
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    encapsulated = ts is not None and ts.is_compressed
    if raw.length == UNDEFINED_LENGTH:
        if not encapsulated:
            raise ScanFileError(path, f"PixelData (7FE0,0010) of {name} is encapsulated "
                                f"(compressed), but the transfer syntax {ts} is not",
                                "the file is damaged; re-export the series")
        return
    if raw.value_tell + raw.length > header.size:
        raise ScanFileError(
            path, f"pixel data of {name} is truncated: PixelData (7FE0,0010) claims "
            f"{raw.length} bytes but the file ends {raw.value_tell + raw.length - header.size} "
            "bytes short", "the file is damaged or truncated; re-export the series")
    if encapsulated:
        return
    bytes_per = int(ds.BitsAllocated) // 8
    expected = rows * cols * bytes_per
    if not expected <= raw.length <= expected + 1:  # + 1: padding to an even length
        raise ScanFileError(
            path, f"PixelData (7FE0,0010) of {name} holds {raw.length} bytes, but Rows x "
            f"Columns x BitsAllocated/8 = {rows} x {cols} x {bytes_per} = {expected} bytes",
            "Rows, Columns or BitsAllocated is damaged, or the file is truncated; re-export "
            "the series")


def check_memory(path, n, rows, cols):
    """Refuse a volume larger than the machine's memory before allocating it."""
    need = 4 * n * rows * cols + 16 * rows * cols  # float32 volume + float64 slice temporaries
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return
    if need > total:
        raise ScanFileError(
            path, f"the volume of {n} x {rows} x {cols} voxels needs {need / 2 ** 30:.1f} GiB "
            f"as float32, more than this machine's {total / 2 ** 30:.1f} GiB of memory",
            "check Rows and Columns (a damaged header?), or read a smaller series")


def _padding(ds, stored):
    """Voxels flagged as padding by PixelPaddingValue (and PixelPaddingRangeLimit)."""
    if "PixelPaddingValue" not in ds:
        return None
    try:
        a = int(ds.PixelPaddingValue)
        b = int(ds.get("PixelPaddingRangeLimit", a))
    except (TypeError, ValueError):
        return None
    lo, hi = min(a, b), max(a, b)
    return (stored >= lo) & (stored <= hi)


def check_hu(path, root, header, stored, hu, hu_range):
    """Raise if ``hu`` leaves ``hu_range`` (None: the default for BitsStored).

    Declared padding (PixelPaddingValue) and a single fill value below the
    range (padding outside the reconstruction circle that the header does not
    declare) are allowed.
    """
    ds, name = header.ds, short_name(header.path, root)
    bits = int(ds.get("BitsStored") or ds.BitsAllocated)
    lo, hi = default_hu_range(bits)
    if hu_range is not None:
        lo = lo if hu_range[0] is None else hu_range[0]
        hi = hi if hu_range[1] is None else hu_range[1]
    vmin, vmax = float(hu.min()), float(hu.max())
    if lo <= vmin and vmax <= hi:
        return
    bad = (hu < lo) | (hu > hi)
    pad = _padding(ds, stored)
    if pad is not None:
        bad &= ~pad
    below = hu[bad]
    if below.size == 0 or (np.all(below < lo) and np.all(below == below[0])):
        return
    vmin, vmax = float(below.min()), float(below.max())
    wide_lo, wide_hi = min(lo, math.floor(min(vmin, float(hu.min())))), max(hi, math.ceil(vmax))
    fix = (f"if these values are real, widen the range: read_scan(..., hu_range=({wide_lo:g}, "
           f"{wide_hi:g})) (CLI: --hu-range {wide_lo:g} {wide_hi:g})")
    if wide_lo < HU_LIMITS[0] or wide_hi > HU_LIMITS[1]:
        fix = (f"no CT scan holds such values (pvcalc accepts {HU_LIMITS[0]:g} to "
               f"{HU_LIMITS[1]:g} HU at most); the header is damaged: re-export the series")
    source = "" if hu_range is not None else f" for {bits}-bit data (BitsStored {bits})"
    raise ScanFileError(
        path, f"{int(bad.sum())} voxel(s) of {name} lie outside the plausible CT range "
        f"{lo:g} to {hi:g} HU{source}: from {vmin:g} to {vmax:g} HU with PixelRepresentation "
        f"{ds.get('PixelRepresentation')}, RescaleSlope {ds.get('RescaleSlope', 1)} and "
        f"RescaleIntercept {ds.get('RescaleIntercept', 0)} (a wrong PixelRepresentation, "
        "RescaleSlope or RescaleIntercept?)", fix)


def decode(path, root, header, rows, cols, hu_range, check_range=True):
    """One slice as float64 HU (stored x RescaleSlope + RescaleIntercept), checked."""
    ds, name = header.ds, short_name(header.path, root)
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom raises several kinds
        tname = getattr(ts, "name", None) or str(ts)
        fix = ("install a decoder (pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg, "
               "or python-gdcm) or decompress the files first (e.g. gdcmconv --raw, dcmdjpeg)"
               if ts is not None and ts.is_compressed else
               "the file is damaged or truncated; re-export the series")
        raise ScanFileError(
            path, f"pixel data of {name} cannot be decoded (transfer syntax "
            f"{tname}, {ts}): {' '.join(str(exc).split()) or type(exc).__name__}",
            fix) from exc
    if arr.shape != (rows, cols):
        raise ScanFileError(
            path, f"pixel data of {name} has shape {arr.shape}, but Rows x Columns "
            f"is {rows} x {cols}", "the file is damaged; re-export the series")
    slope = ds.get("RescaleSlope")
    intercept = ds.get("RescaleIntercept")
    slope = 1.0 if slope in (None, "") else float(slope)
    intercept = 0.0 if intercept in (None, "") else float(intercept)
    hu = arr.astype(np.float64) * slope + intercept
    if check_range:
        check_hu(path, root, header, arr, hu, hu_range)
    return hu
