"""numba kernels that synthesise the shaped noise half-spectrum (no validation here).

Public wrapper: :func:`phantoms.noise.noise_field`. The serial and parallel
kernels run the same row function, so they give identical bytes; the wrapper
uses the serial one for small patches, where waking a second thread costs
more than the work.
"""

from __future__ import annotations

import numba
import numpy as np

from phantoms._config import JIT, PARALLEL_JIT
from phantoms._rng import _normal4

_INV_SQRT2 = np.float32(1.0 / np.sqrt(2.0))
_SQRT2 = np.float32(np.sqrt(2.0))


@numba.njit(**JIT)
def _fill_row(spec, hz, hxy, scale, k0, k1, s0, s1, r, even_x):
    """Row ``r = kz * Y + ky`` of the half-spectrum.

    The row uses Philox blocks ``r * bpr .. r * bpr + bpr - 1`` (``bpr =
    ceil(Xh / 2)``); block ``r * bpr + j`` gives the real and imaginary parts of
    elements ``2 j`` and ``2 j + 1``. Interior elements get E|w|^2 = 1 (parts
    scaled by 1/sqrt 2); the kx = 0 plane and, for even X, the Nyquist plane
    get E|w|^2 = 2, because the inverse real FFT keeps only the Hermitian part
    of those planes, which halves it (see ``docs/scanner.md``).
    """
    nz, ny, nxh = spec.shape
    bpr = (nxh + 1) // 2
    npairs = nxh // 2
    kz = r // ny
    ky = r - kz * ny
    a = np.float32(scale * hz[kz])
    h = hxy[ky]
    row = spec[kz, ky]
    base = r * bpr
    for j in range(npairs):
        z0, z1, z2, z3 = _normal4(base + j, k0, k1, s0, s1)
        g0 = a * h[2 * j] * _INV_SQRT2
        g1 = a * h[2 * j + 1] * _INV_SQRT2
        row[2 * j] = complex(np.float32(g0 * z0), np.float32(g0 * z1))
        row[2 * j + 1] = complex(np.float32(g1 * z2), np.float32(g1 * z3))
    if nxh % 2 == 1:
        z0, z1, z2, z3 = _normal4(base + npairs, k0, k1, s0, s1)
        g = a * h[nxh - 1] * _INV_SQRT2
        row[nxh - 1] = complex(np.float32(g * z0), np.float32(g * z1))
    row[0] = row[0] * _SQRT2
    if even_x and nxh > 1:
        row[nxh - 1] = row[nxh - 1] * _SQRT2


@numba.njit(**PARALLEL_JIT)
def _shaped_half_spectrum_parallel(spec, hz, hxy, scale, k0, k1, s0, s1, even_x):
    """spec[kz, ky, kx] = scale * hz[kz] * hxy[ky, kx] * w, w complex Gaussian (rows in parallel)."""
    nz, ny, nxh = spec.shape
    for r in numba.prange(nz * ny):
        _fill_row(spec, hz, hxy, scale, k0, k1, s0, s1, r, even_x)
    return spec


@numba.njit(**JIT)
def _shaped_half_spectrum_serial(spec, hz, hxy, scale, k0, k1, s0, s1, even_x):
    """Same as the parallel kernel on one thread (identical bytes)."""
    nz, ny, nxh = spec.shape
    for r in range(nz * ny):
        _fill_row(spec, hz, hxy, scale, k0, k1, s0, s1, r, even_x)
    return spec
