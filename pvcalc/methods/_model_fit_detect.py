"""Detection threshold of ``model_fit``: the maximum of a matched filter over the ROI (private).

``model_fit`` detects a lesion by fitting a fixed-size template (the prior
shape) and calling it detected when ``z = q / SE(q)`` exceeds a threshold ``u``.
At a fixed position (the ROI's centroid, the default) ``z`` is one N(0, 1)
value under the null and ``u = z(1 - alpha)``. When the fit may move the
template (``detection_search="z"`` or ``"roi"``), it finds the brightest
template-sized blob of the noise in the search region, so ``z`` is the maximum
of a smooth Gaussian field, and ``z(1 - alpha)`` would be exceeded far more
often than ``alpha`` (90% of calcium-free 1 mm ROIs at z > 1.645 in
``calcium_scoring`` scans with a search over the ROI).

``u`` solves ``P(max z >= u) = alpha`` with the expected Euler characteristic
of the excursion set of a 3D Gaussian field (Worsley et al. 1996):

    P(max z >= u) ~ sum_d R_d rho_d(u),        d = 0 .. 3
    rho_0 = 1 - Phi(u)
    rho_1 = (4 ln 2)^(1/2) / (2 pi)   exp(-u^2 / 2)
    rho_2 = (4 ln 2) / (2 pi)^(3/2)   u exp(-u^2 / 2)
    rho_3 = (4 ln 2)^(3/2) / (2 pi)^2 (u^2 - 1) exp(-u^2 / 2)

with the resel counts of the search region in units of the field's FWHM: for a
3D search, a sphere of the ROI's volume, ``s = (3 V / (4 pi FWHM_z FWHM_y
FWHM_x))^(1/3)`` and ``R = (1, 4 s, 2 pi s^2, 4/3 pi s^3)`` (as SPM's
``spm_Pec`` for a spherical search space); for a search along z only, a segment
of length L, ``R = (1, L / FWHM_z)``. The field is the template's matched filter
of the noise, so its FWHM is that of the kernel that turns white noise into it
(Worsley's definition, ``lambda = 4 ln 2 / FWHM^2``), ``FWHM = 2.3548 sigma``
with, per axis, ``sigma^2`` the template's second moment
(:func:`template_sigma_mm`) plus that of the noise's own smoothing: along z the
slice profile (the noise of a slice is the profile-weighted noise along z,
docs/scanner.md); in-plane none (filtered back-projection noise is rougher than
white noise smoothed by a kernel, so leaving it out errs towards a higher
threshold). :func:`field_sigma_mm` gives these widths.

References
----------
Worsley KJ, Marrett S, Neelin P, Vandal AC, Friston KJ, Evans AC. A unified
statistical approach for determining significant signals in images of cerebral
activation. Hum Brain Mapp 1996;4:58-73.
"""

from __future__ import annotations

import math

from scipy import optimize, special

__all__ = ["exceedance", "field_sigma_mm", "search_threshold", "template_sigma_mm"]

_FWHM_PER_SIGMA = math.sqrt(8.0 * math.log(2.0))
_FOUR_LN2 = 4.0 * math.log(2.0)


def template_sigma_mm(shape, diameter_mm, psf_fwhm_mm, pixel_mm, thickness_mm, profile,
                      edge):
    """RMS widths (z, y, x) of the prior template (mm): shape, PSF, pixel and slice profile.

    Second central moments add under convolution: per in-plane axis the PSF's
    ``sigma^2``, two pixel boxes ``2 p^2 / 12`` (the pixel average of the
    occupancy and the pixel-integrated PSF taps) and the shape's (disk of radius r:
    ``r^2 / 4``; ball: ``r^2 / 5``); along z the slice profile's (box
    ``T^2 / 12``; Gaussian ``sigma^2``; trapezoid of half-base a and half-top b:
    ``(a^2 + b^2) / 6``) and the shape's (cylinder of length L: ``L^2 / 12``;
    ball ``r^2 / 5``).
    """
    r = 0.5 * diameter_mm
    psf2 = (psf_fwhm_mm / _FWHM_PER_SIGMA) ** 2
    if shape == "cylinder":
        shape_xy, shape_z = r * r / 4.0, diameter_mm ** 2 / 12.0
    else:
        shape_xy = shape_z = r * r / 5.0
    ssp = _ssp_variance(thickness_mm, profile, edge)
    dz, dy, dx = pixel_mm
    del dz                       # the slices sample z; the profile is the z blur
    return (math.sqrt(ssp + shape_z), math.sqrt(psf2 + dy * dy / 6.0 + shape_xy),
            math.sqrt(psf2 + dx * dx / 6.0 + shape_xy))


