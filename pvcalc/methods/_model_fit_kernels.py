"""numba kernels of ``model_fit``: the forward model of one lesion (private; no validation).

The model image of a lesion of unit integrated contrast (HU x mm3 = 1) on the
voxels of an ROI, and its finite-difference derivatives with respect to the
geometry, for :mod:`pvcalc.methods._model_fit`.

Geometry vectors ``g`` (mm):

====  =========  =======================================================
code  shape      g
====  =========  =======================================================
0     cylinder   cz, cy, cx, radius, half_length (axis along z)
1     sphere     cz, cy, cx, radius
2     ellipsoid  cz, cy, cx, semi-axis z, semi-axis y, semi-axis x
====  =========  =======================================================

The shape is cut into slabs along z, each with an elliptic cross-section of
constant semi-axes (one slab for the cylinder; ``n_slabs`` slabs of equal
height for the sphere and the ellipsoid, whose cross-section semi-axes are
scaled so that the slab keeps its exact volume). A slab ``[z_a, z_b]`` adds to
voxel ``(k, j, i)``

    A_s(j, i) x (S(z_b - z_k) - S(z_a - z_k))

with ``A_s`` the exact area fraction of pixel ``(j, i)`` inside the slab's
ellipse (:func:`_disk_rect`) and ``S`` the cumulative slice sensitivity profile
(:func:`_ssp_cdf`) centred on slice ``k``. The sum is blurred in-plane with the
sampled Gaussian taps of the PSF (separable, rows then columns) and divided by
the shape's volume. Every step is a smooth function of ``g``.

Also here: :func:`_template_and_derivatives` (the model and its forward-difference
Jacobian in one call) and :func:`_gram` (``J^T J`` in a fixed summation order, no
BLAS).

The callers guarantee C-contiguous float64 / int64 arrays of the documented
shapes.
"""

import math

import numba
import numpy as np

from pvcalc._numba_config import JIT

CYLINDER = 0
SPHERE = 1
ELLIPSOID = 2
#: Geometry parameters per shape code.
N_GEOMETRY = (5, 4, 6)

TRAPEZOID = 0
GAUSSIAN = 1
BOX = 2

_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@numba.njit(**JIT)
def _ssp_cdf(u, thickness, kind, edge):
    """Cumulative integral S(u) of a unit-area slice profile of FWHM ``thickness`` (mm).

    kind 0: trapezoid, linear edges of width ``edge x thickness`` centred on
    +-thickness / 2; kind 1: Gaussian; kind 2: box (= trapezoid with edge 0).
    """
    t = thickness
    if kind == GAUSSIAN:
        s = t * _FWHM_TO_SIGMA
        return 0.5 * (1.0 + math.erf(u / (s * math.sqrt(2.0))))
    w = edge * t if kind == TRAPEZOID else 0.0
    a = 0.5 * (t + w)          # half base
    b = 0.5 * (t - w)          # half top
    if u <= -a:
        return 0.0
    if u >= a:
        return 1.0
    h = 1.0 / t
    if u < -b:
        d = u + a
        return 0.5 * h * d * d / w
    if u <= b:
        return 0.5 * h * w + h * (u + b)
    d = a - u
    return 1.0 - 0.5 * h * d * d / w


@numba.njit(**JIT)
def _ssp_half_support(thickness, kind, edge):
    """Half-width (mm) beyond which the profile is zero (Gaussian: 6 sigma)."""
    if kind == GAUSSIAN:
        return 6.0 * thickness * _FWHM_TO_SIGMA
    if kind == TRAPEZOID:
        return 0.5 * thickness * (1.0 + edge)
    return 0.5 * thickness


@numba.njit(**JIT)
def _segment(s):
    """Integral of sqrt(1 - t^2) from 0 to s, for 0 <= s <= 1."""
    return 0.5 * (s * math.sqrt(max(1.0 - s * s, 0.0)) + math.asin(s))


