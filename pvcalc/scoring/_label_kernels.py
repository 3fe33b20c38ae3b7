"""numba kernels for calcium scoring: threshold scan + run-based union-find.

The above-threshold voxels of a calcium-scoring scan are sparse, so the kernels
never build a dense label image. Each image row is reduced to *runs* (maximal
stretches of consecutive calcium voxels with one label); runs of neighbouring
rows are joined with a union-find whose root is always the run that comes first
in raster order, so results do not depend on thread count or scheduling.

Pipeline (all private; the public wrapper is :func:`pvcalc.score`):

1. ``_count_runs_*``: runs per row.
2. ``_fill_runs_*``: run geometry, HU sum and peak, union-find within each
   slice, component numbering per slice.
3. ``_component_stats_*``: per 2D component voxel count, HU sum, peak HU,
   coordinate sums, label.

Steps 1-3 work slice by slice (``_*_slice``) and come in a ``_parallel``
driver (prange over slices; each slice writes only its own, precomputed
output range, so the result is identical for any thread count) and a
``_serial`` driver for small scans, where starting threads costs more than it
saves.
4. :func:`_link_slices`: joins 2D components that touch across neighbouring
   slices (26-neighbourhood for 8-connectivity, 6 for 4) into 3D lesions.

Runs of two rows are joined by one kernel, :func:`_join_rows`, both within a
slice (step 2, rows y - 1 and y) and across slices (step 4, rows yy of slice
z - 1 and y of slice z).
5. :func:`_isotropic_counts`: optional volume after linear interpolation in z.

None of these validate; the wrapper guarantees C-contiguous float32 HU, int32
labels and a float32 threshold that is compared inclusively (``v >= thr``).
"""

import numba
import numpy as np

from pvcalc._numba_config import JIT, compile_serial_and_parallel


@numba.njit(**JIT)
def _count_slice(vol, lab, has_labels, thr, z, counts):
    ny, nx = vol.shape[1], vol.shape[2]
    for y in range(ny):
        row = vol[z, y]
        if has_labels:
            # a run starts at a labelled calcium voxel whose left neighbour is not
            # calcium, not labelled, or has another label (branch-free)
            lrow = lab[z, y]
            c = np.int32(row[0] >= thr) & np.int32(lrow[0] > 0)
            for x in range(1, nx):
                c += (np.int32(row[x] >= thr) & np.int32(lrow[x] > 0)) & (
                    np.int32(row[x - 1] < thr) | np.int32(lrow[x - 1] != lrow[x]))
            counts[z, y] = c
        else:
            # branch-free so that it vectorises: a run starts where a calcium
            # voxel follows a non-calcium one
            c = np.int32(row[0] >= thr)
            for x in range(1, nx):
                c += np.int32(row[x] >= thr) & np.int32(row[x - 1] < thr)
            counts[z, y] = c


def _count_runs(vol, lab, has_labels, thr):
    counts = np.zeros(vol.shape[:2], dtype=np.int32)
    for z in numba.prange(vol.shape[0]):
        _count_slice(vol, lab, has_labels, thr, z, counts)
    return counts


_count_runs_serial, _count_runs_parallel = compile_serial_and_parallel(_count_runs)