def field_sigma_mm(template_sigma, thickness_mm, profile, edge):
    """RMS widths (z, y, x) of the kernel of the matched-filtered noise field (mm): the
    template's, and along z also the slice profile's (module notes)."""
    ssp = _ssp_variance(thickness_mm, profile, edge)
    sz, sy, sx = template_sigma
    return (math.sqrt(sz * sz + ssp), sy, sx)


def _ssp_variance(t, profile, edge):
    if profile == "gaussian":
        return (t / _FWHM_PER_SIGMA) ** 2
    if profile == "box":
        return t * t / 12.0
    a, b = 0.5 * t * (1.0 + edge), 0.5 * t * (1.0 - edge)
    return (a * a + b * b) / 6.0


def exceedance(u, extent_mm, field_fwhm_mm):
    """Expected Euler characteristic of the excursion set above ``u`` (module notes).

    ``extent_mm``: a volume (mm3) for a 3D search, with ``field_fwhm_mm`` (z, y, x);
    or a length (mm) for a search along z only, with ``field_fwhm_mm`` (z,).
    """
    e = math.exp(-0.5 * u * u)
    rho = (0.5 * special.erfc(u / math.sqrt(2.0)),
           math.sqrt(_FOUR_LN2) / (2.0 * math.pi) * e,
           _FOUR_LN2 / (2.0 * math.pi) ** 1.5 * u * e,
           _FOUR_LN2 ** 1.5 / (2.0 * math.pi) ** 2 * (u * u - 1.0) * e)
    if len(field_fwhm_mm) == 1:
        resels = (1.0, extent_mm / field_fwhm_mm[0])
    else:
        fz, fy, fx = field_fwhm_mm
        s = (3.0 * extent_mm / (4.0 * math.pi * fz * fy * fx)) ** (1.0 / 3.0)
        resels = (1.0, 4.0 * s, 2.0 * math.pi * s * s, 4.0 / 3.0 * math.pi * s ** 3)
    return sum(r * p for r, p in zip(resels, rho))


def search_threshold(alpha, extent_mm, field_sigma):
    """Threshold ``u`` of the maximum z over a search region (module notes).

    Parameters
    ----------
    alpha : float
        False-positive rate of the search (one-sided).
    extent_mm : float
        Volume of the search region (mm3) for a 3D search, or its length along z
        (mm) for a search along z only.
    field_sigma : tuple of float
        RMS widths (z, y, x) of the field's smoothing kernel (mm),
        :func:`field_sigma_mm`, for a 3D search; (z,) for a search along z.

    Returns
    -------
    float
        ``u >= z(1 - alpha)``: the single-test threshold when the region is much
        smaller than one resolution element.

    Examples
    --------
    >>> round(search_threshold(0.05, 1e-9, (1.0,)), 3)             # one position: z(0.95)
    1.645
    >>> u = search_threshold(0.05, 222.0, (1.0, 0.64, 0.64))       # a 1 mm insert's ROI
    >>> 3.7 < u < 4.1
    True
    >>> u = search_threshold(0.05, 9.0, (1.4,))                     # along z only
    >>> 2.2 < u < 2.6
    True
    """
    fwhm = tuple(_FWHM_PER_SIGMA * s for s in field_sigma)
    single = math.sqrt(2.0) * float(special.erfinv(1.0 - 2.0 * alpha))
    if exceedance(single, extent_mm, fwhm) <= alpha:
        return single
    hi = 2.0 * single + 10.0
    return float(optimize.brentq(lambda u: exceedance(u, extent_mm, fwhm) - alpha, single, hi,
                                 xtol=1e-10))
