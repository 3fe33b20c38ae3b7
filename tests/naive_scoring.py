"""Slow, obviously-correct calcium scoring: the reference for pvcalc.scoring tests.

Everything is done the plain way: float64 comparisons, ``scipy.ndimage.label``
per slice and per label value, Python loops for resampling and interpolation,
and the published kVp table typed in again here (Grani et al. 2018) rather
than imported. Returns a list of row dicts (one per scored 2D lesion) that
the tests compare with ``pvcalc.score(...).lesions``.
"""

import math

import numpy as np
from scipy import ndimage

GRANI_2018 = {70: (207, 318, 477, 636), 80: (177, 271, 408, 544), 100: (145, 222, 334, 446),
              120: (130, 200, 300, 400), 135: (119, 183, 274, 364)}


def naive_thresholds(p, kvp):
    if p.kvp_thresholds == "off":
        return p.threshold_hu, list(p.weight_cutoffs_hu)
    ks = sorted(GRANI_2018)
    if p.kvp_thresholds == "exact":
        row = GRANI_2018[int(kvp)]
    elif p.kvp_thresholds == "nearest":
        best = ks[0]
        for k in ks:
            if abs(k - kvp) < abs(best - kvp):
                best = k
        row = GRANI_2018[best]
    else:
        for a, b in zip(ks[:-1], ks[1:]):
            if a <= kvp <= b:
                t = (kvp - a) / (b - a)
                row = [GRANI_2018[a][j] + t * (GRANI_2018[b][j] - GRANI_2018[a][j])
                       for j in range(4)]
                break
    return float(row[0]), [float(v) for v in row[1:]]


def naive_resample_3mm(vol, lab, zc, dz):
    nz = vol.shape[0]
    start = zc[0] - dz / 2
    end = start + nz * dz
    slabs, labs, centres = [], [], []
    k = 0
    while start + 3.0 * k < end - 1e-9:
        lo = start + 3.0 * k
        hi = min(lo + 3.0, end)
        acc = np.zeros(vol.shape[1:])
        wsum = 0.0
        for i in range(nz):
            a, b = start + i * dz, start + (i + 1) * dz
            w = max(0.0, min(hi, b) - max(lo, a))
            if w > 0:
                acc += w * vol[i].astype(np.float64)
                wsum += w
        slabs.append((acc / wsum).astype(np.float32))
        c = lo + 1.5
        centres.append(c)
        if lab is not None:
            i = min(max(int(math.floor((c - start) / dz)), 0), nz - 1)
            labs.append(lab[i])
        k += 1
    return (np.array(slabs), None if lab is None else np.array(labs),
            np.array(centres), 3.0)