@numba.njit(**JIT)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@numba.njit(**JIT)
def _union(parent, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@numba.njit(**JIT)
def _join_rows(parent, x0, x1, rlab, a0, a1, b0, b1, d, node):
    """Union every run in [b0, b1) with every touching run in [a0, a1).

    Runs touch when their x ranges overlap after widening by ``d`` voxels
    (d=1: diagonal neighbours, d=0: edge neighbours) and their labels agree.
    Both run ranges are sorted by x0 (runs of one image row), so one merge-like
    sweep finds every touching pair. ``node`` maps a run to its union-find
    element: ``None`` joins the runs themselves (rows of one slice), an array
    joins what the runs belong to (``run_comp``: the 2D components of
    neighbouring slices). numba compiles one specialisation per case and
    prunes the other branch.
    """
    i = a0
    for j in range(b0, b1):
        while i < a1 and x1[i] + d <= x0[j]:
            i += 1
        k = i
        while k < a1 and x0[k] < x1[j] + d:
            if rlab[k] == rlab[j]:
                if node is None:
                    _union(parent, k, j)
                else:
                    _union(parent, node[k], node[j])
            k += 1


@numba.njit(**JIT)
def _fill_slice(vol, lab, has_labels, thr, row_start, d, z, x0, x1, rlab, rsum, rmax,
                parent, comp_local, n_comp):
    ny, nx = vol.shape[1], vol.shape[2]
    base = z * ny
    if row_start[base + ny] == row_start[base]:
        return
    for y in range(ny):
        r = row_start[base + y]
        if row_start[base + y + 1] == r:
            continue
        row = vol[z, y]
        inrun = False
        curl = 0
        for x in range(nx):
            v = row[x]
            a = v >= thr
            lv = 0
            if has_labels:
                lv = lab[z, y, x]
                a = a and lv > 0
            if a and inrun and lv == curl:
                rsum[r - 1] += v
                if v > rmax[r - 1]:
                    rmax[r - 1] = v
                x1[r - 1] = x + 1
            elif a:
                x0[r] = x
                x1[r] = x + 1
                rlab[r] = lv
                rsum[r] = v
                rmax[r] = v
                parent[r] = r
                r += 1
                inrun = True
                curl = lv
            else:
                inrun = False
    for y in range(1, ny):
        b0 = row_start[base + y]
        b1 = row_start[base + y + 1]
        a0 = row_start[base + y - 1]
        if b1 > b0 and b0 > a0:
            _join_rows(parent, x0, x1, rlab, a0, b0, b0, b1, d, None)
    c = 0
    for r in range(row_start[base], row_start[base + ny]):
        root = _find(parent, r)
        if root == r:
            comp_local[r] = c
            c += 1
        else:
            comp_local[r] = comp_local[root]
    n_comp[z] = c


def _fill_runs(vol, lab, has_labels, thr, row_start, conn8):
    nz, ny, nx = vol.shape
    n_runs = row_start[-1]
    x0 = np.empty(n_runs, dtype=np.int32)
    x1 = np.empty(n_runs, dtype=np.int32)
    rlab = np.zeros(n_runs, dtype=np.int32)
    rsum = np.empty(n_runs, dtype=np.float64)
    rmax = np.empty(n_runs, dtype=np.float32)
    parent = np.empty(n_runs, dtype=np.int64)
    comp_local = np.empty(n_runs, dtype=np.int64)
    n_comp = np.zeros(nz, dtype=np.int64)
    d = 1 if conn8 else 0
    for z in numba.prange(nz):
        _fill_slice(vol, lab, has_labels, thr, row_start, d, z, x0, x1, rlab, rsum, rmax,
                    parent, comp_local, n_comp)
    return x0, x1, rlab, rsum, rmax, comp_local, n_comp


_fill_runs_serial, _fill_runs_parallel = compile_serial_and_parallel(_fill_runs)


@numba.njit(**JIT)
def _stats_slice(row_start, ny, x0, x1, rlab, rsum, rmax, comp_local, comp_start, z,
                 count, hu_sum, peak, sum_y, sum_x, label, slice_index, run_comp):
    for c in range(comp_start[z], comp_start[z + 1]):
        slice_index[c] = z
    base = z * ny
    for y in range(ny):
        for r in range(row_start[base + y], row_start[base + y + 1]):
            c = comp_start[z] + comp_local[r]
            run_comp[r] = c
            m = x1[r] - x0[r]
            count[c] += m
            hu_sum[c] += rsum[r]
            if rmax[r] > peak[c]:
                peak[c] = rmax[r]
            sum_y[c] += y * m
            sum_x[c] += 0.5 * (x0[r] + x1[r] - 1) * m
            label[c] = rlab[r]


def _component_stats(row_start, ny, x0, x1, rlab, rsum, rmax, comp_local, comp_start):
    nz = comp_start.size - 1
    n = comp_start[-1]
    count = np.zeros(n, dtype=np.int64)
    hu_sum = np.zeros(n, dtype=np.float64)
    peak = np.full(n, -np.inf, dtype=np.float64)
    sum_y = np.zeros(n, dtype=np.float64)
    sum_x = np.zeros(n, dtype=np.float64)
    label = np.zeros(n, dtype=np.int32)
    slice_index = np.empty(n, dtype=np.int64)
    run_comp = np.empty(x0.size, dtype=np.int64)
    for z in numba.prange(nz):
        _stats_slice(row_start, ny, x0, x1, rlab, rsum, rmax, comp_local, comp_start, z,
                     count, hu_sum, peak, sum_y, sum_x, label, slice_index, run_comp)
    return count, hu_sum, peak, sum_y, sum_x, label, slice_index, run_comp


_component_stats_serial, _component_stats_parallel = compile_serial_and_parallel(_component_stats)


@numba.njit(**JIT)
def _link_slices(row_start, nz, ny, x0, x1, rlab, run_comp, n_comp, conn8):
    """3D lesion id (0, 1, ... in order of first component) of every component."""
    parent = np.arange(n_comp)
    d = 1 if conn8 else 0
    for z in range(1, nz):
        for y in range(ny):
            b0 = row_start[z * ny + y]
            b1 = row_start[z * ny + y + 1]
            if b1 == b0:
                continue
            lo = y - d if y - d > 0 else 0
            hi = y + d if y + d < ny - 1 else ny - 1
            for yy in range(lo, hi + 1):
                a0 = row_start[(z - 1) * ny + yy]
                a1 = row_start[(z - 1) * ny + yy + 1]
                _join_rows(parent, x0, x1, rlab, a0, a1, b0, b1, d, run_comp)
    lesion = np.empty(n_comp, dtype=np.int64)
    nl = 0
    for c in range(n_comp):
        root = _find(parent, c)
        if root == c:
            lesion[c] = nl
            nl += 1
        else:
            lesion[c] = lesion[root]
    return lesion


@numba.njit(**JIT)
def _paint_components(shape_z, ny, nx, row_start, x0, x1, run_comp, keep):
    """Dense int32 map: kept component id of each calcium voxel, -1 elsewhere."""
    out = np.full((shape_z, ny, nx), -1, dtype=np.int32)
    for z in range(shape_z):
        for y in range(ny):
            for r in range(row_start[z * ny + y], row_start[z * ny + y + 1]):
                c = run_comp[r]
                if keep[c]:
                    for x in range(x0[r], x1[r]):
                        out[z, y, x] = c
    return out


@numba.njit(**JIT)
def _isotropic_counts(vol, comp_map, row_counts, thr, strict, m, n_comp):
    """Fine-slice voxel counts per component after linear interpolation in z.

    Fine slice j (of nz * m) sits at coarse index s = (j + 0.5) / m - 0.5,
    clamped to [0, nz - 1]; its HU is the linear interpolation of the two
    bracketing slices. A fine voxel at or above threshold belongs to the
    component of the nearer bracketing voxel if that voxel is calcium of a
    kept component, else to the other one's (a convex combination above
    threshold always has one bracketing voxel above it).
    """
    nz, ny, nx = vol.shape
    out = np.zeros(n_comp, dtype=np.int64)
    for j in range(nz * m):
        s = (j + 0.5) / m - 0.5
        if s <= 0.0:
            lo = 0
            t = 0.0
        elif s >= nz - 1:
            lo = nz - 1
            t = 0.0
        else:
            lo = int(np.floor(s))
            t = s - lo
        hi = lo + 1 if t > 0.0 else lo
        for y in range(ny):
            if row_counts[lo, y] == 0 and row_counts[hi, y] == 0:
                continue
            for x in range(nx):
                ca = comp_map[lo, y, x]
                cb = comp_map[hi, y, x]
                if ca < 0 and cb < 0:
                    continue
                v = (1.0 - t) * vol[lo, y, x] + t * vol[hi, y, x]
                above = v > thr if strict else v >= thr
                if not above:
                    continue
                near = ca if t < 0.5 else cb
                far = cb if t < 0.5 else ca
                owner = near if near >= 0 else far
                out[owner] += 1
    return out


@numba.njit(**JIT)
def _labels_present(lab, top):
    """Boolean table: which label values 0..top occur in ``lab`` (one pass, no sort)."""
    seen = np.zeros(top + 1, dtype=np.bool_)
    flat = lab.ravel()
    for i in range(flat.size):
        seen[flat[i]] = True
    return seen
