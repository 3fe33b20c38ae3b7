"""The scan data model: one ``xarray.DataArray`` of HU on a uniform grid.

A scan is a float32 ``xarray.DataArray`` with dims ``("z", "y", "x")`` whose
coordinates are voxel centres in millimetres. Spacing and origin are derived
from the coordinates, never stored twice. Attributes: ``units`` ("HU"),
``kvp`` (kV), ``slice_thickness_mm`` (nominal reconstructed thickness, which
may differ from the slice increment for overlapping reconstructions), plus
whatever the source tells (``kernel``, ``manufacturer``, ``series_uid``, ...).
"""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from pvcalc._validate import positive_float

DIMS = ("z", "y", "x")

#: HU a scan may hold: the span of 16-bit CT storage at slope 1, from the int16
#: minimum (padding values of some scanners) to the uint16 maximum. Real CT
#: numbers lie far inside (air -1000 HU, dense bone about 2000 HU, extended
#: scales for metal up to about 30000 HU); values outside are not HU (another
#: unit, a wrong rescale, an overflow) and would make scores meaningless.
HU_LIMITS = (-32768.0, 65535.0)
#: Tube voltages accepted, kV: clinical CT uses 70-150 kV; the lower end leaves
#: room for small-animal and phantom work.
KVP_RANGE_KV = (40.0, 150.0)

#: Relative tolerance for deciding that coordinates are uniformly spaced.
#: DICOM positions are written with limited decimal precision, so a small
#: tolerance is needed; 1e-3 of the spacing is far below any real gap.
UNIFORM_RTOL = 1e-3


def make_scan(array, spacing_mm, *, origin_mm=None, kvp=120.0,
              slice_thickness_mm=None, **attrs) -> xr.DataArray:
    """Build a validated scan from a 3D array of HU values.

    Parameters
    ----------
    array : (Z, Y, X) array_like of float
        Hounsfield units, axial slices along the first axis.
    spacing_mm : float or sequence of 3 floats
        Voxel spacing (z, y, x) in mm; a scalar means isotropic voxels.
        The z spacing is the slice increment.
    origin_mm : sequence of 3 floats, optional
        Centre of voxel (0, 0, 0) in mm, (z, y, x). Default (0, 0, 0).
    kvp : float, optional
        Tube voltage in kV, within :data:`KVP_RANGE_KV` (40-150 kV). Default 120.
    slice_thickness_mm : float, optional
        Nominal reconstructed slice thickness in mm. Default: the z spacing
        (a contiguous reconstruction).
    **attrs
        Extra attributes kept on the scan (for example ``kernel``).

    Returns
    -------
    scan : xarray.DataArray
        float32 HU with dims ("z", "y", "x") and mm coordinates.

    Raises
    ------
    TypeError
        ``array`` is not real numbers (booleans, complex numbers and strings
        are refused: a mask or a complex image is not HU), or a spacing,
        origin, thickness or kVp is not a real number (``"3"`` or ``True``).
    ValueError
        Wrong shape, non-finite voxels or HU outside :data:`HU_LIMITS`
        (-32768 to 65535 HU), non-positive spacing or thickness, kVp outside
        :data:`KVP_RANGE_KV`.

    Examples
    --------
    >>> import numpy as np
    >>> scan = make_scan(np.zeros((2, 3, 4)), (3.0, 0.5, 0.5))
    >>> scan.dims, float(scan.attrs["slice_thickness_mm"])
    (('z', 'y', 'x'), 3.0)
    """
    arr = np.asarray(array)
    if arr.ndim != 3:
        raise ValueError(
            f"array must be 3D (z, y, x), but it is {arr.ndim}D with shape {arr.shape}; "
            "stack 2D slices along the first axis")
    _check_hu_dtype("array", arr.dtype)
    _check_hu_values("scan", arr)  # before the float32 cast, which could overflow to inf
    spacing = _three_positive("spacing_mm", spacing_mm)
    origin = (0.0, 0.0, 0.0) if origin_mm is None else _three_finite("origin_mm", origin_mm)
    if slice_thickness_mm is None:
        slice_thickness_mm = spacing[0]
    thickness = positive_float("slice_thickness_mm",
                               _number("slice_thickness_mm", slice_thickness_mm, "mm"),
                               unit="mm")
    kvp = _kvp("kvp", kvp)
    coords = {d: origin[i] + spacing[i] * np.arange(arr.shape[i], dtype=np.float64)
              for i, d in enumerate(DIMS)}
    # an axis with one voxel has no spacing in its coordinate: keep it as an attribute
    attrs = {**{f"spacing_{d}_mm": spacing[i] for i, d in enumerate(DIMS) if arr.shape[i] == 1},
             **attrs}
    scan = xr.DataArray(
        np.ascontiguousarray(arr, dtype=np.float32), dims=DIMS, coords=coords,
        attrs={"units": "HU", "kvp": kvp, "slice_thickness_mm": thickness, **attrs})
    validate_scan(scan)
    return scan


