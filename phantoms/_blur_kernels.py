"""numba kernels for the separable in-plane Gaussian blur (no validation here).

The public wrapper is :func:`phantoms.psf.blur_inplane`. Layout: a float32
(Z, Y, X) C-contiguous volume; each slice is blurred along y (rows combined as
whole contiguous rows, so the inner loop over x vectorises) into a per-thread
slice buffer, then along x from a per-thread row padded with 'nearest' values.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from phantoms._config import JIT, PARALLEL_JIT


def gaussian_taps(fwhm_mm, pixel_mm, truncate=4.0):
    """Pixel-integrated, normalised Gaussian taps (float32, odd length).

    ``tap[j] = Phi((j + 1/2) p / sigma) - Phi((j - 1/2) p / sigma)`` for
    ``|j| <= ceil(truncate * sigma / p)``, divided by their sum, where
    ``sigma = fwhm / (2 sqrt(2 ln 2))``: the Gaussian PSF integrated over each
    pixel's footprint (exact mass even when sigma is below a pixel).
    """
    sigma = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    radius = int(math.ceil(truncate * sigma / pixel_mm))
    j = np.arange(-radius, radius + 1, dtype=np.float64)
    scale = pixel_mm / (sigma * math.sqrt(2.0))
    from scipy.special import erf
    taps = 0.5 * (erf((j + 0.5) * scale) - erf((j - 0.5) * scale))
    taps /= taps.sum()
    return taps.astype(np.float32)


@numba.njit(inline="always", **JIT)
def _blur_slice(src, dst, tmp, pad, taps_y, taps_x):
    """Blur one (Y, X) slice: y pass src -> tmp, x pass tmp -> dst (dst may be src)."""
    ny, nx = src.shape
    r = taps_y.size // 2
    for y in range(ny):
        row = tmp[y]
        for x in range(nx):
            row[x] = 0.0
        for j in range(taps_y.size):
            yy = min(max(y + j - r, 0), ny - 1)
            t = taps_y[j]
            s = src[yy]
            for x in range(nx):
                row[x] += t * s[x]
    r = taps_x.size // 2
    for y in range(ny):
        row = tmp[y]
        first = row[0]
        last = row[nx - 1]
        for x in range(r):
            pad[x] = first
            pad[r + nx + x] = last
        for x in range(nx):
            pad[r + x] = row[x]
        d = dst[y]
        for x in range(nx):
            d[x] = 0.0
        for j in range(taps_x.size):
            t = taps_x[j]
            p = pad[j:j + nx]
            for x in range(nx):
                d[x] += t * p[x]


@numba.njit(**PARALLEL_JIT)
def _blur_volume_parallel(src, dst, taps_y, taps_x, nchunk):
    """Blur every slice of src into dst; slices split in ``nchunk`` contiguous chunks.

    Each slice's arithmetic is independent of the chunking, so the bytes do not
    depend on the thread count (``nchunk`` is passed in because calling
    ``numba.get_num_threads()`` inside would prevent caching).
    """
    nz, ny, nx = src.shape
    nchunk = max(1, min(nchunk, nz))
    r = taps_x.size // 2
    for c in numba.prange(nchunk):
        tmp = np.empty((ny, nx), dtype=np.float32)
        pad = np.empty(nx + 2 * r, dtype=np.float32)
        z0 = (c * nz) // nchunk
        z1 = ((c + 1) * nz) // nchunk
        for z in range(z0, z1):
            _blur_slice(src[z], dst[z], tmp, pad, taps_y, taps_x)


@numba.njit(**JIT)
def _blur_volume_serial(src, dst, taps_y, taps_x):
    """Same arithmetic as the parallel kernel, one thread (small patches)."""
    nz, ny, nx = src.shape
    r = taps_x.size // 2
    tmp = np.empty((ny, nx), dtype=np.float32)
    pad = np.empty(nx + 2 * r, dtype=np.float32)
    for z in range(nz):
        _blur_slice(src[z], dst[z], tmp, pad, taps_y, taps_x)
