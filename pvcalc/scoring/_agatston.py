"""Clinical calcium scoring: :func:`score` (Agatston, volume and mass)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pvcalc.calibration import Calibration
from pvcalc.scan import DIMS, scan_spacing_mm, validate_scan
from pvcalc.scoring._label_kernels import (
    _component_stats_parallel,
    _component_stats_serial,
    _count_runs_parallel,
    _count_runs_serial,
    _fill_runs_parallel,
    _fill_runs_serial,
    _isotropic_counts,
    _labels_present,
    _link_slices,
    _paint_components,
)
from pvcalc.scoring._presets import resolve_preset
from pvcalc.scoring._result import ScoreResult, ScoreTotal
from pvcalc.scoring._risk import RISK_SCHEMES, risk_category

#: Reference slice thickness of the Agatston score (mm).
AGATSTON_SLICE_MM = 3.0
#: Relative tolerance of the minimum-area comparison (pixel areas are rarely
#: exact in binary floating point: 4 x 0.5 x 0.5 mm must count as 1 mm2).
_AREA_RTOL = 1e-9


def score(scan, *, labels=None, preset="standard", calibration=None,
          risk_scheme="standard", parallel=False, **overrides) -> ScoreResult:
    """Agatston, volume and mass scores of a scan, per lesion, per label and in total.

    Parameters
    ----------
    scan : xarray.DataArray
        Scan in HU with dims ("z", "y", "x") and mm coordinates
        (:func:`pvcalc.make_scan`, :func:`pvcalc.read_scan`). Its ``kvp``
        attribute selects thresholds for the kVp-adjusted presets; its
        ``slice_thickness_mm`` attribute is used by ``thickness_source="slice_thickness"``.
    labels : (Z, Y, X) int array or xarray.DataArray, optional
        Label image on the scan's grid; only voxels with label > 0 are scored,
        and lesions never cross a label boundary (a calcification spanning two
        labels becomes one lesion per label). A DataArray must have the scan's
        dims and coordinates; ``labels.attrs["label_names"]`` (dict label ->
        name, or a list indexed by label) names the rows of ``by_label``.
    preset : str or ScoringPreset, optional
        Named convention from :data:`pvcalc.PRESETS` (default "standard").
    calibration : Calibration, optional
        Needed for the mass score. Without it the result has no ``mass_mg``
        column and ``result.total.mass_mg`` raises ``ValueError``.
    risk_scheme : str, optional
        Scheme of :func:`pvcalc.risk_category` for ``total.risk_category``.
    parallel : bool, optional
        Run the labelling kernels in parallel over slices (numba threads).
        Default False: threads pay off only for large scans on otherwise idle
        cores; inside a study that already runs one scan per core they make
        things slower (docs/scoring.md, "Performance", has the measurements).
        Results are identical.
    **overrides
        Any :class:`ScoringPreset` field, e.g. ``connectivity=4``, ``min_area_mm2=0``.

    Returns
    -------
    ScoreResult
        ``.lesions`` (one row per 2D lesion, i.e. per connected component in
        an axial slice, with a ``lesion_3d`` id), ``.by_label``, ``.total``.

    Notes
    -----
    For each scored 2D lesion with n voxels, peak HU p and HU sum S, on a grid
    with pixel size dy x dx and slice increment dz (all mm):

    - area_mm2 = n dy dx; weight w = 1, 2, 3, 4 as p reaches the cut-offs
      (200, 300, 400 HU at 120 kVp);
    - agatston = area_mm2 x w x f, with slice factor f = dz / 3 mm
      (``thickness_source="increment"``), slice_thickness / 3 mm, or 1 after
      resampling to 3 mm slabs or without normalisation;
    - volume_mm3 = n dy dx dz;
    - mass_mg = c_HA (S - n HU_ref) dy dx dz / 1000 (McCollough et al. 2007).

    ``thickness_source="resample_3mm"`` rebins slices to contiguous 3 mm slabs
    starting at the lower edge of the first slice: each slab is the
    overlap-weighted mean of the original slices, each taken to fill its
    increment (a box slice profile; an incomplete last slab averages what it
    covers). Labels follow the original slice holding the slab centre.
    ``volume_method="isotropic"`` interpolates linearly along z to m = round(dz
    / s) sub-slices per slice (s: ``isotropic_spacing_mm``, default the mean
    pixel size; in-plane pixels are kept), thresholds them and gives each
    sub-voxel above threshold to the 2D lesion of the nearer bracketing voxel
    (or the other one if the nearer is not calcium).

    References
    ----------
    Agatston AS et al. Quantification of coronary artery calcium using
    ultrafast computed tomography. J Am Coll Cardiol 1990;15:827-832.
    doi:10.1016/0735-1097(90)90282-T

    van Ooijen PMA et al. Influence of scoring parameter settings on Agatston
    and volume scores for coronary calcification. Eur Radiol 2005;15:102-110.
    doi:10.1007/s00330-004-2479-x

    Examples
    --------
    >>> import numpy as np, pvcalc
    >>> a = np.zeros((2, 10, 10), dtype=np.float32)
    >>> a[0, 2:4, 2:4] = 250.0          # 4 pixels of 0.5 x 0.5 mm = 1 mm2, weight 2
    >>> scan = pvcalc.make_scan(a, (3.0, 0.5, 0.5))
    >>> res = pvcalc.score(scan)
    >>> res.total.agatston, res.total.volume_mm3, res.total.risk_category
    (2.0, 3.0, '1-10')
    >>> res.lesions[["slice_index", "area_mm2", "peak_hu", "weight"]].to_numpy().tolist()
    [[0.0, 1.0, 250.0, 2.0]]
    """
    validate_scan(scan)
    p = resolve_preset(preset, **overrides)
    _check_options(calibration, risk_scheme)
    lab, label_names = _validate_labels(scan, labels)
    vol, lab, zc, (dz, dy, dx), factor = _scoring_grid(scan, lab, p)
    thr, cut = p.thresholds_for_kvp(float(scan.attrs["kvp"]))
    if calibration is not None and calibration.mass_reference_hu >= thr:
        raise ValueError(
            f"calibration.mass_reference_hu = {calibration.mass_reference_hu:g} HU is not below "
            f"the calcium threshold {thr:g} HU, so calcium voxels would get zero or negative "
            "mass; use 0 or the water rod's mean HU")

    c = label_components(vol, lab, thr, inclusive=p.threshold_inclusive,
                         connectivity=p.connectivity, parallel=bool(parallel))
    keep = _kept_components(c, p, dy * dx)
    weight = _density_weights(c, p, cut)
    iso = None
    if p.volume_method == "isotropic":
        iso = _isotropic_volumes(vol, c, p, thr, (dz, dy, dx))

    origin_yx = (float(scan.coords["y"].values[0]), float(scan.coords["x"].values[0]))
    lesions = _lesion_table(c, np.flatnonzero(keep), weight, factor, iso, calibration,
                            lab is not None, label_names, zc, origin_yx, (dz, dy, dx))
    by_label = _by_label(lesions, lab, label_names, iso is not None, calibration is not None)
    total = _total(lesions, iso is not None, calibration is not None, risk_scheme)
    return ScoreResult(lesions=lesions, by_label=by_label, total=total, preset=p,
                       threshold_hu=float(thr), weight_cutoffs_hu=tuple(cut),
                       slice_factor=float(factor), spacing_mm=(dz, dy, dx),
                       calibration=calibration)


# --- stages of score() ----------------------------------------------------------------

def _check_options(calibration, risk_scheme):
    if calibration is not None and not isinstance(calibration, Calibration):
        raise TypeError(
            "calibration must be a pvcalc.Calibration (e.g. Calibration(0.8) or "
            f"Calibration.from_rods(...)), got {type(calibration).__name__}")
    if risk_scheme not in RISK_SCHEMES:
        raise ValueError(
            f"unknown risk_scheme {risk_scheme!r}; valid schemes are {sorted(RISK_SCHEMES)}")


def _scoring_grid(scan, lab, p):
    """HU volume, labels, slice centres and spacing to score on, and the slice factor."""
    vol = np.ascontiguousarray(scan.values, dtype=np.float32)
    dz, dy, dx = scan_spacing_mm(scan)
    zc = np.asarray(scan.coords["z"].values, dtype=np.float64)
    if p.thickness_source == "resample_3mm":
        vol, lab, zc, dz = _resample_3mm(vol, lab, zc, dz)
        factor = 1.0
    elif p.thickness_source == "increment":
        factor = dz / AGATSTON_SLICE_MM
    else:
        factor = float(scan.attrs["slice_thickness_mm"]) / AGATSTON_SLICE_MM
    if not p.slice_normalisation:
        factor = 1.0
    return vol, lab, zc, (dz, dy, dx), factor


def _kept_components(c, p, pixel_mm2):
    """Which 2D components pass the minimum size (of themselves or of their 3D lesion)."""
    n = c["n_voxels"]
    lesion3d = c["lesion_3d"]
    if p.lesion_dimensionality == "2d":
        return (n * pixel_mm2 >= p.min_area_mm2 * (1 - _AREA_RTOL)) & (n >= p.min_voxels)
    n_l = np.bincount(lesion3d, weights=n, minlength=_n_lesions_3d(c))
    keep_l = (n_l * pixel_mm2 >= p.min_area_mm2 * (1 - _AREA_RTOL)) & (n_l >= p.min_voxels)
    return keep_l[lesion3d]


def _density_weights(c, p, cut):
    """Agatston weight 1-4 of every 2D component, from its own or its 3D lesion's peak."""
    peak = c["peak_hu"]
    if p.weight_from == "lesion_3d":
        lesion3d = c["lesion_3d"]
        peak_l = np.full(_n_lesions_3d(c), -np.inf)
        np.maximum.at(peak_l, lesion3d, peak)
        peak = peak_l[lesion3d]
    cut_arr = np.asarray(cut, dtype=np.float64)
    if p.weight_cutoffs_inclusive:
        return 1 + (peak[:, None] >= cut_arr[None, :]).sum(axis=1)
    return 1 + (peak[:, None] > cut_arr[None, :]).sum(axis=1)


