"""Integer label images (artery territories, lesion masks) on a scan's grid."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from pvcalc.io._errors import ScanFileError, check_exists
from pvcalc.scan import DIMS, scan_spacing_mm, validate_scan

#: Default names of the common coronary labelling scheme (left main, left
#: anterior descending, left circumflex, right coronary artery).
CORONARY_LABEL_NAMES = {1: "LM", 2: "LAD", 3: "LCX", 4: "RCA"}

#: Label and scan coordinates must agree to this fraction of a voxel.
GRID_TOL_VOXELS = 0.01


def read_labels(path_or_array, *, like, names=None):
    """Read an integer label image on the same grid as a scan.

    Parameters
    ----------
    path_or_array : str, os.PathLike, array_like or xarray.DataArray
        A ``.nii``/``.nii.gz`` file, a DICOM folder or file holding an
        integer-valued series, a numpy ``.npy`` file, or an array of shape
        (Z, Y, X) (a DataArray must have dims ("z", "y", "x") and mm coords).
        0 means background; positive integers are labels.
    like : xarray.DataArray
        The scan whose grid the labels must match (shape and coordinates).
    names : dict of int to str, optional
        Label names, stored in ``attrs["label_names"]``. Default: the
        names in the file's pvcalc JSON sidecar if it has ``label_names``
        (as written by ``pvcalc simulate``), else
        :data:`CORONARY_LABEL_NAMES` (1 LM, 2 LAD, 3 LCX, 4 RCA); labels
        present in the image without a name are called ``label_<k>``.

    Returns
    -------
    labels : xarray.DataArray
        int32, dims ("z", "y", "x"), the coordinates of ``like``; attrs
        ``label_names`` (every named label plus every label present) and
        ``source_path`` for files.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ScanFileError
        A file whose grid differs from ``like`` (shape or coordinates, beyond
        1% of a voxel), or whose values are not non-negative integers.
    ValueError, TypeError
        The same problems for an array or DataArray input, or a bad ``names``.

    Examples
    --------
    >>> import numpy as np, pvcalc
    >>> scan = pvcalc.make_scan(np.zeros((2, 3, 3)), (3.0, 0.5, 0.5))
    >>> lab = np.zeros((2, 3, 3), dtype=int); lab[0, 1, 1] = 2
    >>> labels = pvcalc.read_labels(lab, like=scan)
    >>> str(labels.dtype), labels.attrs["label_names"][2]
    ('int32', 'LAD')
    """
    validate_scan(like, name="like")
    source = None
    if isinstance(path_or_array, (str, os.PathLike)):
        source = check_exists(path_or_array)
        values, coords, file_attrs = _read_file(source)
        if names is None and isinstance(file_attrs.get("label_names"), dict):
            # names written by pvcalc (e.g. `pvcalc simulate`) in the file's sidecar
            names = {int(k): str(v) for k, v in file_attrs["label_names"].items()}
        err = lambda problem, fix: ScanFileError(source, problem, fix)  # noqa: E731
    elif isinstance(path_or_array, xr.DataArray):
        da = path_or_array
        if tuple(da.dims) != DIMS:
            raise ValueError(f"labels must have dims {DIMS}, got {tuple(da.dims)}; "
                             "transpose or rename them")
        values = np.asarray(da.values)
        coords = [np.asarray(da.coords[d].values, dtype=np.float64) if d in da.coords
                  else None for d in DIMS]
        err = lambda problem, fix: ValueError(f"labels: {problem}; {fix}")  # noqa: E731
    else:
        values = np.asarray(path_or_array)
        coords = [None, None, None]
        err = lambda problem, fix: ValueError(f"labels: {problem}; {fix}")  # noqa: E731
    label_names = _check_names(names)
    values = _check_values(values, err)
    _check_grid(values.shape, coords, like, err)
    present = [int(v) for v in np.unique(values) if v > 0]
    out_names = dict(label_names)
    for k in present:
        out_names.setdefault(k, f"label_{k}")
    attrs = {"label_names": dict(sorted(out_names.items()))}
    if source is not None:
        attrs["source_path"] = os.path.abspath(source)
    return xr.DataArray(values, dims=DIMS,
                        coords={d: like.coords[d].values.copy() for d in DIMS}, attrs=attrs)


def _check_names(names):
    if names is None:
        return dict(CORONARY_LABEL_NAMES)
    if not isinstance(names, dict):
        raise TypeError(f"names must be a dict mapping label integers to names, e.g. "
                        f"{{1: 'LM'}}, got {type(names).__name__}")
    out = {}
    for k, v in names.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"names keys must be positive label integers, got {k!r}")
        if not isinstance(v, str):
            raise TypeError(f"names values must be str, got {v!r} for label {k}")
        out[int(k)] = v
    return out


def _read_file(path):
    if os.path.isfile(path) and path.lower().endswith(".npy"):
        try:
            values = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ScanFileError(path, f"cannot be read as a numpy .npy array ({exc})",
                                "save the labels with numpy.save") from exc
        return values, [None, None, None], {}
    from pvcalc.io._api import read_volume

    values, origin, spacing, attrs = read_volume(path, require_rescale=False, check_hu=False)
    coords = [origin[k] + spacing[k] * np.arange(values.shape[k]) for k in range(3)]
    return values, coords, attrs


def _check_values(values, err):
    if values.ndim != 3:
        raise err(f"label image must be 3D (z, y, x), got shape {values.shape}",
                  "give one label volume on the scan grid")
    if values.dtype == bool:
        return values.astype(np.int32)
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise err(f"label values must be integers, got dtype {values.dtype}",
                  "store labels as an integer image")
    if not np.all(np.isfinite(values)):
        raise err("label image contains NaN or infinite values",
                  "labels must be non-negative integers (0 = background)")
    if not np.issubdtype(values.dtype, np.integer):
        frac = values != np.round(values)
        if np.any(frac):
            example = float(values[frac].flat[0])
            raise err(f"label values must be integers, found {int(frac.sum())} non-integer "
                      f"value(s) such as {example:g}",
                      "save labels as integers (a resampled label image needs "
                      "nearest-neighbour interpolation)")
    if np.any(values < 0):
        raise err(f"label values must be non-negative, found minimum {values.min():g}",
                  "use 0 for background and positive integers for labels")
    if np.any(values > np.iinfo(np.int32).max):
        raise err("label values exceed the int32 range", "renumber the labels")
    return np.ascontiguousarray(values, dtype=np.int32)


def _check_grid(shape, coords, like, err):
    if tuple(shape) != tuple(like.shape):
        raise err(f"label grid differs from the scan: shape {tuple(shape)} (z, y, x) vs "
                  f"scan {tuple(like.shape)}",
                  "resample the labels onto the scan grid (nearest neighbour)")
    spacing = scan_spacing_mm(like)
    for k, d in enumerate(DIMS):
        c = coords[k]
        if c is None:
            continue
        ref = np.asarray(like.coords[d].values, dtype=np.float64)
        worst = float(np.max(np.abs(c - ref)))
        if worst > GRID_TOL_VOXELS * spacing[k]:
            raise err(f"label grid differs from the scan: {d} coordinates {c[0]:g} to "
                      f"{c[-1]:g} mm vs scan {ref[0]:g} to {ref[-1]:g} mm (off by up to "
                      f"{worst:.4g} mm)",
                      "resample the labels onto the scan grid (nearest neighbour)")