@numba.njit(**JIT)
def _quadrant(u, v):
    """Area of the unit disk inside [0, u] x [0, v], for u, v >= 0."""
    u = min(u, 1.0)
    v = min(v, 1.0)
    if u * u + v * v <= 1.0:
        return u * v
    s = math.sqrt(1.0 - v * v)     # the circle's abscissa at height v (s < u)
    return v * s + _segment(u) - _segment(s)


@numba.njit(**JIT)
def _disk_rect(u, v):
    """Signed area of the unit disk inside the rectangle between (0, 0) and (u, v)."""
    a = _quadrant(abs(u), abs(v))
    if (u < 0.0) != (v < 0.0):
        return -a
    return a


@numba.njit(**JIT)
def _slabs(code, g, n_slabs, za, zb, ry, rx):
    """Fill the slabs (z range, cross-section semi-axes); return (count, volume mm3)."""
    cz = g[0]
    if code == CYLINDER:
        za[0] = cz - g[4]
        zb[0] = cz + g[4]
        ry[0] = g[3]
        rx[0] = g[3]
        return 1, math.pi * g[3] * g[3] * 2.0 * g[4]
    if code == SPHERE:
        az, ay, ax = g[3], g[3], g[3]
    else:
        az, ay, ax = g[3], g[4], g[5]
    step = 2.0 / n_slabs
    for m in range(n_slabs):
        ta = -1.0 + m * step
        tb = ta + step
        # mean of (1 - t^2) over the slab: the scaled cross-section keeps its volume
        rho = math.sqrt(max(1.0 - (ta * ta + ta * tb + tb * tb) / 3.0, 0.0))
        za[m] = cz + az * ta
        zb[m] = cz + az * tb
        ry[m] = ay * rho
        rx[m] = ax * rho
    return n_slabs, 4.0 / 3.0 * math.pi * az * ay * ax