def _n_lesions_3d(c):
    return int(c["lesion_3d"].max()) + 1 if c["n_voxels"].size else 0


def _isotropic_volumes(vol, c, p, thr, spacing):
    """Volume (mm3) of every 2D component after linear interpolation along z."""
    dz, dy, dx = spacing
    s = p.isotropic_spacing_mm or 0.5 * (dy + dx)
    m = max(1, int(round(dz / s)))
    n_comp = c["n_voxels"].size
    cmap = component_map(c, vol.shape)
    counts = _isotropic_counts(vol, cmap, c["row_counts"], float(thr),
                               not p.threshold_inclusive, m, n_comp)
    return counts * (dy * dx * dz / m)


def _lesion_table(c, idx, weight, factor, iso, calibration, has_labels, label_names, zc,
                  origin_yx, spacing):
    """One row per kept 2D lesion (``idx``: the kept components, in raster order)."""
    dz, dy, dx = spacing
    pixel_mm2 = dy * dx
    voxel_mm3 = pixel_mm2 * dz
    area = c["n_voxels"] * pixel_mm2
    k = idx.size
    sl = c["slice_index"][idx]
    nk = c["n_voxels"][idx].astype(np.int64)
    _, l3 = np.unique(c["lesion_3d"][idx], return_inverse=True)  # 0..k3-1, order of first row
    cols = {
        "lesion": np.arange(k, dtype=np.int64),
        "lesion_3d": l3.astype(np.int64).reshape(-1),
        "label": c["label"][idx].astype(np.int64),
    }
    if has_labels:
        cols["label_name"] = [label_names.get(int(v), "") for v in cols["label"]]
    z_mm = zc[sl] if k else np.zeros(0)
    cols.update({
        "slice_index": sl.astype(np.int64),
        "z_mm": z_mm,
        "n_voxels": nk,
        "area_mm2": area[idx],
        "peak_hu": c["peak_hu"][idx],
        "mean_hu": c["hu_sum"][idx] / np.maximum(nk, 1),
        "weight": weight[idx].astype(np.int64),
        "agatston": area[idx] * weight[idx] * factor,
        "volume_mm3": nk * voxel_mm3,
    })
    if iso is not None:
        cols["volume_iso_mm3"] = iso[idx]
    if calibration is not None:
        cols["mass_mg"] = calibration.mass_mg(hu_sum=c["hu_sum"][idx],
                                              voxel_volume_mm3=voxel_mm3, n_voxels=nk)
        cols["mass_mg"] = np.asarray(cols["mass_mg"], dtype=np.float64).reshape(-1)
    y0, x0 = origin_yx
    cols.update({
        "centroid_z_mm": z_mm,
        "centroid_y_mm": y0 + dy * c["sum_y"][idx] / np.maximum(nk, 1),
        "centroid_x_mm": x0 + dx * c["sum_x"][idx] / np.maximum(nk, 1),
    })
    return pd.DataFrame(cols)