def validate_scan(scan, *, name="scan") -> xr.DataArray:
    """Check that ``scan`` follows the scan data model; return it unchanged.

    Raises ``TypeError`` or ``ValueError`` naming the problem and the fix:
    not a DataArray, wrong dims, fewer than one voxel, values that are not
    real numbers (bool, complex), NaN or infinite HU, HU outside
    :data:`HU_LIMITS`, missing, non-monotonic or non-uniform coordinates, zero
    or negative spacing, missing or invalid ``kvp`` (a number in
    :data:`KVP_RANGE_KV`) / ``slice_thickness_mm``.
    """
    if not isinstance(scan, xr.DataArray):
        raise TypeError(
            f"{name} must be an xarray.DataArray (build one with pvcalc.make_scan), "
            f"got {type(scan).__name__}")
    if tuple(scan.dims) != DIMS:
        raise ValueError(
            f"{name} must have dims {DIMS}, got {tuple(scan.dims)}; "
            f"use scan.transpose('z', 'y', 'x') or rename the dims")
    if min(scan.shape) < 1:
        raise ValueError(f"{name} is empty (shape {scan.shape})")
    values = scan.values
    _check_hu_dtype(f"{name} values", values.dtype)
    _check_hu_values(name, values)
    for d in DIMS:
        if d not in scan.coords:
            raise ValueError(
                f"{name} has no '{d}' coordinate; coordinates must be voxel centres in mm "
                "(build the scan with pvcalc.make_scan)")
        c = np.asarray(scan.coords[d].values, dtype=np.float64)
        if not np.all(np.isfinite(c)):
            raise ValueError(f"{name} '{d}' coordinate has NaN or infinite values")
        if c.size > 1:
            steps = np.diff(c)
            if np.any(steps <= 0):
                raise ValueError(
                    f"{name} '{d}' coordinate must increase strictly (zero or negative spacing "
                    f"found: min step {steps.min():.6g} mm); sort the scan with "
                    f"scan.sortby('{d}') and drop duplicated slices")
            if np.ptp(steps) > UNIFORM_RTOL * steps.mean():
                raise ValueError(
                    f"{name} '{d}' coordinate is not uniformly spaced (steps from "
                    f"{steps.min():.6g} to {steps.max():.6g} mm); resample onto a uniform grid "
                    "first, since spacing would otherwise be a guess")
    for key in ("kvp", "slice_thickness_mm"):
        if key not in scan.attrs:
            raise ValueError(
                f"{name} lacks the attribute '{key}'; set scan.attrs['{key}'] "
                "(pvcalc.make_scan sets it)")
        label = f"{name}.attrs['{key}']"
        if key == "kvp":
            _kvp(label, scan.attrs[key])
        else:
            positive_float(label, _number(label, scan.attrs[key], "mm"), unit="mm")
    return scan


