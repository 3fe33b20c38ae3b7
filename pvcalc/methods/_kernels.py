"""numba kernels of the regions and of the noise estimate (private; no validation).

- :func:`_bounding_boxes`: per-label bounding boxes of a label image in one pass
  (``scipy.ndimage.find_objects`` does the same but is several times slower on
  a calcium-scoring volume).
- :func:`_block_inflation`: the block-mean variance inflation of the background
  shell for every block side (see :mod:`pvcalc.methods._noise`).

The callers guarantee C-contiguous arrays of the documented dtypes.
"""

import numba
import numpy as np

from pvcalc._numba_config import JIT


@numba.njit(**JIT)
def _bounding_boxes(labels, n_labels):
    """(n_labels, 6) int64: z0, z1, y0, y1, x0, x1 (half-open) of labels 1..n; z0 = -1 if absent."""
    out = np.empty((n_labels, 6), dtype=np.int64)
    for i in range(n_labels):
        out[i, 0] = -1
    nz, ny, nx = labels.shape
    for z in range(nz):
        for y in range(ny):
            row = labels[z, y]
            top = 0
            for x in range(nx):   # branch-free (vectorises): most rows hold no label
                top = max(top, row[x])
            if top <= 0:
                continue
            for x in range(nx):
                v = labels[z, y, x]
                if v <= 0 or v > n_labels:
                    continue
                b = out[v - 1]
                if b[0] < 0:
                    b[0] = z
                    b[1] = z + 1
                    b[2] = y
                    b[3] = y + 1
                    b[4] = x
                    b[5] = x + 1
                else:
                    b[1] = z + 1   # z only grows in raster order
                    b[2] = min(b[2], y)
                    b[3] = max(b[3], y + 1)
                    b[4] = min(b[4], x)
                    b[5] = max(b[5], x + 1)
    return out


@numba.njit(**JIT)
def _block_inflation(residual, shell, b_max, min_blocks):
    """(b_max + 1,) float64: mean over blocks of (block sum)^2 / n_k, per block side b.

    Blocks are the b x b tiles of each slice starting at (0, 0); a block counts
    when at least half of it is shell (n_k >= b^2 / 2 shell voxels), and only
    the shell voxels are summed. Entries with fewer than ``min_blocks`` blocks,
    and entries 0 and 1, are NaN.
    """
    nz, ny, nx = residual.shape
    out = np.full(b_max + 1, np.nan)
    for b in range(2, b_max + 1):
        total = 0.0
        count = 0
        for z in range(nz):
            for y0 in range(0, ny - b + 1, b):
                for x0 in range(0, nx - b + 1, b):
                    s = 0.0
                    n = 0
                    for y in range(y0, y0 + b):
                        for x in range(x0, x0 + b):
                            if shell[z, y, x]:
                                s += residual[z, y, x]
                                n += 1
                    if 2 * n >= b * b:
                        total += s * s / n
                        count += 1
        if count >= min_blocks:
            out[b] = total / count
    return out