def _total(lesions, has_iso, has_mass, risk_scheme):
    ag = float(lesions["agatston"].sum())
    k = len(lesions)
    return ScoreTotal(
        agatston=ag, volume_mm3=float(lesions["volume_mm3"].sum()),
        mass_mg=float(lesions["mass_mg"].sum()) if has_mass else None,
        volume_iso_mm3=float(lesions["volume_iso_mm3"].sum()) if has_iso else None,
        n_lesions=k, n_lesions_3d=int(lesions["lesion_3d"].max()) + 1 if k else 0,
        risk_category=risk_category(ag, risk_scheme), risk_scheme=risk_scheme)


def float32_threshold(threshold_hu, inclusive=True):
    """Smallest float32 HU that counts as calcium, so ``v >= t`` is exact on float32.

    Examples
    --------
    >>> float(float32_threshold(130.0)), float(float32_threshold(130.0, inclusive=False)) > 130
    (130.0, True)
    """
    t = np.float32(threshold_hu)
    if (inclusive and float(t) < threshold_hu) or (not inclusive and float(t) <= threshold_hu):
        t = np.nextafter(t, np.float32(np.inf))
    return np.float32(t)


def label_components(vol, lab, threshold_hu, *, inclusive=True, connectivity=8, parallel=False):
    """2D connected components of calcium voxels per slice, with 3D links.

    Thin wrapper over the numba kernels, for code that has already validated
    its inputs. ``vol``: C-contiguous float32 (Z, Y, X) HU; ``lab``: int32 of the
    same shape or None. Returns a dict of per-component arrays in raster order
    of each component's first voxel (slice by slice): ``n_voxels``,
    ``hu_sum``, ``peak_hu``, ``sum_y``/``sum_x`` (voxel index sums),
    ``label``, ``slice_index``, ``lesion_3d``, plus run arrays used internally.
    ``parallel``: use the prange kernels (identical results).
    """
    count_runs = _count_runs_parallel if parallel else _count_runs_serial
    fill_runs = _fill_runs_parallel if parallel else _fill_runs_serial
    component_stats = _component_stats_parallel if parallel else _component_stats_serial
    has_labels = lab is not None
    lab_arr = lab if has_labels else np.zeros((1, 1, 1), dtype=np.int32)
    thr32 = float32_threshold(threshold_hu, inclusive)
    conn8 = connectivity == 8
    counts = count_runs(vol, lab_arr, has_labels, thr32)
    row_start = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts.ravel(), out=row_start[1:])
    x0, x1, rlab, rsum, rmax, comp_local, n_comp = fill_runs(
        vol, lab_arr, has_labels, thr32, row_start, conn8)
    comp_start = np.zeros(n_comp.size + 1, dtype=np.int64)
    np.cumsum(n_comp, out=comp_start[1:])
    ny = vol.shape[1]
    cnt, hu_sum, peak, sum_y, sum_x, label, slice_index, run_comp = component_stats(
        row_start, ny, x0, x1, rlab, rsum, rmax, comp_local, comp_start)
    lesion = _link_slices(row_start, vol.shape[0], ny, x0, x1, rlab, run_comp,
                          int(comp_start[-1]), conn8)
    return {"n_voxels": cnt, "hu_sum": hu_sum, "peak_hu": peak, "sum_y": sum_y,
            "sum_x": sum_x, "label": label, "slice_index": slice_index,
            "lesion_3d": lesion, "row_start": row_start, "row_counts": counts,
            "run_x0": x0, "run_x1": x1, "run_comp": run_comp}


