"""Cheap partial-volume-aware Agatston estimate of lesions (private; re-exported by
:mod:`phantoms.library`)."""

from __future__ import annotations

import math

import numpy as np

from phantoms._validate import real_in_range


def _agatston_weight(peak_hu):
    """Agatston density weight at 120 kVp cut-offs (130/200/300/400 HU)."""
    if peak_hu < 130.0:
        return 0.0
    if peak_hu < 200.0:
        return 1.0
    if peak_hu < 300.0:
        return 2.0
    if peak_hu < 400.0:
        return 3.0
    return 4.0


def _blurred_disk(r, radius, sigma):
    """Occupancy at distance r of a disk (radius) blurred by a 2D Gaussian (sigma)."""
    from scipy.stats import ncx2

    return ncx2.cdf((radius / sigma) ** 2, 2, (np.asarray(r, dtype=float) / sigma) ** 2)


def estimated_agatston(lesions, *, kvp=120.0, tissue_hu=40.0, slice_thickness_mm=3.0,
                       psf_fwhm_mm=1.3, pixel_mm=0.49, threshold_hu=130.0, n_offsets=12):
    """Cheap Agatston estimate per lesion, before any simulation.

    Parameters
    ----------
    lesions : sequence of Lesion
        Lesions with ``shape.volume_mm3`` and ``density_mg_cm3``.
    kvp : float, default 120
        Tube voltage (kV) for the HU of the calcium (``materials.hu_per_mg_cm3``).
    tissue_hu : float, default 40
        HU of the surrounding tissue.
    slice_thickness_mm : float, default 3
        Slice thickness t of the contiguous scoring reconstruction (mm).
    psf_fwhm_mm : float, default 1.3
        In-plane PSF FWHM (mm).
    pixel_mm : float, default 0.49
        Pixel size (mm); adds its box width to the blur.
    threshold_hu : float, default 130
        Calcium threshold (HU).
    n_offsets : int, default 12
        Slice-grid offsets averaged over.

    Returns
    -------
    ndarray of float
        One estimate per lesion (expected over a uniformly random slice offset).

    Notes
    -----
    Each lesion becomes the cylinder with diameter = height h = (4 V / pi)^(1/3)
    (the insert shape) and contrast dHU = k(kVp) x density. A box slice of thickness
    t at offset u covers the fraction c(u) = overlap / t of it along z; in-plane the
    disk is blurred by a Gaussian of sigma^2 = (FWHM / 2.355)^2 + pixel^2 / 12, with
    occupancy g(r) = P(|X| <= h / 2), X ~ N(r, sigma^2 I_2) (non-central chi-square
    cdf). A pixel is calcium when HU_tissue + dHU c g(r) >= threshold, i.e. inside
    the radius r* with g(r*) = (threshold - HU_tissue) / (dHU c), so the slice adds
    area pi r*^2 with Agatston weight w(HU_tissue + dHU c g(0)) (1 to 4 at
    130/200/300/400 HU):

        A_est = mean over u of sum over slices [pi r*^2 x w] x (t / 3 mm).

    This is the "area x density weight" rule with the partial-volume effect of
    the PSF and the slice; it ignores the real shape, noise and motion, so it is a
    target for drawing populations, not a score (``pvcalc.score`` on the
    simulated scan is; ``docs/phantoms.md`` compares the two).

    Examples
    --------
    >>> from phantoms.library import cci_phantom, estimated_agatston
    >>> est = estimated_agatston(cci_phantom().lesions)
    >>> [round(float(v)) for v in est[:3]]    # large_hd, medium_hd, small_hd (1 mm: missed)
    [263, 76, 0]
    """
    from phantoms.materials import hu_per_mg_cm3

    k = hu_per_mg_cm3(kvp)
    t = real_in_range("slice_thickness_mm", slice_thickness_mm, 0.1, 20.0, unit="mm")
    fwhm = real_in_range("psf_fwhm_mm", psf_fwhm_mm, 0.05, 10.0, unit="mm")
    pix = real_in_range("pixel_mm", pixel_mm, 0.0, 5.0, unit="mm")
    sigma = math.sqrt((fwhm / 2.3548) ** 2 + pix * pix / 12.0)
    out = np.zeros(len(lesions))
    for i, les in enumerate(lesions):
        h = (4.0 * float(les.shape.volume_mm3) / math.pi) ** (1.0 / 3.0)
        dhu = k * float(les.density_mg_cm3)
        f_star = (threshold_hu - tissue_hu) / dhu
        g0 = float(_blurred_disk(0.0, h / 2.0, sigma))
        # slice centres u + j t for every offset u; the lesion spans z in [-h/2, h/2]
        u = (np.arange(n_offsets) + 0.5) / n_offsets * t
        j = np.arange(math.floor((-h / 2 - t / 2) / t) - 1, math.ceil((h / 2 + t / 2) / t) + 2)
        zc = (u[:, None] + j[None, :] * t).ravel()
        c = np.clip(np.minimum(zc + t / 2, h / 2) - np.maximum(zc - t / 2, -h / 2), 0.0, None) / t
        c = c[c * g0 >= f_star]
        if c.size == 0:
            continue
        target = f_star / c
        lo = np.zeros_like(c)
        hi = np.full_like(c, h / 2 + 6.0 * sigma)
        for _ in range(40):                      # g decreases with r: vectorised bisection
            mid = 0.5 * (lo + hi)
            above = _blurred_disk(mid, h / 2, sigma) >= target
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        weights = np.array([_agatston_weight(tissue_hu + dhu * cz * g0) for cz in c])
        total = float(np.sum(np.pi * lo * lo * weights))
        out[i] = total / n_offsets * (t / 3.0)
    return out
