"""Correlated CT noise: FBP-like in-plane NPS, z correlation from the slice profile.

:func:`noise_field` draws a zero-mean Gaussian field whose power spectrum is

``NPS(f_r, f_z) = c * f_r * exp(-f_r^2 / (2 f_p^2)) * S_z(f_z)``

- in-plane: the ramp ``|f|`` of filtered back-projection times a Gaussian
  apodisation; with the apodisation equal to the PSF's MTF,
  ``exp(-4 pi^2 sigma^2 f^2)``, the radial NPS peaks at
  ``f_p = 1 / (2 sqrt(2) pi sigma) = 0.2650 / FWHM`` (0.20 cycles/mm for a
  1.3 mm soft kernel). A given ``nps_peak_freq_per_mm`` sets ``f_p`` directly.
  A measured shape ``protocol.nps_radial`` (pairs (f, NPS)) replaces the whole
  in-plane factor: ``NPS_xy(f_r)`` is the table, linear between its points, its
  first value below its first frequency and 0 beyond its last.
- along z: ``S_z`` is the discrete spectrum of the slice sensitivity profile's
  autocorrelation ``R(d) = int s(u) s(u + d) du`` sampled at the increment, i.e.
  the correlation of slices k and k + m is ``R(m * inc) / R(0)`` (noise white
  along z before the slice profile averages it): 0 for contiguous box slices,
  0.5 for 1 mm box slices every 0.5 mm.
- ``c`` makes the expected variance exactly ``noise_sd_hu ** 2``, computed from
  the discrete spectrum itself (Parseval), not from the drawn sample, so the
  field is honestly Gaussian with the stated SD whatever the seed.

The field is synthesised directly as a complex Gaussian half-spectrum (random
numbers from the counter-based Philox generator in :mod:`phantoms._rng`, keyed
by ``seed`` and ``stream``) and turned into an image by one inverse real FFT
(``scipy.fft.irfftn``). The field is periodic over the array (FFT synthesis):
arrays much smaller than the correlation length (a few pixels in-plane, the
SSP support along z) wrap around.

References
----------
K. M. Hanson, "Detectability in computed tomographic images", Med. Phys. 6
(1979) 441-451 (NPS of filtered back-projection proportional to |f| times the
squared apodisation).
M. F. Kijewski, P. F. Judy, "The noise power spectrum of CT images", Phys. Med.
Biol. 32 (1987) 565-575. https://doi.org/10.1088/0031-9155/32/5/003
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np
import scipy.fft

from phantoms._noise_kernels import _shaped_half_spectrum_parallel, _shaped_half_spectrum_serial
from phantoms._rng import split_key
from phantoms._ssp import SSP_KINDS, ssp_cdf, ssp_half_support_mm
from phantoms.protocol import Protocol

#: Number of FFT worker threads for large fields (the bytes do not depend on it).
FFT_WORKERS = 2
#: Fields with fewer voxels than this use one thread (patches): waking a second
#: thread costs more than the work. The bytes are the same either way.
SERIAL_VOXELS = 1 << 16
#: Slices per 2D inverse FFT call (bounds the FFT scratch memory to ~16 MiB at 512 x 512).
_FFT_CHUNK_SLICES = 16


def ssp_autocorrelation(lags_mm, thickness_mm, profile):
    """Autocorrelation ``R(d) = int s(u) s(u + d) du`` of the unit-area SSP (1/mm).

    Evaluated numerically from the profile's cumulative integral on a grid of
    ``thickness / 200`` (exact for the box; error < 1e-4 relative for the
    trapezoid and Gaussian), linearly interpolated between grid lags.

    Examples
    --------
    >>> r = ssp_autocorrelation([0.0, 0.5, 1.0], 1.0, "box")
    >>> [round(float(v), 3) for v in r]
    [1.0, 0.5, 0.0]
    """
    grid, full = _autocorrelation_table(float(thickness_mm), profile)
    lags = np.abs(np.asarray(lags_mm, dtype=np.float64))
    return np.interp(lags, grid, full, right=0.0)


@functools.lru_cache(maxsize=16)
def _autocorrelation_table(thickness_mm, profile):
    """(lags, R) on the grid of thickness / 200, lags >= 0 (cached per profile)."""
    kind = SSP_KINDS[profile]
    h = thickness_mm / 200.0
    half = ssp_half_support_mm(thickness_mm, kind)
    n = int(math.ceil(half / h)) + 1
    edges = (np.arange(-n, n + 1, dtype=np.float64) - 0.5) * h
    cdf = np.array([ssp_cdf(e, thickness_mm, kind) for e in edges])
    s = np.diff(cdf) / h                         # bin-averaged profile, 2n + 1 bins
    full = np.correlate(s, s, mode="full") * h   # lags (-2n .. 2n) * h
    mid = (full.size - 1) // 2
    grid = np.arange(full.size - mid) * h
    return grid, full[mid:]


def radial_nps(freq_per_mm, table):
    """A radial NPS table evaluated at radial frequencies (cycles/mm).

    Linear between the table's points, its first value below its first
    frequency, 0 beyond its last; values divided by the table's largest.

    Parameters
    ----------
    freq_per_mm : array_like of float
        Radial spatial frequencies (cycles/mm).
    table : sequence of (float, float)
        (frequency_per_mm, relative_nps) pairs with increasing frequencies, as
        ``Protocol.nps_radial`` holds them.

    Returns
    -------
    ndarray of float64
        Relative NPS at ``freq_per_mm``, in [0, 1].

    Examples
    --------
    >>> t = ((0.0, 0.0), (0.2, 2.0), (0.6, 1.0))
    >>> radial_nps([0.1, 0.2, 0.4, 0.6, 0.7], t).tolist()
    [0.5, 1.0, 0.75, 0.5, 0.0]
    """
    f, v = (np.asarray(c, dtype=np.float64) for c in zip(*table))
    return np.interp(np.asarray(freq_per_mm, dtype=np.float64), f, v / v.max(), right=0.0)


@functools.lru_cache(maxsize=256)
def _filters(shape, pixel_mm, increment_mm, thickness_mm, profile, peak_per_mm, table=None):
    """(hz, hxy, norm2): amplitude filters and the full-spectrum sum of their squares.

    ``table``: the protocol's ``nps_radial`` (replaces the parametric in-plane shape).
    """
    nz, ny, nx = shape
    fy = np.fft.fftfreq(ny, d=pixel_mm)
    fx = np.fft.rfftfreq(nx, d=pixel_mm)
    fr = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    if table is None:
        nps_xy = fr * np.exp(-fr ** 2 / (2.0 * peak_per_mm ** 2))
    else:
        nps_xy = radial_nps(fr, table)
    weight = np.full(fx.size, 2.0)
    weight[0] = 1.0
    if nx % 2 == 0:
        weight[-1] = 1.0
    sum_xy = float((nps_xy * weight[None, :]).sum())
    if not sum_xy > 0.0:
        raise ValueError(
            f"protocol.nps_radial has no power at the in-plane frequencies of a {ny} x {nx} "
            f"grid of {pixel_mm:g} mm pixels (0 to {float(fr.max()):.4g} cycles/mm in steps of "
            f"about {1.0 / (max(ny, nx) * pixel_mm):.3g}); use a larger patch or a table "
            "with power between those frequencies")
    if nz == 1:
        sz = np.ones(1)
    else:
        m = np.arange(nz)
        # periodise: sum over aliases of the (finite-support) autocorrelation
        j = np.arange(-4, 5)[:, None]
        r = ssp_autocorrelation((m[None, :] + j * nz) * increment_mm, thickness_mm,
                                profile).sum(axis=0)
        sz = np.clip(np.fft.fft(r).real, 0.0, None)
    norm2 = sum_xy * float(sz.sum())
    hz = np.sqrt(sz).astype(np.float32)
    hxy = np.sqrt(nps_xy).astype(np.float32)
    hz.setflags(write=False)
    hxy.setflags(write=False)
    return hz, hxy, norm2


def noise_model(shape, protocol):
    """The model's expected NPS pieces for ``shape``: (nps_xy, nps_z), both unit-sum.

    ``nps_xy`` is (Y, X // 2 + 1) over ``fftfreq(Y) x rfftfreq(X)`` and
    ``nps_z`` is (Z,) over ``fftfreq(Z)``; each normalised to sum 1 over the
    full (two-sided) spectrum. Used by the tests and for plotting.
    """
    shape = _check_shape(shape)
    hz, hxy, _ = _filters(shape, *_protocol_key(protocol))
    nps_xy = hxy.astype(np.float64) ** 2
    w = np.full(nps_xy.shape[1], 2.0)
    w[0] = 1.0
    if shape[2] % 2 == 0:
        w[-1] = 1.0
    nps_z = hz.astype(np.float64) ** 2
    return nps_xy / (nps_xy * w).sum(), nps_z / nps_z.sum()


def _check_shape(shape):
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints (Z, Y, X), got {shape!r}") from None
    if len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (Z, Y, X) or (Y, X) with every size >= 1, got {shape!r}")
    return shape


def _protocol_key(protocol):
    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol must be a phantoms.Protocol (e.g. "
                        f"get_protocol('calcium_scoring')), got {type(protocol).__name__}")
    return (protocol.pixel_mm, protocol.increment_mm, protocol.slice_thickness_mm,
            protocol.slice_profile, protocol.nps_peak_per_mm, protocol.nps_radial)


def noise_field(shape, protocol, *, seed, stream=0, out=None, accumulate=False):
    """Zero-mean correlated Gaussian CT noise with the protocol's SD and NPS.

    Parameters
    ----------
    shape : tuple of int
        (Z, Y, X), or (Y, X) for one slice.
    protocol : phantoms.Protocol
        Uses ``noise_sd_hu``, ``pixel_mm``, ``increment_mm``,
        ``slice_thickness_mm``, ``slice_profile`` and ``nps_radial`` (a measured
        in-plane shape) or else ``nps_peak_per_mm``.
    seed : int
        64-bit seed of the counter-based generator; same seed, same bytes
        (whatever the thread count).
    stream : int, optional
        Independent stream of the same seed (e.g. one per repeat or patch).
    out : float32 ndarray of ``shape``, optional
        Where to write (or add, with ``accumulate=True``) the noise.
    accumulate : bool, optional
        Add the noise into ``out`` instead of overwriting it.

    Returns
    -------
    ndarray of float32
        The noise (HU), or ``out``.

    Notes
    -----
    See the module docstring for the NPS model. The expected variance is
    exactly ``noise_sd_hu ** 2`` by construction; a given realisation's sample
    SD scatters around it. ``noise_sd_hu = 0`` gives zeros.

    Examples
    --------
    >>> from phantoms import get_protocol
    >>> n = noise_field((4, 64, 64), get_protocol("calcium_scoring"), seed=1)
    >>> n.dtype, n.shape, 15 < float(n.std()) < 25
    (dtype('float32'), (4, 64, 64), True)
    """
    shape3 = _check_shape(shape)
    key = _protocol_key(protocol)
    if not isinstance(accumulate, (bool, np.bool_)):
        raise TypeError(f"accumulate must be True or False, got {accumulate!r}")
    k0, k1, s0, s1 = split_key(seed, stream)
    if out is not None:
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 \
                or tuple(out.shape) != tuple(shape) or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 ndarray of shape "
                             f"{tuple(shape)}, got "
                             f"{getattr(out, 'dtype', type(out).__name__)} "
                             f"{getattr(out, 'shape', '')}")
    elif accumulate:
        raise ValueError("accumulate=True needs out= (the array to add the noise to)")
    sd = float(protocol.noise_sd_hu)
    if sd == 0.0:
        if out is None:
            return np.zeros(tuple(shape), dtype=np.float32)
        if not accumulate:
            out[...] = 0.0
        return out
    nz, ny, nx = shape3
    if ny * nx < 2:
        raise ValueError(f"noise needs at least 2 pixels in-plane (the ramp NPS has no "
                         f"power at zero frequency), got shape {tuple(shape)}; use a "
                         "larger patch")
    hz, hxy, norm2 = _filters(shape3, *key)
    spec = np.empty((nz, ny, nx // 2 + 1), dtype=np.complex64)
    small = nz * ny * nx < SERIAL_VOXELS
    kernel = _shaped_half_spectrum_serial if small else _shaped_half_spectrum_parallel
    kernel(spec, hz, hxy, sd / math.sqrt(norm2), k0, k1, s0, s1, nx % 2 == 0)
    workers = 1 if small else FFT_WORKERS
    if out is None:
        result = np.empty(shape3, dtype=np.float32)
        accumulate = False
    else:
        result = out.reshape(shape3)
    if small:
        # patches: one call (the per-call dispatch cost dominates at this size)
        field = scipy.fft.irfftn(spec, s=shape3, axes=(0, 1, 2), norm="forward",
                                 workers=1, overwrite_x=True)
        if accumulate:
            result += field
        else:
            result[...] = field
        return result.reshape(tuple(shape)) if out is None else out
    # inverse transform along z in place, then 2D inverse real FFTs on chunks of
    # slices written straight into the result: peak memory = the half-spectrum
    # plus one chunk, instead of spectrum + full output + FFT scratch.
    if nz > 1:
        spec = scipy.fft.ifft(spec, axis=0, norm="forward", workers=workers, overwrite_x=True)
    for z0 in range(0, nz, _FFT_CHUNK_SLICES):
        z1 = min(nz, z0 + _FFT_CHUNK_SLICES)
        chunk = scipy.fft.irfft2(spec[z0:z1], s=(ny, nx), axes=(1, 2), norm="forward",
                                 workers=workers, overwrite_x=True)
        if accumulate:
            result[z0:z1] += chunk
        else:
            result[z0:z1] = chunk
    del spec
    if out is None:
        return result.reshape(tuple(shape))
    return out
