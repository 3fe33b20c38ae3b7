"""Noise of voxel sums under correlated CT noise, estimated from the background shell.

The integrated-intensity methods report an excess ``E = sum_ROI (I - S_bkg)``
and call a lesion detected when E is large against its standard error. With
white noise of SD sigma, ``Var(sum of n voxels) = n sigma^2``; CT noise is
correlated (the reconstruction kernel in-plane, the slice profile along z),
so a sum of n voxels holds fewer independent samples, ``n_eff = n / A``, with
the variance inflation ``A = sum over lags of the noise correlation``.

``A`` is estimated from the shell, the only calcium-free voxels the method may
see, assuming a correlation separable into in-plane and z parts
(``A = A_xy x A_z``):

- ``A_xy``: block means. The crop's slices are tiled into b x b pixel blocks,
  b from 2 up to :data:`BLOCK_MM` / pixel size (3 mm: the noise of soft
  calcium-scoring kernels is correlated over about 2.5 mm, the period of the
  peak of its power spectrum); blocks at least half covered by the shell
  count, each with its ``n_k`` shell voxels. ``A_b = mean(n_k x m_k^2) /
  sigma^2``, with ``m_k`` the block's mean residual (HU minus the shell mean);
  at least :data:`MIN_BLOCKS` blocks are needed. For white noise ``A_b = 1``;
  positive short-range correlation makes it larger. ``A_xy`` is the largest
  ``A_b``, and never less than 1.
- ``A_z``: the correlation ``rho_m`` of shell voxels m slices apart (m = 1 ..
  ceil(slice thickness / increment), i.e. the lags the slice profile can
  reach), from every pair of shell voxels at the same (y, x);
  ``A_z = 1 + 2 sum_m max(rho_m, 0)``.

The estimate errs on the conservative side (it overstates the variance): the
maximum over block sizes, the residual taken about one shell mean (a slow
trend adds to it), negative correlations clipped to zero. Filtered
back-projection noise has a noise power spectrum that vanishes at zero
frequency in-plane (the ramp filter), so the true variance of a large ROI sum
is below ``n sigma^2 A``: the false-positive rate of the detection test is then
below its nominal level (measured in docs/methods/integrated.md).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from pvcalc.methods._kernels import _block_inflation

__all__ = ["excess_test", "noise_inflation"]

#: Largest in-plane block side (mm) of the block-mean estimate.
BLOCK_MM = 3.0
#: Fewest blocks for a block size to count.
MIN_BLOCKS = 10


def noise_inflation(region) -> float:
    """Variance inflation factor A >= 1 of voxel sums in ``region`` (module notes)."""
    shell = region.background
    sigma2 = region.background_sd_hu ** 2
    if not np.isfinite(sigma2) or sigma2 <= 0 or not shell.any():
        return 1.0
    r = np.where(shell, region.hu - region.background_hu, 0.0)
    nz = shell.shape[0]
    a_xy = 1.0
    dy, dx = region.spacing_mm[1:]
    largest = max(2, round(BLOCK_MM / max(min(dy, dx), 1e-9)))
    per_block = _block_inflation(np.ascontiguousarray(r), np.ascontiguousarray(shell),
                                 largest, MIN_BLOCKS)
    valid = per_block[np.isfinite(per_block)]
    if valid.size:
        a_xy = max(a_xy, float(valid.max()) / sigma2)
    lags = min(nz - 1, max(1, math.ceil(region.slice_thickness_mm / region.increment_mm - 1e-9)))
    a_z = 1.0
    for m in range(1, lags + 1):
        pair = shell[:-m] & shell[m:]
        if np.count_nonzero(pair) < MIN_BLOCKS:
            continue
        u, v = r[:-m][pair], r[m:][pair]
        # np.sum (pairwise, fixed order) rather than np.dot (BLAS): the bytes must not
        # depend on the BLAS build or its thread count
        den = math.sqrt(float(np.sum(u * u)) * float(np.sum(v * v)))
        if den > 0:
            a_z += 2.0 * max(float(np.sum(u * v)) / den, 0.0)
    return a_xy * a_z


def excess_test(region, excess_hu_voxels, n_voxels, alpha):
    """z score, standard error and detection of an excess over the local background.

    Parameters
    ----------
    region : LesionRegion
    excess_hu_voxels : float
        ``E = sum over n_voxels voxels of (HU - background_hu)`` (HU x voxels).
    n_voxels : int
        Number of voxels summed.
    alpha : float
        One-sided false-positive rate of the test.

    Returns
    -------
    z_score, se, detected : float, float, bool

    Notes
    -----
    ``SE(E)^2 = sigma^2 A (n + n^2 / n_shell)``: the noise of the ROI sum plus
    that of ``n x`` the shell mean (taken as independent of the ROI sum: the
    gap between them keeps the correlation small, and a positive correlation
    would only lower the variance). Detected when ``E / SE > z_(1 - alpha)``.
    """
    a = region.noise_inflation
    var = region.background_sd_hu ** 2 * a * (n_voxels + n_voxels ** 2 / region.n_background)
    se = math.sqrt(var) if var > 0 else float("nan")
    if not se > 0:
        # a noise-free background: any excess above rounding (1e-6 HU per voxel) is signal
        signal = excess_hu_voxels > 1e-6 * n_voxels
        return (math.inf if signal else 0.0), 0.0, bool(signal)
    z = float(excess_hu_voxels) / se
    crit = math.sqrt(2.0) * float(special.erfinv(1.0 - 2.0 * alpha))
    return z, se, bool(z > crit)