def component_map(c, shape, keep=None):
    """Dense int32 map of the components found by :func:`label_components`.

    ``c``: the dict returned by :func:`label_components` for a volume of
    ``shape`` (Z, Y, X); ``keep``: boolean per component (default all). Each
    calcium voxel of a kept component holds the component's index, every other
    voxel -1.
    """
    if keep is None:
        keep = np.ones(c["n_voxels"].size, dtype=np.bool_)
    return _paint_components(shape[0], shape[1], shape[2], c["row_start"], c["run_x0"],
                             c["run_x1"], c["run_comp"], np.ascontiguousarray(keep, np.bool_))


def _by_label(lesions, lab, label_names, has_iso, has_mass):
    if lab is None:
        ids = np.array([0])
        names = ["all"]
    else:
        top = int(lab.max()) if lab.size else 0
        if top < (1 << 20):  # one pass instead of sorting the volume
            present = np.flatnonzero(_labels_present(lab, top))
        else:
            present = np.unique(lab)
        ids = np.union1d(present[present > 0], np.array(sorted(label_names), dtype=np.int64))
        names = [label_names.get(int(i), "") for i in ids]
    pos = np.searchsorted(ids, lesions["label"].to_numpy())
    nl = ids.size
    out = {"label": ids.astype(np.int64), "label_name": names,
           "n_lesions": np.bincount(pos, minlength=nl).astype(np.int64)}
    l3 = lesions["lesion_3d"].to_numpy()
    out["n_lesions_3d"] = np.array(
        [np.unique(l3[pos == i]).size for i in range(nl)], dtype=np.int64)
    cols = ["agatston", "volume_mm3"] + (["volume_iso_mm3"] if has_iso else []) + \
        (["mass_mg"] if has_mass else [])
    for col in cols:
        out[col] = np.bincount(pos, weights=lesions[col].to_numpy(), minlength=nl)
    return pd.DataFrame(out)


