"""Noise magnitude and texture from uniform square ROIs: SD, 2D and radial NPS, lag-1 correlation.

The 2D noise power spectrum of N x N square ROIs of pixel p (ICRU Report 87, 2012; Dolly
et al. 2016; Friedman et al. 2013):

``NPS(u, v) = p^2 / N^2 * < |DFT(ROI - trend)|^2 >`` (HU^2 mm^2),

averaged over the ROIs, with the trend a least-squares plane (or the mean, or a quadratic)
of each ROI. Its integral over the 2D frequency plane is the pixel variance. The radial NPS
averages it over rings of width ``1 / (N p)``; its peak frequency (vertex of a parabola
through the highest ring and its neighbours) and its mean frequency
``f_mean = sum f NPS_r(f) / sum NPS_r(f)`` describe the texture (Solomon et al. 2012).
Errors are bootstrap standard errors over the ROIs.

:func:`twin_table` turns the measured rings into the NPS table of a twin protocol
(``phantoms.Protocol.nps_radial``), corrected for the ROI's square window
(:func:`expected_rings`), so that the twin's noise, measured the same way, shows the same
rings rather than the window's leakage twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DETRENDS", "NoiseResult", "expected_rings", "measure_noise", "place_rois",
           "twin_table"]

#: Trend removed from each ROI before the NPS: its mean, a plane or a quadratic surface.
DETRENDS = ("mean", "plane", "quadratic")


@dataclass(frozen=True, eq=False)
class NoiseResult:
    """What :func:`measure_noise` measured (HU, cycles/mm)."""

    sd_hu: float
    sd_se_hu: float
    mean_hu: float
    mean_se_hu: float
    lag1: float
    lag1_se: float
    peak_per_mm: float
    peak_se_per_mm: float
    mean_freq_per_mm: float
    mean_freq_se_per_mm: float
    n_rois: int
    n_slices: int
    side_px: int
    pixel_mm: float
    nps: pd.DataFrame          # frequency_per_mm, nps_hu2_mm2, se_hu2_mm2 (rings to the corner)
    rois: pd.DataFrame         # slice, z_mm, y0_mm, x0_mm, side_mm, mean_hu, sd_hu


def place_rois(y_mm, x_mm, *, centre_yx_mm, radius_mm, side_px, exclude):
    """Top-left indices (j, i) of non-overlapping ``side_px`` squares in a disc.

    A grid of squares (centred on the disc, or shifted by half a side, whichever holds
    more) is kept where the whole square lies inside the disc of ``radius_mm`` and
    clears every excluded disc ``((y, x), r)``.
    """
    y = np.asarray(y_mm, dtype=float)
    x = np.asarray(x_mm, dtype=float)
    py, px = abs(y[1] - y[0]), abs(x[1] - x[0])
    cy, cx = centre_yx_mm
    side_y, side_x = side_px * py, side_px * px
    best = []
    for shift in (0.0, 0.5):
        n = int(math.ceil(radius_mm / min(side_y, side_x))) + 1
        out = []
        for a in range(-n, n + 1):
            for b in range(-n, n + 1):
                y0 = cy + (a - 0.5 + shift) * side_y - 0.5 * side_y
                x0 = cx + (b - 0.5 + shift) * side_x - 0.5 * side_x
                j = int(np.searchsorted(y, y0))
                i = int(np.searchsorted(x, x0))
                if j + side_px > y.size or i + side_px > x.size or j < 0 or i < 0:
                    continue
                ylo, yhi = y[j] - 0.5 * py, y[j + side_px - 1] + 0.5 * py
                xlo, xhi = x[i] - 0.5 * px, x[i + side_px - 1] + 0.5 * px
                corners = [(ylo, xlo), (ylo, xhi), (yhi, xlo), (yhi, xhi)]
                if max(math.hypot(u - cy, v - cx) for u, v in corners) > radius_mm:
                    continue
                clear = True
                for (ey, ex), er in exclude:
                    dy = max(ylo - ey, 0.0, ey - yhi)
                    dx = max(xlo - ex, 0.0, ex - xhi)
                    if math.hypot(dy, dx) < er:
                        clear = False
                        break
                if clear:
                    out.append((j, i))
        if len(out) > len(best):
            best = out
    return best


def _design(side, detrend):
    u = np.arange(side, dtype=float) - 0.5 * (side - 1)
    yy, xx = np.meshgrid(u, u, indexing="ij")
    cols = [np.ones(side * side)]
    if detrend in ("plane", "quadratic"):
        cols += [yy.ravel(), xx.ravel()]
    if detrend == "quadratic":
        cols += [yy.ravel() ** 2, xx.ravel() ** 2, (yy * xx).ravel()]
    return np.stack(cols, axis=1)


def _rings(side, pixel_mm):
    """Ring index of every 2D frequency (rings of width 1 / (N p), to the grid's corner)."""
    f = np.fft.fftfreq(side, d=pixel_mm)
    fr = np.hypot(f[:, None], f[None, :])
    step = 1.0 / (side * pixel_mm)
    k = np.rint(fr / step).astype(np.int64)
    nk = int(k.max()) + 1
    return k, nk, np.arange(nk) * step


def _peak(freqs, nps):
    """Peak frequency of a radial NPS: a local fit of ``log NPS = a + b log f - c f^2``.

    Over the contiguous rings around the highest one that hold at least half of its
    power; the peak of that curve is ``sqrt(b / (2 c))``. A gamma-like peak (power law
    rising, Gaussian roll-off) describes the ramp-times-apodisation shape of filtered
    back-projection noise (Hanson 1979) and uses many rings, so the estimate is far less
    noisy than the highest ring alone. Falls back to the parabola through the highest
    ring and its neighbours when the fit has no maximum.
    """
    i = int(np.argmax(nps[1:])) + 1
    top = nps[i]
    lo = i
    while lo - 1 >= 1 and nps[lo - 1] >= 0.5 * top:
        lo -= 1
    hi = i
    while hi + 1 < nps.size and nps[hi + 1] >= 0.5 * top:
        hi += 1
    if hi - lo >= 2 and np.all(nps[lo:hi + 1] > 0):
        f = freqs[lo:hi + 1]
        a = np.stack([np.ones_like(f), np.log(f), -f * f], axis=1)
        _, b, c = np.linalg.lstsq(a, np.log(nps[lo:hi + 1]), rcond=None)[0]
        if b > 0 and c > 0:
            peak = math.sqrt(b / (2.0 * c))
            if freqs[lo] - (freqs[1] - freqs[0]) <= peak <= freqs[hi] + (freqs[1] - freqs[0]):
                return float(peak)
    if i + 1 >= nps.size:
        return float(freqs[i])
    a, b, c = nps[i - 1], nps[i], nps[i + 1]
    den = a - 2.0 * b + c
    off = 0.5 * (a - c) / den if den < 0 else 0.0
    return float(freqs[i] + np.clip(off, -0.5, 0.5) * (freqs[1] - freqs[0]))


def _summary(radial, freqs, var, r_x, r_y, n_xy):
    """(peak, mean frequency, pooled SD, lag-1) of a set of ROIs' statistics (rings to
    the Nyquist frequency)."""
    nps = radial.mean(axis=0)
    sd = math.sqrt(float(var.mean()))
    lag1 = 0.5 * (float(r_x.sum()) + float(r_y.sum())) / float(n_xy.sum())
    return _peak(freqs, nps), float((freqs * nps).sum() / nps.sum()), sd, lag1


def measure_noise(values, rois, *, pixel_mm, side_px, z_mm, y_mm, x_mm, detrend="plane",
                  n_boot=200, seed=0):
    """Noise SD, NPS, peak and mean frequency, lag-1 autocorrelation from square ROIs.

    Parameters
    ----------
    values : (Z, Y, X) ndarray
        HU.
    rois : sequence of (k, j, i)
        Slice index and top-left pixel of each ``side_px`` square.
    pixel_mm : float
        Pixel size (mm).
    side_px : int
        ROI side in pixels.
    z_mm, y_mm, x_mm : ndarray
        Coordinates (for the ROI table).
    detrend : {"mean", "plane", "quadratic"}
        Trend removed from each ROI.
    n_boot : int
        Bootstrap replicates over ROIs.
    seed : int
        Seed of the bootstrap.
    """
    a = _design(side_px, detrend)
    proj = a @ np.linalg.pinv(a)
    k_ring, nk, freqs = _rings(side_px, pixel_mm)
    ring_n = np.bincount(k_ring.ravel(), minlength=nk)[:nk]
    dof = side_px * side_px - a.shape[1]
    radial, var, r_x, r_y, n_xy, rows = [], [], [], [], [], []
    for k, j, i in rois:
        roi = np.asarray(values[k, j:j + side_px, i:i + side_px], dtype=np.float64)
        flat = roi.ravel()
        d = (flat - proj @ flat).reshape(side_px, side_px)
        ps = np.abs(np.fft.fft2(d)) ** 2 * (pixel_mm ** 2 / (side_px * side_px))
        rad = np.bincount(k_ring.ravel(), weights=ps.ravel(), minlength=nk)[:nk] / ring_n
        radial.append(rad)
        var.append(float((d * d).sum()) / dof)
        # covariance at lag 1 (mean of the N (N - 1) products) over the mean square
        ms = float((d * d).mean())
        r_x.append(float((d[:, 1:] * d[:, :-1]).mean()) / ms)
        r_y.append(float((d[1:, :] * d[:-1, :]).mean()) / ms)
        n_xy.append(1.0)
        rows.append((int(k), float(z_mm[k]), float(y_mm[j]), float(x_mm[i]),
                     side_px * pixel_mm, float(roi.mean()), math.sqrt(var[-1])))
    radial = np.asarray(radial)
    var, r_x, r_y, n_xy = (np.asarray(t) for t in (var, r_x, r_y, n_xy))
    means = np.array([r[5] for r in rows])
    nyq = side_px // 2 + 1     # rings 0 .. N/2: up to the Nyquist frequency
    peak, fmean, sd, lag1 = _summary(radial[:, :nyq], freqs[:nyq], var, r_x, r_y, n_xy)
    rng = np.random.default_rng(seed)
    boots = []
    n = len(rows)
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        boots.append((*_summary(radial[idx, :nyq], freqs[:nyq], var[idx], r_x[idx], r_y[idx],
                                n_xy[idx]),
                      float(means[idx].mean())))
    boots = np.asarray(boots).reshape(-1, 5)
    se = boots.std(axis=0, ddof=1) if n > 1 and len(boots) > 2 else np.full(5, np.nan)
    nps = pd.DataFrame({"frequency_per_mm": freqs, "nps_hu2_mm2": radial.mean(axis=0),
                        "se_hu2_mm2": (radial.std(axis=0, ddof=1) / math.sqrt(n)) if n > 1
                        else np.full(nk, np.nan)})
    table = pd.DataFrame(rows, columns=["slice", "z_mm", "y0_mm", "x0_mm", "side_mm", "mean_hu",
                                        "sd_hu"])
    return NoiseResult(sd_hu=sd, sd_se_hu=float(se[2]), mean_hu=float(means.mean()),
                       mean_se_hu=float(se[4]), lag1=lag1, lag1_se=float(se[3]),
                       peak_per_mm=peak, peak_se_per_mm=float(se[0]), mean_freq_per_mm=fmean,
                       mean_freq_se_per_mm=float(se[1]), n_rois=n,
                       n_slices=int(np.unique([r[0] for r in rows]).size), side_px=int(side_px),
                       pixel_mm=float(pixel_mm),
                       nps=nps, rois=table)


def expected_rings(table_f, table_v, side_px, pixel_mm, grid=None):
    """Expected radial periodogram of ``side_px`` squares of a field whose NPS is the table.

    The field's NPS on a ``grid`` x ``grid`` pixel lattice is the table interpolated
    linearly in the radial frequency (the first value below the first frequency, 0
    beyond the last: the rule of ``phantoms.Protocol.nps_radial``). The mean
    periodogram of an N x N cut-out is the Fourier transform, on the ROI's frequency
    grid, of the autocovariance times the square window's autocorrelation
    ``(N - |dy|)(N - |dx|) / N^2``, folded modulo N; its ring averages (rings of
    ``1 / (N p)``) are returned, in arbitrary units.
    """
    n = int(side_px)
    m = int(grid or max(4 * n, 256))
    f = np.fft.fftfreq(m, d=pixel_mm)
    fr = np.hypot(f[:, None], f[None, :])
    s = np.interp(fr, table_f, table_v, left=table_v[0], right=0.0)
    cov = np.real(np.fft.ifft2(s))
    lags = np.arange(-(n - 1), n)
    c = cov[np.ix_(lags % m, lags % m)]
    a = (n - np.abs(lags))[:, None] * (n - np.abs(lags))[None, :] / float(n * n)
    folded = np.zeros((n, n))
    np.add.at(folded, (np.ix_(lags % n, lags % n)), c * a)
    spec = np.real(np.fft.fft2(folded))
    k_ring, nk, _ = _rings(n, pixel_mm)
    ring_n = np.bincount(k_ring.ravel(), minlength=nk)[:nk]
    return np.bincount(k_ring.ravel(), weights=spec.ravel(), minlength=nk)[:nk] / ring_n


def twin_table(freqs, rings, side_px, pixel_mm, iterations=6):
    """An NPS table whose ROIs' expected periodogram equals the measured one.

    The measured ring averages carry the square ROI's leakage (power from the peak in
    the sidelobes of its window) and its smoothing; a simulator given them directly
    would show them twice. Starting from the measured rings, each iteration multiplies
    the table by measured / expected (:func:`expected_rings`), ring by ring, so that a
    field with the table's NPS, measured the same way, gives the measured rings.
    Ring 0 (emptied by the detrending) is extrapolated linearly from rings 1 and 2.
    """
    target = np.asarray(rings, dtype=float).copy()
    target[0] = max(0.0, 2.0 * target[1] - target[2])
    target = target / target.sum()
    table = target.copy()
    ok = target > 0
    for _ in range(int(iterations)):
        pred = expected_rings(freqs, table, side_px, pixel_mm)
        pred = pred / pred.sum()
        ratio = np.ones_like(table)
        good = ok & (pred > 0)
        ratio[good] = target[good] / pred[good]
        table = np.clip(table * ratio, 0.0, None)
        table[0] = max(0.0, 2.0 * table[1] - table[2])
    return table / table.max()
