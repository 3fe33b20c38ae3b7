"""In-plane resolution from the edge of a calibration rod: ESF -> LSF -> MTF, and a disc fit.

The rod is a disc in every axial slice inside its z section. Its radial edge spread
function (ESF) is sampled finely by binning every pixel's distance to the rod's centre
(bins of a tenth of a pixel by default), which oversamples the edge because the pixel
centres fall at every sub-pixel distance around the circle (Richard et al. 2012,
Friedman et al. 2013). Differentiating the ESF gives the line spread function (LSF); its
Fourier transform, normalised at zero frequency, is the (presampled) MTF.

A parametric fit of the same ESF gives the Gaussian width: the image of a disc of radius
R blurred by an isotropic Gaussian of SD s reads, at distance r from its centre,
``bg + (top - bg) * P(r)`` with ``P(r) = F_ncx2((R / s)^2; 2, (r / s)^2)``, the chance that
a 2D Gaussian centred at distance r falls inside the disc, i.e. the CDF of a non-central
chi-squared variable with 2 degrees of freedom. It is exact for a disc (no straight-edge
approximation), so the curvature of a 10 or 20 mm rod costs no bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from phantoms.psf import FWHM_PER_SIGMA

__all__ = ["EdgeResult", "GAUSSIAN_MTF10_OVER_MTF50", "measure_edge"]

#: MTF10 / MTF50 of a Gaussian PSF: sqrt(ln 10 / ln 2) = 1.8226.
GAUSSIAN_MTF10_OVER_MTF50 = math.sqrt(math.log(10.0) / math.log(2.0))
#: A shape is called non-Gaussian when MTF10 / MTF50 differs from the Gaussian's by more
#: than this fraction of it (and by more than 3 bootstrap standard errors of the ratio) ...
NON_GAUSSIAN_RATIO_TOLERANCE = 0.15
#: ... or when the Gaussian fit's RMS residual exceeds twice the bins' noise plus this
#: fraction of the edge contrast.
NON_GAUSSIAN_RESIDUAL_FRACTION = 0.01


@dataclass(frozen=True, eq=False)
class EdgeResult:
    """What :func:`measure_edge` measured (lengths in mm, HU, frequencies in cycles/mm)."""

    centre_yx_mm: tuple
    radius_mm: float
    sigma_mm: float
    sigma_se_mm: float
    inside_hu: float
    outside_hu: float
    rms_residual_hu: float
    noise_rms_hu: float
    mtf50_per_mm: float
    mtf50_se_per_mm: float
    mtf10_per_mm: float
    mtf10_se_per_mm: float
    n_pixels: int
    n_slices: int
    esf: pd.DataFrame          # r_mm, mean_hu, n, model_hu
    mtf: pd.DataFrame          # frequency_per_mm, mtf, se (bootstrap), mtf_gaussian

    @property
    def esf_fwhm_mm(self):
        """FWHM of the fitted Gaussian (the edge's, pixel footprint included)."""
        return FWHM_PER_SIGMA * self.sigma_mm

    @property
    def mtf10_over_mtf50(self):
        return self.mtf10_per_mm / self.mtf50_per_mm

    @property
    def non_gaussian_reasons(self):
        """Why the edge does not look Gaussian (empty when it does)."""
        out = []
        ratio = self.mtf10_over_mtf50
        # the ratio's bootstrap error: MTF10 of a noisy edge is far less certain than MTF50
        rel = math.hypot(self.mtf10_se_per_mm / self.mtf10_per_mm,
                         self.mtf50_se_per_mm / self.mtf50_per_mm)
        allowed = max(NON_GAUSSIAN_RATIO_TOLERANCE * GAUSSIAN_MTF10_OVER_MTF50,
                      3.0 * ratio * rel if math.isfinite(rel) else 0.0)
        if math.isfinite(ratio) and abs(ratio - GAUSSIAN_MTF10_OVER_MTF50) > allowed:
            out.append(f"MTF10 / MTF50 = {ratio:.3f}, a Gaussian has "
                       f"{GAUSSIAN_MTF10_OVER_MTF50:.3f} (allowed +- {allowed:.3f})")
        limit = 2.0 * self.noise_rms_hu + NON_GAUSSIAN_RESIDUAL_FRACTION * abs(
            self.inside_hu - self.outside_hu)
        if self.rms_residual_hu > limit:
            out.append(f"Gaussian-fit RMS residual {self.rms_residual_hu:.2f} HU > "
                       f"{limit:.2f} HU (2 x bin noise + 1% of the contrast)")
        return out


def disc_profile(r_mm, radius_mm, sigma_mm):
    """Fraction of a Gaussian-blurred disc at distance ``r_mm`` from its centre (0-1).

    ``F_ncx2((R / s)^2; 2, (r / s)^2)`` (``scipy.special.chndtr``, the ufunc behind
    ``scipy.stats.ncx2.cdf``).

    Examples
    --------
    >>> [round(float(v), 4) for v in disc_profile([0.0, 10.0, 20.0], 10.0, 0.5)]
    [1.0, 0.49, 0.0]
    """
    s = max(float(sigma_mm), 1e-6)
    return special.chndtr((radius_mm / s) ** 2, 2.0, (np.asarray(r_mm, dtype=float) / s) ** 2)


def _model(p, r):
    bg, top, radius, sigma = p
    return bg + (top - bg) * disc_profile(r, radius, sigma)


def _refine_centre(img, yy, xx, centre, radius, window_mm, background, n_iter=4):
    """Centroid of the excess over the background inside a circle, iterated."""
    cy, cx = centre
    for _ in range(n_iter):
        d2 = (yy - cy) ** 2 + (xx - cx) ** 2
        inside = d2 <= (radius + window_mm) ** 2
        w = img[:, inside] - background
        total = float(w.sum())
        if not total > 0:
            break
        cy = float((w * yy[inside]).sum() / total)
        cx = float((w * xx[inside]).sum() / total)
    return cy, cx


def _bin(r, v, lo, step, nbin, weights=None):
    k = np.floor((r - lo) / step).astype(np.int64)
    ok = (k >= 0) & (k < nbin)
    k = k[ok]
    v = v[ok]
    w = np.ones_like(v) if weights is None else weights[ok]
    n = np.bincount(k, weights=w, minlength=nbin)
    s = np.bincount(k, weights=w * v, minlength=nbin)
    s2 = np.bincount(k, weights=w * v * v, minlength=nbin)
    return n, s, s2


def _mtf_from_esf(r, esf, transform):
    """MTF of a binned ESF: finite-difference LSF, tapered, direct Fourier transform."""
    ok = np.isfinite(esf)
    if ok.sum() < 8:
        return np.full(transform.shape[0], np.nan)
    esf = np.interp(r, r[ok], esf[ok])
    # elementwise product and sum: a small matrix-vector product through BLAS is slower
    # (thread start-up) on a busy machine
    spec = np.abs((transform * -np.gradient(esf, r)[None, :]).sum(axis=1))
    return spec / spec[0] if spec[0] != 0 else np.full(transform.shape[0], np.nan)


def _transform(r, centre_r, freqs):
    """Fourier matrix (F, R) with a Tukey taper, centred on the edge.

    Flat over the inner 70% of the ESF range on each side of the edge, a half cosine
    over the outer 30%: the taper suppresses the noise of the far bins without
    narrowing the LSF (a full Hann window would, and raise the MTF).
    """
    half = max(centre_r - r[0], r[-1] - centre_r)
    u = np.abs(r - centre_r) / half
    edge = 0.3
    taper = np.where(u <= 1.0 - edge, 1.0,
                     0.5 * (1.0 + np.cos(np.pi * np.clip((u - 1.0 + edge) / edge, 0.0, 1.0))))
    return np.exp(-2j * np.pi * np.outer(freqs, r - centre_r)) * taper[None, :]


def _crossing(freqs, mtf, level):
    below = np.flatnonzero(mtf < level)
    if below.size == 0 or below[0] == 0:
        return float("nan")
    i = below[0]
    f0, f1, m0, m1 = freqs[i - 1], freqs[i], mtf[i - 1], mtf[i]
    return float(f0 + (m0 - level) * (f1 - f0) / (m0 - m1))


def measure_edge(values, z_index, y_mm, x_mm, *, centre_yx_mm, radius_mm, pixel_mm,
                 exclude=(), bin_fraction=0.1, inner_mm=None, outer_mm=None, n_boot=200,
                 seed=0):
    """ESF, Gaussian fit and MTF of one rod's edge in the slices ``z_index``.

    Parameters
    ----------
    values : (Z, Y, X) ndarray
        HU.
    z_index : sequence of int
        Slices inside the rod's z section (edges of the section excluded by the caller).
    y_mm, x_mm : ndarray
        Pixel-centre coordinates (mm).
    centre_yx_mm, radius_mm : (float, float), float
        Where the rod is (a starting point: the centre is refined here).
    pixel_mm : float
        Pixel size (sets the bin width ``bin_fraction * pixel_mm``).
    exclude : sequence of ((y, x), radius_mm)
        Discs to leave out (other rods, inserts).
    inner_mm, outer_mm : float, optional
        ESF range from the edge inwards / outwards. Default ``min(0.8 R, 6 mm)`` and 6 mm.
    n_boot : int
        Bootstrap replicates over (slice, angular sector) blocks for the MTF50 / MTF10
        standard errors.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    EdgeResult
    """
    img = np.asarray(values[np.asarray(z_index, dtype=np.int64)], dtype=np.float64)
    yy, xx = np.meshgrid(np.asarray(y_mm, float), np.asarray(x_mm, float), indexing="ij")
    radius = float(radius_mm)
    inner = min(0.8 * radius, 6.0) if inner_mm is None else float(inner_mm)
    outer = 6.0 if outer_mm is None else float(outer_mm)
    keep = np.ones(yy.shape, dtype=bool)
    for (ey, ex), er in exclude:
        keep &= (yy - ey) ** 2 + (xx - ex) ** 2 > er ** 2
    cy, cx = (float(v) for v in centre_yx_mm)
    d0 = np.hypot(yy - cy, xx - cx)
    ring = keep & (d0 > radius + outer - 1.5) & (d0 <= radius + outer)
    core = keep & (d0 < max(radius - inner, 0.5 * radius))
    if ring.sum() < 10 or core.sum() < 5:
        raise ValueError(f"the rod edge at (y, x) = ({cy:.1f}, {cx:.1f}) mm, radius "
                         f"{radius:.1f} mm has too few clear pixels around it; check the "
                         "layout's rod position and radius")
    background = float(np.median(img[:, ring]))
    cy, cx = _refine_centre(img, yy, xx, (cy, cx), radius, min(3.0, outer), background)
    dist = np.hypot(yy - cy, xx - cx)
    sel = keep & (dist >= radius - inner) & (dist <= radius + outer)
    r = np.broadcast_to(dist[sel], (img.shape[0], int(sel.sum()))).ravel()
    v = img[:, sel].ravel()
    angle = np.broadcast_to(np.arctan2(yy - cy, xx - cx)[sel], (img.shape[0], int(sel.sum())))
    block = (np.arange(img.shape[0])[:, None] * 8
             + np.floor((angle + np.pi) / (2 * np.pi) * 8).clip(0, 7).astype(np.int64)).ravel()
    step = bin_fraction * pixel_mm
    lo = radius - inner
    nbin = int(math.floor((inner + outer) / step))
    centres = lo + (np.arange(nbin) + 0.5) * step
    n, s, s2 = _bin(r, v, lo, step, nbin)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / n
        var = s2 / n - mean ** 2
    good = n > 0
    top0 = float(np.median(img[:, core & keep]))
    fit = _fit(centres, mean, n, (background, top0, radius, max(0.3 * pixel_mm, 0.4)), radius)
    bg, top, rad, sigma = (float(t) for t in fit)
    model = _model(fit, centres)
    good = n > 0
    rms = float(np.sqrt(np.average((model[good] - mean[good]) ** 2, weights=n[good])))
    noise_rms = float(np.sqrt(np.average(np.clip(var[good], 0, None) / n[good], weights=n[good])))
    nyq = 0.5 / pixel_mm
    freqs = np.arange(0.0, 1.5 * nyq + 1e-9, min(0.01, nyq / 50))
    transform = _transform(centres, rad, freqs)
    mtf = _mtf_from_esf(centres, mean, transform)
    m50, m10 = _crossing(freqs, mtf, 0.5), _crossing(freqs, mtf, 0.1)
    # block bootstrap (slice x angular octant): the noise is correlated within a block,
    # roughly independent between blocks, so the errors hold for correlated noise
    rng = np.random.default_rng(seed)
    blocks, k_of = np.unique(block, return_inverse=True)
    boots, boot_mtf = [], []
    for _ in range(int(n_boot)):
        w = np.bincount(rng.integers(0, blocks.size, blocks.size),
                        minlength=blocks.size)[k_of].astype(np.float64)
        bn, bs, _ = _bin(r, v, lo, step, nbin, weights=w)
        with np.errstate(invalid="ignore", divide="ignore"):
            bm = np.where(bn > 0, bs / bn, np.nan)
        bmtf = _mtf_from_esf(centres, bm, transform)
        boot_mtf.append(bmtf)
        bfit = _fit(centres, bm, bn, fit, radius, max_nfev=20)
        boots.append((bfit[3], _crossing(freqs, bmtf, 0.5), _crossing(freqs, bmtf, 0.1)))
    boots = np.asarray(boots, dtype=float).reshape(-1, 3)
    se = [float(np.nanstd(boots[:, j], ddof=1)) if np.isfinite(boots[:, j]).sum() > 2
          else float("nan") for j in range(3)]
    esf = pd.DataFrame({"r_mm": centres, "mean_hu": mean, "n": n.astype(np.int64),
                        "model_hu": model})
    mtf_se = (np.nanstd(np.asarray(boot_mtf), axis=0, ddof=1) if len(boot_mtf) > 2
              else np.full(freqs.size, np.nan))
    mtf_table = pd.DataFrame({"frequency_per_mm": freqs, "mtf": mtf, "se": mtf_se,
                              "mtf_gaussian": np.exp(-2.0 * np.pi ** 2 * sigma ** 2 * freqs ** 2)})
    return EdgeResult(centre_yx_mm=(cy, cx), radius_mm=rad, sigma_mm=sigma, sigma_se_mm=se[0],
                      inside_hu=top, outside_hu=bg, rms_residual_hu=rms, noise_rms_hu=noise_rms,
                      mtf50_per_mm=m50, mtf50_se_per_mm=se[1], mtf10_per_mm=m10,
                      mtf10_se_per_mm=se[2], n_pixels=int(v.size), n_slices=int(img.shape[0]),
                      esf=esf, mtf=mtf_table)


def _fit(r, mean, n, start, radius, max_nfev=None):
    """Least-squares disc-edge fit (bg, top, R, s) of the binned ESF, weights sqrt(count).

    Variable projection: for each (R, s) the levels (bg, top) are the weighted linear
    least-squares solution, so the optimiser searches two parameters only.
    """
    good = (n > 0) & np.isfinite(mean)
    rg, mg, wg = r[good], mean[good], np.sqrt(n[good])

    def levels(q):
        prof = disc_profile(rg, q[0], q[1])
        a = np.stack([(1.0 - prof) * wg, prof * wg], axis=1)
        coef = np.linalg.lstsq(a, mg * wg, rcond=None)[0]
        return coef, a

    def resid(q):
        coef, a = levels(q)
        return a @ coef - mg * wg

    lo, hi = [0.5 * radius, 0.02], [1.5 * radius, 5.0]
    x0 = np.clip(np.asarray(start, dtype=float)[2:], np.add(lo, 1e-9), np.subtract(hi, 1e-9))
    q = optimize.least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", max_nfev=max_nfev).x
    (bg, top), _ = levels(q)
    return np.array([bg, top, q[0], q[1]])