def _validate_labels(scan, labels):
    if labels is None:
        return None, {}
    names = {}
    if isinstance(labels, xr.DataArray):
        if tuple(labels.dims) != DIMS:
            raise ValueError(
                f"labels must have dims {DIMS} like the scan, got {tuple(labels.dims)}; "
                "use labels.transpose('z', 'y', 'x')")
        if labels.shape != scan.shape:
            raise ValueError(
                f"labels have shape {labels.shape} but the scan has shape {scan.shape}; "
                "the label image must be on the scan's grid (resample it first)")
        for d in DIMS:
            if d in labels.coords:
                a = np.asarray(labels.coords[d].values, dtype=np.float64)
                b = np.asarray(scan.coords[d].values, dtype=np.float64)
                tol = 1e-3 * (np.abs(np.diff(b)).mean() if b.size > 1 else 1.0)
                if np.max(np.abs(a - b)) > tol:
                    raise ValueError(
                        f"labels are on a different grid: their '{d}' coordinate differs from "
                        f"the scan's by up to {np.max(np.abs(a - b)):.4g} mm; resample the "
                        "label image onto the scan's grid")
        names = _label_names(labels.attrs.get("label_names"))
        arr = labels.values
    else:
        arr = np.asarray(labels)
        if arr.shape != scan.shape:
            raise ValueError(
                f"labels have shape {arr.shape} but the scan has shape {scan.shape}; "
                "the label image must be on the scan's grid (resample it first)")
    if arr.dtype == bool:
        arr = arr.astype(np.int32)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise TypeError(
                "labels must hold whole numbers (an integer label image), got non-integer "
                "float values; round or cast the label image")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"labels must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.int32).max):
        raise ValueError(
            f"labels must be in 0..{np.iinfo(np.int32).max} (0 = not scored), got values "
            f"from {arr.min()} to {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int32), names


def _label_names(raw):
    if raw is None:
        return {}
    if isinstance(raw, dict):
        try:
            return {int(k): str(v) for k, v in raw.items()}
        except (TypeError, ValueError):
            raise ValueError(
                "labels.attrs['label_names'] keys must be label numbers, got "
                f"{list(raw)!r}") from None
    if isinstance(raw, (list, tuple, np.ndarray)):
        return {i: str(v) for i, v in enumerate(raw) if i > 0 and str(v)}
    raise TypeError(
        "labels.attrs['label_names'] must be a dict {label: name} or a list indexed by "
        f"label, got {type(raw).__name__}")


def _resample_3mm(vol, lab, zc, dz):
    """Rebin slices to contiguous 3 mm slabs (overlap-weighted mean, box profile)."""
    nz, ny, nx = vol.shape
    e0 = zc[0] - 0.5 * dz
    length = nz * dz
    n_new = max(1, int(np.ceil(length / AGATSTON_SLICE_MM - 1e-9)))
    edges = e0 + dz * np.arange(nz + 1)
    lo = e0 + AGATSTON_SLICE_MM * np.arange(n_new)
    hi = np.minimum(lo + AGATSTON_SLICE_MM, e0 + length)
    ov = np.minimum(hi[:, None], edges[None, 1:]) - np.maximum(lo[:, None], edges[None, :-1])
    ov = np.clip(ov, 0.0, None)
    new = np.empty((n_new, ny, nx), dtype=np.float32)
    for k in range(n_new):  # float64 sum over the few overlapping slices, then / covered length
        acc = np.zeros((ny, nx), dtype=np.float64)
        covered = 0.0
        for i in np.flatnonzero(ov[k] > 0):
            acc += ov[k, i] * vol[i].astype(np.float64)
            covered += ov[k, i]
        new[k] = acc / covered
    centres = lo + 0.5 * AGATSTON_SLICE_MM
    if lab is not None:
        src = np.clip(np.floor((centres - e0) / dz).astype(np.int64), 0, nz - 1)
        lab = np.ascontiguousarray(lab[src])
    return new, lab, centres, AGATSTON_SLICE_MM