def naive_score(vol, spacing, p, *, zc=None, y0=0.0, x0=0.0, labels=None, kvp=120.0,
                slice_thickness_mm=None, c_ha=None, mass_reference_hu=0.0):
    """Rows of scored 2D lesions and the totals, computed the slow way."""
    vol = np.asarray(vol, dtype=np.float32)
    dz, dy, dx = (float(s) for s in spacing)
    zc = np.arange(vol.shape[0]) * dz if zc is None else np.asarray(zc, dtype=float)
    if slice_thickness_mm is None:
        slice_thickness_mm = dz
    thr, cut = naive_thresholds(p, kvp)
    lab = None if labels is None else np.asarray(labels).astype(np.int64)
    if p.thickness_source == "resample_3mm":
        vol, lab, zc, dz = naive_resample_3mm(vol, lab, zc, dz)
        factor = 1.0
    elif p.thickness_source == "increment":
        factor = dz / 3.0
    else:
        factor = slice_thickness_mm / 3.0
    if not p.slice_normalisation:
        factor = 1.0
    v64 = vol.astype(np.float64)
    calcium = v64 >= thr if p.threshold_inclusive else v64 > thr
    if lab is None:
        lab = np.ones(vol.shape, dtype=np.int64)
        label_of = lambda k: 0  # noqa: E731
    else:
        calcium &= lab > 0
        label_of = lambda k: k  # noqa: E731
    s2 = np.ones((3, 3), bool) if p.connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    s3 = ndimage.generate_binary_structure(3, 3 if p.connectivity == 8 else 1)
    # 3D lesions: one ndimage.label call per label value
    lesion3d = np.full(vol.shape, -1, dtype=np.int64)
    n3 = 0
    for k in np.unique(lab[calcium]):
        l3, n = ndimage.label(calcium & (lab == k), structure=s3)
        lesion3d[l3 > 0] = l3[l3 > 0] - 1 + n3
        n3 += n
    comps = []
    for z in range(vol.shape[0]):
        for k in np.unique(lab[z][calcium[z]]):
            l2, n = ndimage.label(calcium[z] & (lab[z] == k), structure=s2)
            for i in range(1, n + 1):
                ys, xs = np.nonzero(l2 == i)
                hus = v64[z, ys, xs]
                comps.append(dict(slice_index=z, label=label_of(int(k)), n_voxels=len(ys),
                                  peak_hu=float(hus.max()), hu_sum=float(hus.sum()),
                                  ys=ys, xs=xs, l3=int(lesion3d[z, ys[0], xs[0]])))
    # minimum size per 2D lesion or per 3D lesion
    size3 = {}
    peak3 = {}
    for c in comps:
        size3[c["l3"]] = size3.get(c["l3"], 0) + c["n_voxels"]
        peak3[c["l3"]] = max(peak3.get(c["l3"], -np.inf), c["peak_hu"])
    rows = []
    for ci, c in enumerate(comps):
        n = c["n_voxels"] if p.lesion_dimensionality == "2d" else size3[c["l3"]]
        if n * dy * dx < p.min_area_mm2 * (1 - 1e-9) or n < p.min_voxels:
            continue
        peak = c["peak_hu"] if p.weight_from == "component" else peak3[c["l3"]]
        w = 1
        for cutoff in cut:
            if (peak >= cutoff) if p.weight_cutoffs_inclusive else (peak > cutoff):
                w += 1
        area = c["n_voxels"] * dy * dx
        row = dict(slice_index=c["slice_index"], z_mm=float(zc[c["slice_index"]]),
                   label=c["label"], n_voxels=c["n_voxels"], area_mm2=area,
                   peak_hu=c["peak_hu"], mean_hu=c["hu_sum"] / c["n_voxels"], weight=w,
                   agatston=area * w * factor, volume_mm3=c["n_voxels"] * dy * dx * dz,
                   centroid_y_mm=y0 + dy * c["ys"].mean(), centroid_x_mm=x0 + dx * c["xs"].mean(),
                   lesion_3d_naive=c["l3"], comp_index=ci)
        if c_ha is not None:
            row["mass_mg"] = c_ha * (c["hu_sum"] - mass_reference_hu * c["n_voxels"]) \
                * dy * dx * dz / 1000.0
        rows.append(row)
    if p.volume_method == "isotropic":
        _naive_iso(rows, comps, vol, calcium, p, thr, dy, dx, dz)
    return rows


def _naive_iso(rows, comps, vol, calcium, p, thr, dy, dx, dz):
    s = p.isotropic_spacing_mm or 0.5 * (dy + dx)
    m = max(1, int(round(dz / s)))
    nz = vol.shape[0]
    owner_map = np.full(vol.shape, -1)
    for i, c in enumerate(comps):
        owner_map[c["slice_index"], c["ys"], c["xs"]] = i
    counts = np.zeros(len(comps))
    for j in range(nz * m):
        s_idx = (j + 0.5) / m - 0.5
        s_idx = min(max(s_idx, 0.0), nz - 1.0)
        lo = int(math.floor(s_idx))
        t = s_idx - lo
        hi = lo if t == 0 else lo + 1
        v = (1 - t) * vol[lo].astype(np.float64) + t * vol[hi].astype(np.float64)
        above = v >= thr if p.threshold_inclusive else v > thr
        near, far = (lo, hi) if t < 0.5 else (hi, lo)
        for y, x in zip(*np.nonzero(above)):
            o = owner_map[near, y, x]
            if o < 0:
                o = owner_map[far, y, x]
            if o >= 0:
                counts[o] += 1
    for r in rows:
        r["volume_iso_mm3"] = counts[r["comp_index"]] * dy * dx * dz / m
