"""njit kernels: chords along z through analytic shapes, SSP-weighted occupancy.

Private module. Kernels take plain arrays and never validate; the shapes and the
pipeline (``shapes``, ``simulate``) do.

Shape encoding (``code``, float64 parameter vector ``p``):

====  =========  ==========================================================
code  shape      parameters
====  =========  ==========================================================
0     sphere     cz, cy, cx, r
1     ellipsoid  cz, cy, cx, Q (3 x 3 row-major), inside: d^T Q d <= 1
2     cylinder   cz, cy, cx, r, half_length, az, ay, ax (unit axis)
3     tube       r, then the N centreline points (z, y, x): union of capsules
4     blob       n, then n x (cz, cy, cx, r): union of spheres
====  =========  ==========================================================

For an in-plane point (y, x) the chord of a shape along z is a union of
intervals [lo, hi] (one for convex shapes), computed exactly.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._config import JIT, PARALLEL_JIT
from ._ssp import ssp_cdf

_EPS = 1e-12


@numba.njit(**JIT)
def _quadratic_interval(a, b, c):
    """Interval where a t^2 + 2 b t + c <= 0 (a > 0); returns (lo, hi, ok)."""
    disc = b * b - a * c
    if disc <= 0.0:
        return 0.0, 0.0, False
    s = math.sqrt(disc)
    return (-b - s) / a, (-b + s) / a, True


@numba.njit(**JIT)
def _cylinder_chord(cz, cy, cx, r, hl, az, ay, ax, y, x):
    dy = y - cy
    dx = x - cx
    s0 = ay * dy + ax * dx
    w = dy * dy + dx * dx
    qa = 1.0 - az * az
    # radial condition: qa t^2 - 2 az s0 t + (w - s0^2 - r^2) <= 0
    if qa < _EPS:
        if w - s0 * s0 > r * r:
            return 0.0, 0.0, False
        lo = -1e300
        hi = 1e300
    else:
        lo, hi, ok = _quadratic_interval(qa, -az * s0, w - s0 * s0 - r * r)
        if not ok:
            return 0.0, 0.0, False
    # axial condition: |az t + s0| <= hl
    if abs(az) < _EPS:
        if abs(s0) > hl:
            return 0.0, 0.0, False
    else:
        t1 = (-hl - s0) / az
        t2 = (hl - s0) / az
        if t1 > t2:
            t1, t2 = t2, t1
        if t1 > lo:
            lo = t1
        if t2 < hi:
            hi = t2
    if hi <= lo:
        return 0.0, 0.0, False
    return cz + lo, cz + hi, True


@numba.njit(**JIT)
def _sphere_chord(cz, cy, cx, r, y, x):
    dy = y - cy
    dx = x - cx
    d2 = r * r - dy * dy - dx * dx
    if d2 <= 0.0:
        return 0.0, 0.0, False
    h = math.sqrt(d2)
    return cz - h, cz + h, True


@numba.njit(**JIT)
def _capsule_chord(z0, y0, x0, z1, y1, x1, r, y, x):
    lo = 1e300
    hi = -1e300
    ok = False
    a, b, o = _sphere_chord(z0, y0, x0, r, y, x)
    if o:
        lo = min(lo, a)
        hi = max(hi, b)
        ok = True
    a, b, o = _sphere_chord(z1, y1, x1, r, y, x)
    if o:
        lo = min(lo, a)
        hi = max(hi, b)
        ok = True
    vz = z1 - z0
    vy = y1 - y0
    vx = x1 - x0
    ln = math.sqrt(vz * vz + vy * vy + vx * vx)
    if ln > _EPS:
        a, b, o = _cylinder_chord(0.5 * (z0 + z1), 0.5 * (y0 + y1), 0.5 * (x0 + x1),
                                  r, 0.5 * ln, vz / ln, vy / ln, vx / ln, y, x)
        if o:
            lo = min(lo, a)
            hi = max(hi, b)
            ok = True
    return lo, hi, ok


@numba.njit(**JIT)
def _merge(lo, hi, n):
    """Sort n intervals by lo and merge overlaps in place; return the new count."""
    for i in range(1, n):
        a = lo[i]
        b = hi[i]
        j = i - 1
        while j >= 0 and lo[j] > a:
            lo[j + 1] = lo[j]
            hi[j + 1] = hi[j]
            j -= 1
        lo[j + 1] = a
        hi[j + 1] = b
    if n == 0:
        return 0
    m = 0
    for i in range(1, n):
        if lo[i] <= hi[m]:
            if hi[i] > hi[m]:
                hi[m] = hi[i]
        else:
            m += 1
            lo[m] = lo[i]
            hi[m] = hi[i]
    return m + 1


@numba.njit(**JIT)
def chords(code, p, y, x, lo, hi):
    """Write the z intervals of the shape at (y, x) into lo/hi; return their count."""
    if code == 0:
        a, b, ok = _sphere_chord(p[0], p[1], p[2], p[3], y, x)
        if ok:
            lo[0] = a
            hi[0] = b
            return 1
        return 0
    if code == 1:
        dy = y - p[1]
        dx = x - p[2]
        qa = p[3]
        qb = p[4] * dy + p[5] * dx
        qc = p[7] * dy * dy + 2.0 * p[8] * dy * dx + p[11] * dx * dx - 1.0
        a, b, ok = _quadratic_interval(qa, qb, qc)
        if ok:
            lo[0] = p[0] + a
            hi[0] = p[0] + b
            return 1
        return 0
    if code == 2:
        a, b, ok = _cylinder_chord(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], y, x)
        if ok:
            lo[0] = a
            hi[0] = b
            return 1
        return 0
    if code == 3:
        r = p[0]
        npts = (p.shape[0] - 1) // 3
        n = 0
        for s in range(npts - 1):
            k = 1 + 3 * s
            a, b, ok = _capsule_chord(p[k], p[k + 1], p[k + 2], p[k + 3], p[k + 4],
                                      p[k + 5], r, y, x)
            if ok:
                lo[n] = a
                hi[n] = b
                n += 1
        return _merge(lo, hi, n)
    # code 4: blob
    ns = int(p[0])
    n = 0
    for s in range(ns):
        k = 1 + 4 * s
        a, b, ok = _sphere_chord(p[k], p[k + 1], p[k + 2], p[k + 3], y, x)
        if ok:
            lo[n] = a
            hi[n] = b
            n += 1
    return _merge(lo, hi, n)


def max_intervals(code, p):
    """Buffer length needed by :func:`chords` for this shape."""
    if code == 3:
        return max(1, (len(p) - 1) // 3 - 1)
    if code == 4:
        return max(1, int(p[0]))
    return 1


@numba.njit(**PARALLEL_JIT)
def chord_area_integral(code, p, nbuf, y0, x0, h, ny, nx):
    """Midpoint rule of the chord length over an ny x nx grid of step h (mm3).

    Rows run in parallel into their own slots and are summed afterwards in a
    fixed order, so the result does not depend on the thread count.
    """
    rows = np.zeros(ny)
    for j in numba.prange(ny):
        lo = np.empty(nbuf)
        hi = np.empty(nbuf)
        y = y0 + (j + 0.5) * h
        row = 0.0
        for i in range(nx):
            n = chords(code, p, y, x0 + (i + 0.5) * h, lo, hi)
            for q in range(n):
                row += hi[q] - lo[q]
        rows[j] = row
    total = 0.0
    for j in range(ny):
        total += rows[j]
    return total * h * h


@numba.njit(**JIT)
def _clip_index(v, n):
    if v < 0:
        return 0
    if v > n:
        return n
    return int(v)


@numba.njit(**JIT)
def _nonlinearity(v, j, i):
    """Departure of lattice values of pixel (j, i) from a linear function."""
    c = v[2 * j + 1, 2 * i + 1]
    corners = 0.25 * (v[2 * j, 2 * i] + v[2 * j, 2 * i + 2] + v[2 * j + 2, 2 * i]
                      + v[2 * j + 2, 2 * i + 2])
    edges = 0.25 * (v[2 * j, 2 * i + 1] + v[2 * j + 2, 2 * i + 1] + v[2 * j + 1, 2 * i]
                    + v[2 * j + 1, 2 * i + 2])
    return max(abs(c - corners), abs(c - edges))


@numba.njit(**JIT)
def _add_weights(out, lo, hi, n, dz, zc, slices, nsl, j, i, thick, kind, wgt):
    for q in range(n):
        a = lo[q] + dz
        b = hi[q] + dz
        for s in range(nsl):
            k = slices[s]
            w = ssp_cdf(b - zc[k], thick, kind) - ssp_cdf(a - zc[k], thick, kind)
            if w != 0.0:
                out[k, j, i] += w * wgt


@numba.njit(**JIT)
def _group_slices(group, g, slices):
    """Write the slices of time group ``g`` into ``slices``; return how many there are."""
    nsl = 0
    for k in range(group.shape[0]):
        if group[k] == g:
            slices[nsl] = k
            nsl += 1
    return nsl


@numba.njit(**JIT)
def _pixel_window(box_yx, dy, dx, yc0, xc0, py, px, J, I):
    """Pixel index ranges [ja, jb) x [ia, ib) whose footprint, grown by one pixel,
    meets the in-plane box moved by (dy, dx)."""
    ja = _clip_index(math.floor((box_yx[0] + dy - yc0) / py - 1.5), J)
    jb = _clip_index(math.ceil((box_yx[1] + dy - yc0) / py + 1.5) + 1, J)
    ia = _clip_index(math.floor((box_yx[2] + dx - xc0) / px - 1.5), I)
    ib = _clip_index(math.ceil((box_yx[3] + dx - xc0) / px + 1.5) + 1, I)
    return ja, jb, ia, ib


@numba.njit(**JIT)
def _sample_lattice(code, p, lo, hi, yc0, xc0, py, px, dy, dx, ja, jb, ia, ib,
                    lcnt, llo, lhi):
    """Chords on the half-pixel lattice of the window, shape moved by (dy, dx).

    ``lcnt``: number of intervals; ``llo`` / ``lhi``: lowest start and highest
    end of the chord (where ``lcnt`` > 0).
    """
    for lj in range(2 * ja, 2 * jb + 1):
        y = yc0 - 0.5 * py + 0.5 * py * lj - dy
        for li in range(2 * ia, 2 * ib + 1):
            x = xc0 - 0.5 * px + 0.5 * px * li - dx
            n = chords(code, p, y, x, lo, hi)
            lcnt[lj, li] = n
            if n > 0:
                llo[lj, li] = lo[0]
                hi_max = hi[0]
                for q in range(1, n):
                    if hi[q] > hi_max:
                        hi_max = hi[q]
                lhi[lj, li] = hi_max


@numba.njit(**JIT)
def _classify_pixels(lcnt, llo, lhi, ja, jb, ia, ib, nl_rtol, pcls):
    """Pixel classes: 0 empty, 1 interior (one centre chord), 2 boundary, 3 empty but
    next to a non-empty pixel (it may still be clipped by the shape)."""
    for j in range(ja, jb):
        for i in range(ia, ib):
            nz = 0
            c0 = lcnt[2 * j + 1, 2 * i + 1]
            same = True
            for a in range(3):
                for b in range(3):
                    c = lcnt[2 * j + a, 2 * i + b]
                    if c > 0:
                        nz += 1
                    if c != c0:
                        same = False
            if nz == 0:
                pcls[j, i] = 0
            elif nz == 9 and same and \
                    _nonlinearity(llo, j, i) <= nl_rtol * (lhi[2 * j + 1, 2 * i + 1]
                                                          - llo[2 * j + 1, 2 * i + 1]) and \
                    _nonlinearity(lhi, j, i) <= nl_rtol * (lhi[2 * j + 1, 2 * i + 1]
                                                          - llo[2 * j + 1, 2 * i + 1]):
                pcls[j, i] = 1
            else:
                pcls[j, i] = 2
    for j in range(ja, jb):
        for i in range(ia, ib):
            if pcls[j, i] != 0:
                continue
            touch = False
            for a in range(max(ja, j - 1), min(jb, j + 2)):
                for b in range(max(ia, i - 1), min(ib, i + 2)):
                    if pcls[a, b] != 0 and pcls[a, b] != 3:
                        touch = True
            if touch:
                pcls[j, i] = 3


@numba.njit(**JIT)
def _accumulate_pixels(out, code, p, lo, hi, pcls, yc, xc, py, px, dz, dy, dx, ja, jb, ia, ib,
                       zc, slices, nsl, thick, kind, wt, nsub):
    """Add the SSP weights of one time sample, weight ``wt``, to every non-empty pixel:
    one chord through the centre of an interior pixel, ``nsub`` x ``nsub`` otherwise."""
    inv_sub = 1.0 / (nsub * nsub)
    for j in range(ja, jb):
        for i in range(ia, ib):
            c = pcls[j, i]
            if c == 0:
                continue
            if c == 1:
                n = chords(code, p, yc[j] - dy, xc[i] - dx, lo, hi)
                _add_weights(out, lo, hi, n, dz, zc, slices, nsl, j, i, thick, kind, wt)
            else:
                for a in range(nsub):
                    y = yc[j] - 0.5 * py + (a + 0.5) * py / nsub - dy
                    for b in range(nsub):
                        x = xc[i] - 0.5 * px + (b + 0.5) * px / nsub - dx
                        n = chords(code, p, y, x, lo, hi)
                        _add_weights(out, lo, hi, n, dz, zc, slices, nsl, j, i,
                                     thick, kind, wt * inv_sub)


@numba.njit(**JIT)
def render_occupancy(code, p, nbuf, zc, yc, xc, py, px, thick, kind, disp, wts, group,
                     nsub, nl_rtol, box_yx):
    """SSP-weighted, pixel-averaged, time-averaged occupancy of one shape.

    Parameters: shape ``code``/``p``; slice centres ``zc`` (K,), pixel centres
    ``yc`` (J,), ``xc`` (I,) with pixel sizes ``py``, ``px``; SSP ``thick`` and
    ``kind``; ``disp`` (G, M, 3) displacements (z, y, x) of M time samples for
    each of G time groups and their weights ``wts`` (G, M) (each row sums to
    1); ``group`` (K,) the time group of every slice; ``box_yx`` (ymin, ymax,
    xmin, xmax) the undisplaced shape's in-plane bounding box (only pixels
    near it are visited);
    ``nsub`` in-plane supersampling of boundary pixels. A pixel is interior
    (one chord through its centre, the midpoint rule) only if all 9 points of
    its half-pixel lattice hit the shape with the same number of intervals and
    both chord end points are linear over the pixel to ``nl_rtol`` x chord
    length (centre minus the mean of the corners, and of the edge midpoints;
    the midpoint rule's error is about a third of that). Returns (K, J, I)
    float64 in [0, 1].

    Stages, for every time sample of every time group: :func:`_pixel_window`
    (pixels near the moved shape), :func:`_sample_lattice` (chords on the
    half-pixel lattice), :func:`_classify_pixels` (empty / interior /
    boundary), :func:`_accumulate_pixels` (SSP weights into the slices of the
    group).
    """
    K = zc.shape[0]
    J = yc.shape[0]
    I = xc.shape[0]
    G = disp.shape[0]
    M = disp.shape[1]
    out = np.zeros((K, J, I))
    lo = np.empty(nbuf)
    hi = np.empty(nbuf)
    lcnt = np.empty((2 * J + 1, 2 * I + 1), dtype=np.int64)
    llo = np.empty((2 * J + 1, 2 * I + 1))
    lhi = np.empty((2 * J + 1, 2 * I + 1))
    pcls = np.empty((J, I), dtype=np.int64)
    slices = np.empty(K, dtype=np.int64)
    for g in range(G):
        nsl = _group_slices(group, g, slices)
        if nsl == 0:
            continue
        for m in range(M):
            wt = wts[g, m]
            if wt == 0.0:
                continue
            dz = disp[g, m, 0]
            dy = disp[g, m, 1]
            dx = disp[g, m, 2]
            ja, jb, ia, ib = _pixel_window(box_yx, dy, dx, yc[0], xc[0], py, px, J, I)
            if jb <= ja or ib <= ia:
                continue
            _sample_lattice(code, p, lo, hi, yc[0], xc[0], py, px, dy, dx, ja, jb, ia, ib,
                            lcnt, llo, lhi)
            _classify_pixels(lcnt, llo, lhi, ja, jb, ia, ib, nl_rtol, pcls)
            _accumulate_pixels(out, code, p, lo, hi, pcls, yc, xc, py, px, dz, dy, dx,
                               ja, jb, ia, ib, zc, slices, nsl, thick, kind, wt, nsub)
    return out
