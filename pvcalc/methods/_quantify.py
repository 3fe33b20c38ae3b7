""":func:`quantify`: every partial-volume method on every lesion, one tidy table."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from pvcalc.calibration import Calibration
from pvcalc.methods._base import METHODS, NO_CALIBRATION, RESULT_COLUMNS, get_method
from pvcalc.methods._regions import RegionParams, ScanContext, build_regions
from pvcalc.rois import candidate_labels, spherical_roi_labels
from pvcalc.scan import scan_spacing_mm, validate_scan
from pvcalc.scoring._agatston import _validate_labels
from pvcalc.scoring._label_kernels import _labels_present

__all__ = ["quantify"]

#: Columns of a lesion table (``radius_z_mm`` optional).
ROI_COLUMNS = ("lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm", "radius_mm")

_NULLABLE = {"detected": "boolean", "converged": "boolean", "n_voxels": "Int64",
             "n_iter": "Int64"}


def quantify(scan, lesions, *, methods="all", calibration=None, params=None, mask=None,
             region_params=None) -> pd.DataFrame:
    """Volume, mass and score of every lesion by every partial-volume method.

    Parameters
    ----------
    scan : xarray.DataArray
        Scan in HU (:func:`pvcalc.make_scan`, :func:`pvcalc.read_scan`). Non-finite
        voxels are allowed: a lesion with one in its ROI gets a ``reason``
        instead of numbers; elsewhere they are left out of background shells.
    lesions : pandas.DataFrame, label image or "candidates"
        The lesions' regions of interest, one of:

        - a DataFrame with columns ``lesion`` (unique names), ``centre_z_mm``,
          ``centre_y_mm``, ``centre_x_mm``, ``radius_mm`` and optionally
          ``radius_z_mm``: spherical (ellipsoidal) ROIs, see
          :func:`pvcalc.rois.spherical_roi_labels`;
        - an integer label image on the scan's grid (xarray.DataArray or numpy
          array; for example :func:`pvcalc.rois.truth_roi_labels` or
          :func:`pvcalc.read_labels`), one lesion per label, named from
          ``attrs["label_names"]``;
        - the string ``"candidates"``: connected components at the region
          threshold (inside ``mask`` if given), see
          :func:`pvcalc.rois.candidate_labels`.
    methods : "all", str, sequence of str, or mapping, optional
        Which methods (:data:`pvcalc.methods.METHODS`) to run: all (default),
        one name, a list of names, or a mapping name -> parameters (a params
        dataclass instance or a dict of its fields).
    calibration : pvcalc.Calibration, optional
        Needed for every mass, and for the methods whose volume depends on
        c_HA (``integrated``, ``volume_fraction``, ``swcs``). Without it,
        asking for those by name is an error; with ``methods="all"`` their
        rows carry NaN and the reason, and the other methods report volume
        only (mass NaN, reason "no calibration: ...").
    params : mapping, optional
        Parameters by method name (as in the mapping form of ``methods``),
        for methods selected by ``methods``.
    mask : label image, optional
        Only with ``lesions="candidates"``: where candidates may lie.
    region_params : RegionParams or dict, optional
        How the core and background shell are built (threshold, connectivity,
        shell gap and width). Default :class:`pvcalc.methods.RegionParams`.

    Returns
    -------
    pandas.DataFrame
        One row per (lesion, method), lesions in the order given and methods
        in the order selected. Columns (glossary in docs/methods/index.md):
        ``lesion``, ``method``, ``volume_mm3``, ``mass_mg``, ``agatston``,
        ``threshold_hu``, ``detected``, ``background_hu``, ``background_sd_hu``,
        ``n_voxels``, ``peak_hu``, ``z_score``, ``n_iter``, ``converged``,
        ``reason``, then method-specific diagnostics. NaN (or NA) where a
        method does not define a quantity; ``reason`` explains every NaN
        volume or mass.

    Raises
    ------
    TypeError, ValueError
        Malformed input (scan, lesion table, method names, parameters), or a
        method that needs a calibration named without one. A problem of one
        lesion (empty ROI, outside the scan, at the border, overlapping
        another, NaN inside) is reported in its rows' ``reason`` instead.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pvcalc
    >>> a = np.full((9, 40, 40), 40.0); a[3:6, 18:22, 18:22] = 440.0   # a 3 x 4 x 4 cube
    >>> scan = pvcalc.make_scan(a, (1.0, 0.5, 0.5))
    >>> rois = pd.DataFrame({"lesion": ["a"], "centre_z_mm": [4.0], "centre_y_mm": [9.75],
    ...                      "centre_x_mm": [9.75], "radius_mm": [3.0]})
    >>> res = pvcalc.quantify(scan, rois, calibration=pvcalc.Calibration(0.5))
    >>> res[["method", "volume_mm3", "mass_mg"]].round(3).to_numpy().tolist()[:4]
    [['clinical', 12.0, 2.64], ['adaptive_groen', 12.0, 2.4],
     ['adaptive_background', 12.0, 2.4], ['integrated', 12.0, 2.4]]
    """
    grid_scan, finite = _check_scan(scan)
    if calibration is not None and not isinstance(calibration, Calibration):
        raise TypeError(
            "calibration must be a pvcalc.Calibration (e.g. pvcalc.Calibration(0.8) or "
            f"pvcalc.calibration.rod_calibration(scan, phantom)), got {type(calibration).__name__}")
    rp = _region_params(region_params)
    selected = _select_methods(methods, params, calibration)
    labels, names, order, outside, overlaps = _lesion_labels(grid_scan, lesions, mask, rp)
    context = ScanContext(scan=scan, labels=labels, label_names=names, finite=finite)
    regions = build_regions(context, order, rp, overlaps=overlaps, outside=outside)
    rows = [_row(region, spec, p, calibration) for region in regions for spec, p in selected]
    return _table(rows, [spec.name for spec, _ in selected])


def _check_scan(scan):
    if not isinstance(scan, xr.DataArray):
        validate_scan(scan)  # raises the TypeError with the fix
    values = scan.values
    if not np.issubdtype(values.dtype, np.number):
        raise TypeError(f"scan values must be numeric HU, got dtype {values.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        total = values.sum()
    if np.isfinite(total) or np.all(np.isfinite(values)):
        return validate_scan(scan), True
    grid = scan.where(np.isfinite(scan), -1024.0)   # only for the checks and the ROI grid
    return validate_scan(grid), False


def _region_params(value):
    if value is None:
        return RegionParams()
    if isinstance(value, RegionParams):
        return value
    if isinstance(value, Mapping):
        return RegionParams(**value)
    raise TypeError(f"region_params must be a RegionParams, a dict of its fields or None, "
                    f"got {type(value).__name__}")


def _select_methods(methods, params, calibration):
    explicit = True
    if isinstance(methods, str) and methods == "all":
        chosen, explicit = {name: None for name in METHODS}, False
    elif isinstance(methods, str):
        chosen = {methods: None}
    elif isinstance(methods, Mapping):
        chosen = dict(methods)
    elif isinstance(methods, (list, tuple)):
        chosen = {}
        for name in methods:
            if not isinstance(name, str):
                raise TypeError(f"method names must be strings, got {name!r}")
            if name in chosen:
                raise ValueError(f"method {name!r} is listed twice in methods")
            chosen[name] = None
    else:
        raise TypeError("methods must be 'all', a method name, a list of names or a mapping "
                        f"name -> parameters, got {type(methods).__name__}")
    if not chosen:
        raise ValueError("methods is empty; give at least one name of pvcalc.methods.METHODS")
    if params is not None:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping method name -> parameters, got "
                            f"{type(params).__name__}")
        for name, value in params.items():
            get_method(name)
            if name not in chosen:
                raise ValueError(f"params gives parameters for {name!r}, which is not among "
                                 f"the selected methods {list(chosen)}")
            if chosen[name] is not None:
                raise ValueError(f"parameters for {name!r} given twice (in methods and params)")
            chosen[name] = value
    out = []
    for name, value in chosen.items():
        spec = get_method(name)
        if explicit and spec.requires_calibration and calibration is None:
            raise ValueError(
                f"method {name!r} needs a calibration (its results depend on c_HA); pass "
                "calibration=pvcalc.Calibration(c_ha_mg_cm3_per_hu) or "
                "pvcalc.calibration.rod_calibration(scan, phantom), or leave it out of methods")
        out.append((spec, spec.make_params(value)))
    return out


def _lesion_labels(scan, lesions, mask, rp):
    if mask is not None and not (isinstance(lesions, str) and lesions == "candidates"):
        raise ValueError("mask is only used with lesions='candidates'; restrict a label image "
                         "or ROI table yourself")
    if isinstance(lesions, str):
        if lesions != "candidates":
            raise ValueError(f"lesions as a string must be 'candidates', got {lesions!r}")
        lab = candidate_labels(scan, threshold_hu=rp.threshold_hu, mask=mask)
        names = dict(lab.attrs["label_names"])
        return lab.values, names, sorted(names), {}, {}
    if isinstance(lesions, pd.DataFrame):
        return _table_labels(scan, lesions)
    if isinstance(lesions, (xr.DataArray, np.ndarray)):
        arr, names = _validate_labels(scan, lesions)
        order = sorted(set(_present(arr)) | set(names))
        names = {k: names.get(k, f"label_{k}") for k in order}
        return arr, names, order, {}, {}
    raise TypeError("lesions must be a DataFrame of ROIs, an integer label image or "
                    f"'candidates', got {type(lesions).__name__}")


def _table_labels(scan, table):
    missing = [c for c in ROI_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the lesion table lacks column(s) {missing}; it needs "
                         f"{list(ROI_COLUMNS)} (and optionally radius_z_mm)")
    names = [str(v) for v in table["lesion"]]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"lesion names must be unique, {dup} repeat")
    cols = list(ROI_COLUMNS[1:]) + (["radius_z_mm"] if "radius_z_mm" in table.columns else [])
    try:
        num = table[cols].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"lesion table columns {cols} must be numbers (mm)") from None
    centres, radius = num[:, :3], num[:, 3]
    radius_z = num[:, 4] if num.shape[1] > 4 else radius
    radius_z = np.where(np.isnan(radius_z), radius, radius_z)
    for what, v in (("centre", centres), ("radius_mm", radius), ("radius_z_mm", radius_z)):
        bad = ~np.isfinite(v) if v.ndim == 1 else ~np.isfinite(v).all(axis=1)
        if what != "centre":
            bad |= ~(v > 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"lesion {names[i]!r}: {what} must be finite"
                             f"{' and positive' if what != 'centre' else ''} (mm), got "
                             f"{v[i].tolist() if v.ndim > 1 else v[i]}")
    if not names:
        return np.zeros(scan.shape, dtype=np.int32), {}, [], {}, {}
    lab = spherical_roi_labels(scan, centres, radius, names=names, radius_z_mm=radius_z,
                               overlap="report")
    label_of = {n: i + 1 for i, n in enumerate(names)}
    overlaps = {}
    for a, b in lab.attrs["overlaps"]:
        for one, other in ((a, b), (b, a)):
            overlaps.setdefault(label_of[one], []).append(other)
    overlaps = {k: (f"overlapping ROIs: this ROI overlaps {sorted(set(v))}; shrink radius_mm "
                    "so that each voxel belongs to one ROI") for k, v in overlaps.items()}
    spacing = scan_spacing_mm(scan)
    lo = [float(scan.coords[d].values[0]) - 0.5 * s for d, s in zip("zyx", spacing)]
    hi = [float(scan.coords[d].values[-1]) + 0.5 * s for d, s in zip("zyx", spacing)]
    outside = {}
    for i, c in enumerate(centres):
        if any(not (a <= v <= b) for v, a, b in zip(c, lo, hi)):
            outside[i + 1] = (
                f"ROI outside the scan: centre (z, y, x) = ({c[0]:g}, {c[1]:g}, {c[2]:g}) mm "
                f"is outside the scan's extent z [{lo[0]:g}, {hi[0]:g}], y [{lo[1]:g}, "
                f"{hi[1]:g}], x [{lo[2]:g}, {hi[2]:g}] mm")
    arr = np.asarray(lab.values)
    present = set(_present(arr))
    for i in range(len(names)):
        if i + 1 in outside and i + 1 in present:
            del outside[i + 1]   # centre outside, but part of the ROI is in the scan
        elif i + 1 not in present and i + 1 not in outside:
            outside[i + 1] = (
                f"empty ROI: no voxel centre lies within radius_mm = {radius[i]:g} mm "
                f"(radius_z_mm = {radius_z[i]:g} mm) of the centre; use a radius of at least "
                "half the voxel spacing")
    return arr, dict(lab.attrs["label_names"]), list(range(1, len(names) + 1)), outside, overlaps


def _present(labels):
    """Label values > 0 present in an int32 label image (one pass, no sort)."""
    top = int(labels.max()) if labels.size else 0
    if top <= 0:
        return []
    if top < (1 << 20):   # a table of seen values (np.bincount would cast to int64 first)
        return (np.flatnonzero(_labels_present(labels, top)[1:]) + 1).tolist()
    return [int(v) for v in np.unique(labels) if v > 0]


def _row(region, spec, p, calibration):
    row = {"lesion": region.name, "method": spec.name,
           "background_hu": region.background_hu, "background_sd_hu": region.background_sd_hu}
    if region.reason:
        row["reason"] = region.reason
        return row
    if spec.requires_calibration and calibration is None:
        row["reason"] = (f"no calibration: {spec.name} needs one (its results depend on c_HA); "
                         "pass calibration=pvcalc.Calibration(...)")
        return row
    try:
        result = spec.compute(region, p, calibration)
    except Exception as exc:  # noqa: BLE001  (one lesion's failure must not stop the others)
        row["reason"] = f"{spec.name} failed: {type(exc).__name__}: {exc}"
        return row
    row.update(result)
    reason = str(row.get("reason") or "")
    for q in ("volume_mm3", "mass_mg"):
        v = row.get(q, float("nan"))
        if q in spec.defines and (v is None or (isinstance(v, float) and math.isnan(v))):
            if q == "mass_mg" and calibration is None and NO_CALIBRATION not in reason:
                reason = "; ".join(filter(None, [reason, NO_CALIBRATION]))
            elif not reason:
                reason = f"{spec.name} gave no {q} and no reason"
    row["reason"] = reason
    return row


def _table(rows, method_order):
    # diagnostics in method order, then in the order each method returns them, so
    # that the columns do not depend on the order of the lesions
    extra = []
    for name in method_order:
        for r in rows:
            if r["method"] == name:
                extra += [k for k in r if k not in RESULT_COLUMNS and k not in extra]
    df = pd.DataFrame(rows, columns=list(RESULT_COLUMNS) + extra)
    for col in ("volume_mm3", "mass_mg", "agatston", "threshold_hu", "background_hu",
                "background_sd_hu", "peak_hu", "z_score"):
        df[col] = df[col].astype(np.float64)
    for col, dtype in _NULLABLE.items():
        df[col] = df[col].astype(dtype)
    df["reason"] = df["reason"].fillna("").astype(str)
    df["lesion"] = df["lesion"].astype(str)
    df["method"] = df["method"].astype(str)
    return df