@numba.njit(**JIT)
def _render(code, g, n_slabs, zc, oy, ox, py, px, n_rows, n_cols, taps_y, taps_x,
            thickness, kind, edge, rk, rj, ri, out):
    """Model of unit integrated contrast at the ROI voxels ``(rk, rj, ri)`` into ``out``.

    ``zc`` (K,) slice centres; pixel ``(j, i)`` of the box has its centre at
    ``(oy + j py, ox + i px)`` (mm), ``0 <= j < n_rows``, ``0 <= i < n_cols``.
    Returns the shape's volume (mm3).
    """
    nk = zc.shape[0]
    za = np.empty(n_slabs)
    zb = np.empty(n_slabs)
    ry = np.empty(n_slabs)
    rx = np.empty(n_slabs)
    ns, vol = _slabs(code, g, n_slabs, za, zb, ry, rx)
    cy = g[1]
    cx = g[2]
    ymax = 0.0
    xmax = 0.0
    for s in range(ns):
        ymax = max(ymax, ry[s])
        xmax = max(xmax, rx[s])
    # footprint: every pixel that meets the largest cross-section (virtual indices,
    # possibly outside the box)
    fj0 = int(math.floor((cy - ymax - oy) / py + 0.5)) - 1
    fj1 = int(math.floor((cy + ymax - oy) / py + 0.5)) + 2
    fi0 = int(math.floor((cx - xmax - ox) / px + 0.5)) - 1
    fi1 = int(math.floor((cx + xmax - ox) / px + 0.5)) + 2
    nj = fj1 - fj0
    ni = fi1 - fi0
    occ = np.zeros((nk, nj, ni))
    used = np.zeros(nk, dtype=np.bool_)
    corner = np.empty((nj + 1, ni + 1))
    wk = np.empty(nk)
    for s in range(ns):
        hit = False
        for k in range(nk):
            w = (_ssp_cdf(zb[s] - zc[k], thickness, kind, edge)
                 - _ssp_cdf(za[s] - zc[k], thickness, kind, edge))
            wk[k] = w
            if w != 0.0:
                hit = True
                used[k] = True
        if not hit or ry[s] <= 0.0 or rx[s] <= 0.0:
            continue
        for a in range(nj + 1):
            v = (oy + (fj0 + a - 0.5) * py - cy) / ry[s]
            for b in range(ni + 1):
                u = (ox + (fi0 + b - 0.5) * px - cx) / rx[s]
                corner[a, b] = _disk_rect(u, v)
        scale = ry[s] * rx[s] / (py * px)
        for a in range(nj):
            for b in range(ni):
                area = (corner[a + 1, b + 1] - corner[a, b + 1] - corner[a + 1, b]
                        + corner[a, b]) * scale
                if area != 0.0:
                    for k in range(nk):
                        if wk[k] != 0.0:
                            occ[k, a, b] += area * wk[k]
    for n in range(out.shape[0]):
        out[n] = 0.0
    hy = taps_y.shape[0] // 2
    hx = taps_x.shape[0] // 2
    oj0 = max(0, fj0 - hy)
    oj1 = min(n_rows, fj1 + hy)
    oi0 = max(0, fi0 - hx)
    oi1 = min(n_cols, fi1 + hx)
    if oj1 <= oj0 or oi1 <= oi0 or vol <= 0.0:
        return vol
    mj = oj1 - oj0
    mi = oi1 - oi0
    rows = np.zeros((nk, mj, ni))
    img = np.zeros((nk, mj, mi))
    for k in range(nk):
        if not used[k]:
            continue
        for jo in range(mj):
            for t in range(taps_y.shape[0]):
                a = oj0 + jo + t - hy - fj0
                if 0 <= a < nj:
                    c = taps_y[t]
                    for b in range(ni):
                        rows[k, jo, b] += c * occ[k, a, b]
        for jo in range(mj):
            for io in range(mi):
                acc = 0.0
                for t in range(taps_x.shape[0]):
                    b = oi0 + io + t - hx - fi0
                    if 0 <= b < ni:
                        acc += taps_x[t] * rows[k, jo, b]
                img[k, jo, io] = acc
    inv = 1.0 / vol
    for n in range(out.shape[0]):
        j = rj[n] - oj0
        i = ri[n] - oi0
        if 0 <= j < mj and 0 <= i < mi:
            out[n] = img[rk[n], j, i] * inv
    return vol


@numba.njit(**JIT)
def _template_and_derivatives(code, g, free, steps, n_slabs, zc, oy, ox, py, px, n_rows,
                              n_cols, taps_y, taps_x, thickness, kind, edge, rk, rj, ri):
    """(n, 1 + len(free)): the unit-contrast model at ``g``, then its forward-difference
    derivatives with respect to ``g[free[p]]`` (step ``steps[p]`` mm)."""
    n = rk.shape[0]
    out = np.empty((n, 1 + free.shape[0]))
    col = np.empty(n)
    _render(code, g, n_slabs, zc, oy, ox, py, px, n_rows, n_cols, taps_y, taps_x,
            thickness, kind, edge, rk, rj, ri, col)
    out[:, 0] = col
    gp = g.copy()
    for p in range(free.shape[0]):
        q = free[p]
        h = steps[p]
        gp[q] = g[q] + h
        _render(code, gp, n_slabs, zc, oy, ox, py, px, n_rows, n_cols, taps_y, taps_x,
                thickness, kind, edge, rk, rj, ri, col)
        gp[q] = g[q]
        for m in range(n):
            out[m, 1 + p] = (col[m] - out[m, 0]) / h
    return out


@numba.njit(**JIT)
def _gram(jac):
    """J^T J of an (n, p) array, summed in a fixed order (no BLAS, thread-independent)."""
    n, p = jac.shape
    out = np.zeros((p, p))
    for m in range(n):
        for a in range(p):
            v = jac[m, a]
            for b in range(a, p):
                out[a, b] += v * jac[m, b]
    for a in range(p):
        for b in range(a):
            out[a, b] = out[b, a]
    return out