def scan_spacing_mm(scan) -> tuple[float, float, float]:
    """Voxel spacing (z, y, x) in mm, derived from the coordinates.

    A single-voxel axis has no spacing in its coordinate; it is then taken from
    the attribute ``spacing_<dim>_mm`` if present, else from
    ``slice_thickness_mm`` for z, else an error.
    """
    out = []
    for d in DIMS:
        c = np.asarray(scan.coords[d].values, dtype=np.float64)
        if c.size > 1:
            out.append(float((c[-1] - c[0]) / (c.size - 1)))
        elif f"spacing_{d}_mm" in scan.attrs:
            out.append(float(scan.attrs[f"spacing_{d}_mm"]))
        elif d == "z":
            out.append(float(scan.attrs["slice_thickness_mm"]))
        else:
            raise ValueError(
                f"cannot derive the {d} spacing of a scan with one voxel along {d}; "
                f"set scan.attrs['spacing_{d}_mm']")
    return tuple(out)


def scan_origin_mm(scan) -> tuple[float, float, float]:
    """Centre of voxel (0, 0, 0) in mm, (z, y, x)."""
    return tuple(float(scan.coords[d].values[0]) for d in DIMS)


def _check_hu_values(name, values):
    """Every voxel finite and within HU_LIMITS."""
    if values.size == 0:
        return
    # streaming min and max instead of boolean temporaries of the volume's size;
    # NaN propagates into both, so finite extremes prove every voxel finite
    with np.errstate(invalid="ignore"):
        vmin, vmax = float(values.min()), float(values.max())
    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(
            f"{name} contains {bad} NaN or infinite voxel(s); HU must be finite. "
            "Replace them (e.g. scan.fillna(-1024)) before scoring")
    lo, hi = HU_LIMITS
    if vmin < lo or vmax > hi:
        bad = int(np.count_nonzero((values < lo) | (values > hi)))
        raise ValueError(
            f"{name} holds HU from {vmin:.6g} to {vmax:.6g} ({bad} voxel(s) outside "
            f"{lo:g} to {hi:g} HU, the range of 16-bit CT storage); such values are not CT "
            "numbers. Check the units (HU, not attenuation or mg/cm3) and the rescale, or "
            f"clip padding and overflows first (scan.clip({lo:g}, {hi:g}))")


def _check_hu_dtype(name, dtype):
    if dtype == np.bool_:
        raise TypeError(
            f"{name} must hold HU as real numbers, got a boolean array; a mask is not a scan "
            "(convert it explicitly, e.g. np.where(mask, 400.0, 0.0))")
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(
            f"{name} must hold HU as real numbers, got complex dtype {dtype}; take the part "
            "you mean explicitly (array.real or abs(array))")
    if not np.issubdtype(dtype, np.number):
        raise TypeError(f"{name} must be numeric HU (real numbers), got dtype {dtype}")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _number(name, value, unit):
    """``value`` unchanged if it is a real number; a bool or a string is a TypeError."""
    if not _is_number(value):
        raise TypeError(f"{name} must be a number in {unit}, got {type(value).__name__} "
                        f"{value!r} (strings and booleans are not numbers)")
    return value


def _kvp(name, value):
    lo, hi = KVP_RANGE_KV
    v = positive_float(name, _number(name, value, "kV"), what="tube voltage", unit="kV")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be a tube voltage within {lo:g}-{hi:g} kV (clinical "
                         f"CT: 70-150 kV), got {value!r}")
    return v


def _three_positive(name, value):
    vals = _three_finite(name, value)
    if any(v <= 0 for v in vals):
        raise ValueError(f"{name} must be positive in every axis, got {vals}")
    return vals


def _three_finite(name, value):
    expected = f"{name} must be a number or 3 numbers (z, y, x) in mm, got {value!r}"
    items = np.atleast_1d(np.asarray(value, dtype=object)) if value is not None else None
    if items is None or items.ndim != 1 or items.size not in (1, 3):
        raise ValueError(expected)
    if not all(_is_number(v) for v in items):
        raise TypeError(f"{expected} (strings and booleans are not numbers)")
    arr = items.astype(np.float64)
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return tuple(float(v) for v in arr)
