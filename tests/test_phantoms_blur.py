"""In-plane Gaussian PSF blur: against scipy.ndimage with the same taps, mass, FWHM."""

import math

import numpy as np
import pytest
from scipy import ndimage, special

from phantoms._blur_kernels import gaussian_taps
from phantoms.psf import blur_inplane


def _reference(vol, taps_y, taps_x):
    v = ndimage.convolve1d(vol.astype(np.float64), taps_y.astype(np.float64), axis=-2,
                           mode="nearest")
    return ndimage.convolve1d(v, taps_x.astype(np.float64), axis=-1, mode="nearest")


@pytest.mark.parametrize("shape", [(3, 40, 37), (5, 130, 140), (41, 29)])
@pytest.mark.parametrize("fwhm,pixel", [(1.3, 0.49), (0.3, 0.5), (2.5, 0.4)])
def test_matches_ndimage_convolve1d_with_same_taps(shape, fwhm, pixel):
    # (5, 130, 140) is above the serial-size threshold: exercises the parallel kernel
    vol = np.random.default_rng(1).normal(100, 50, size=shape).astype(np.float32)
    got = blur_inplane(vol, fwhm, pixel)
    taps = gaussian_taps(fwhm, pixel)
    np.testing.assert_allclose(got, _reference(vol, taps, taps), rtol=0, atol=2e-4)
    assert got.dtype == np.float32 and got.shape == vol.shape


def test_anisotropic_pixels_use_their_own_taps():
    vol = np.random.default_rng(2).random((2, 50, 60)).astype(np.float32)
    got = blur_inplane(vol, 1.0, (0.3, 0.6))
    ref = _reference(vol, gaussian_taps(1.0, 0.3), gaussian_taps(1.0, 0.6))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_taps_are_the_pixel_integrated_gaussian():
    fwhm, p = 0.4, 0.5          # sigma = 0.17 mm, far below a pixel
    taps = gaussian_taps(fwhm, p).astype(np.float64)
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    r = taps.size // 2
    j = np.arange(-r, r + 1)
    exact = 0.5 * (special.erf((j + 0.5) * p / (sigma * math.sqrt(2)))
                   - special.erf((j - 0.5) * p / (sigma * math.sqrt(2))))
    np.testing.assert_allclose(taps, exact / exact.sum(), atol=1e-7)
    assert abs(taps.sum() - 1) < 1e-6
    assert r == math.ceil(4 * sigma / p)


@pytest.mark.parametrize("fwhm", [0.2, 1.3, 3.0])
def test_mass_is_preserved_away_from_edges(fwhm):
    vol = np.zeros((2, 64, 64), np.float32)
    rng = np.random.default_rng(3)
    vol[:, 24:40, 24:40] = rng.random((2, 16, 16)) * 500
    got = blur_inplane(vol, fwhm, 0.49)
    np.testing.assert_allclose(got.sum(axis=(1, 2)), vol.sum(axis=(1, 2)), rtol=2e-6)


def test_edge_spread_gives_back_the_fwhm():
    """A step edge blurred on a fine grid: FWHM of the derivative (LSF) within 2%."""
    p, fwhm = 0.05, 1.3
    img = np.zeros((4, 400), np.float32)
    img[:, 200:] = 1000.0
    esf = blur_inplane(img, fwhm, p)[1].astype(np.float64)
    lsf = np.diff(esf)
    half = lsf.max() / 2
    above = np.nonzero(lsf >= half)[0]
    # linear interpolation of the half-maximum crossings
    i0, i1 = above[0], above[-1]
    left = i0 - 1 + (half - lsf[i0 - 1]) / (lsf[i0] - lsf[i0 - 1])
    right = i1 + (lsf[i1] - half) / (lsf[i1] - lsf[i1 + 1])
    measured = (right - left) * p
    expected = math.sqrt(fwhm ** 2 + (2 * math.sqrt(2 * math.log(2))) ** 2 * p ** 2 / 12)
    assert abs(measured / expected - 1) < 0.02


def test_in_place_equals_out_of_place():
    vol = np.random.default_rng(4).random((3, 70, 90)).astype(np.float32)
    ref = blur_inplane(vol, 1.3, 0.49)
    work = vol.copy()
    res = blur_inplane(work, 1.3, 0.49, out=work)
    assert res is work
    assert work.tobytes() == ref.tobytes()


def test_other_dtypes_are_converted():
    vol = np.arange(400, dtype=np.int16).reshape(20, 20)
    got = blur_inplane(vol, 1.0, 0.5)
    np.testing.assert_allclose(got, blur_inplane(vol.astype(np.float32), 1.0, 0.5))


def test_serial_and_parallel_paths_agree():
    from phantoms._blur_kernels import _blur_volume_parallel, _blur_volume_serial
    vol = np.random.default_rng(6).random((7, 33, 45)).astype(np.float32)
    taps = gaussian_taps(1.3, 0.49)
    a, b = np.empty_like(vol), np.empty_like(vol)
    _blur_volume_serial(vol, a, taps, taps)
    _blur_volume_parallel(vol, b, taps, taps, 2)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("args,kwargs,exc,match", [
    ((np.zeros(5), 1.0, 0.5), {}, ValueError, "volume must be 2D .* or 3D .*, got 1D"),
    ((np.zeros((4, 4), complex), 1.0, 0.5), {}, TypeError, "real numbers"),
    (("abc", 1.0, 0.5), {}, TypeError, "volume must be an array"),
    ((np.zeros((4, 4)), 0.0, 0.5), {}, ValueError, r"fwhm_mm must be in \(0"),
    ((np.zeros((4, 4)), 1.0, -0.5), {}, ValueError, "pixel_mm must be in"),
    ((np.zeros((4, 4)), 1.0, 0.5), {"out": np.zeros((4, 4))}, ValueError,
     "out must be a C-contiguous float32 array of shape"),
])
def test_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        blur_inplane(*args, **kwargs)
