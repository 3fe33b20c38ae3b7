"""Correlated noise: SD, mean, Gaussianity, NPS shape, z correlation, determinism."""

import math

import numpy as np
import pytest
from _threads import output_with_threads
from scipy import stats

from phantoms.noise import noise_field, noise_model, ssp_autocorrelation
from phantoms.protocol import PROTOCOLS, Protocol, get_protocol


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_sd_within_5_percent_and_mean_zero(name):
    p = PROTOCOLS[name]
    n = noise_field((24, 192, 192), p, seed=11).astype(np.float64)
    # a central block, as one would place an ROI in a uniform region
    roi = n[4:20, 32:160, 32:160]
    assert abs(roi.std() / p.noise_sd_hu - 1) < 0.05
    # mean: ~0 within a generous bound (correlated samples, so not sigma/sqrt(N))
    assert abs(n.mean()) < 0.05 * p.noise_sd_hu


@pytest.mark.parametrize("shape", [(6, 40, 41), (5, 9, 8), (3, 1, 5)])
def test_expected_variance_is_exact_over_seeds(shape):
    """Average of the mean square over seeds converges to sd^2 (analytic scaling),
    also for odd, even and degenerate shapes (Hermitian planes handled)."""
    p = Protocol(noise_sd_hu=30.0, slice_thickness_mm=2.0, increment_mm=1.0)
    n = 60 if np.prod(shape) > 5000 else 3000
    ms = np.array([np.mean(noise_field(shape, p, seed=s).astype(np.float64) ** 2) / 900.0
                   for s in range(n)])
    # the mean of the squares (no mean removed) is unbiased for sd^2: a 4-sigma test
    # with enough seeds to resolve a few percent
    se = ms.std(ddof=1) / math.sqrt(n)
    assert se < 0.02
    assert abs(ms.mean() - 1) < 4 * se


def test_values_are_gaussian():
    n = noise_field((16, 128, 128), get_protocol("calcium_scoring"), seed=5)
    # subsample far apart (8 pixels >> correlation length, every slice) for independence
    x = n[:, ::8, ::8].ravel() / 20.0
    assert stats.kstest(x, "norm").pvalue > 1e-3
    assert abs(stats.kurtosis(x)) < 0.3


def _radial(power, fy, fx, edges):
    fr = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    idx = np.digitize(fr.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < edges.size - 1)
    num = np.bincount(idx[ok], power.ravel()[ok], minlength=edges.size - 1)
    den = np.bincount(idx[ok], minlength=edges.size - 1)
    return num / np.maximum(den, 1)


def _model_nps_xy(fr, protocol):
    """In-plane NPS of the model, written from its formula (docs/scanner.md, "Noise").

    NPS(f_r) = f_r exp(-f_r^2 / (2 f_p^2)): the ramp of filtered back-projection times
    the squared Gaussian apodisation, which equals the PSF's MTF
    exp(-2 pi^2 sigma^2 f^2), so f_p = 1 / (2 sqrt(2) pi sigma) with
    sigma = FWHM / (2 sqrt(2 ln 2)); a protocol's ``nps_peak_freq_per_mm`` replaces f_p.
    """
    sigma = protocol.psf_fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    f_p = protocol.nps_peak_freq_per_mm or 1.0 / (2.0 * math.sqrt(2.0) * math.pi * sigma)
    return fr * np.exp(-fr ** 2 / (2.0 * f_p ** 2)), f_p


@pytest.mark.parametrize("name, overrides", [
    ("calcium_scoring", {}), ("low_dose_chest", {}),
    ("calcium_scoring", {"nps_peak_freq_per_mm": 0.35})])
def test_measured_nps_matches_model(name, overrides):
    p = get_protocol(name, **overrides)
    shape = (8, 128, 128)
    acc = np.zeros((128, 128))
    for seed in range(6):
        n = noise_field(shape, p, seed=seed).astype(np.float64)
        acc += (np.abs(np.fft.fft2(n)) ** 2).sum(axis=0)
    fy = np.fft.fftfreq(128, d=p.pixel_mm)
    fx = np.fft.fftfreq(128, d=p.pixel_mm)
    model_xy, f_p = _model_nps_xy(np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2), p)
    # compare radial averages of the normalised spectra
    edges = np.linspace(0, 0.5 / p.pixel_mm, 17)
    measured = _radial(acc / acc.sum(), fy, fx, edges)
    model = _radial(model_xy / model_xy.sum(), fy, fx, edges)
    big = model > 0.05 * model.max()
    assert big.sum() >= 6
    np.testing.assert_allclose(measured[big], model[big], rtol=0.1)
    # noise_model reports the same spectrum on the rfft layout (columns 0..64; the
    # Nyquist column's fx sign does not matter), normalised over the full spectrum
    half = model_xy[:, :65]
    w = np.r_[1.0, np.full(63, 2.0), 1.0]
    np.testing.assert_allclose(noise_model(shape, p)[0], half / (half * w).sum(), rtol=1e-5)
    # the measured peak is at the model's f_p (bin resolution) and, for the soft
    # calcium-scoring kernel, at a realistic 0.2-0.4 cycles/mm
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert abs(centres[np.argmax(measured)] - f_p) <= edges[1]
    if p.kernel == "soft" and not overrides:
        assert 0.2 <= centres[np.argmax(measured)] <= 0.4


def _trapezoid_density(u, t, e=0.5):
    """The trapezoid SSP from its definition: top t(1-e), edges e t, height 1/t."""
    a, b = 0.5 * t * (1 + e), 0.5 * t * (1 - e)
    return np.clip((a - np.abs(u)) / (a - b), 0, 1) / t


@pytest.mark.parametrize("lag", [0.0, 0.5, 1.0, 1.5, 3.0])
def test_ssp_autocorrelation_against_direct_integration(lag):
    for t in (1.0, 3.0):
        u = np.linspace(-6, 6, 240001)
        ref = np.trapezoid(_trapezoid_density(u, t) * _trapezoid_density(u + lag, t), u)
        assert ssp_autocorrelation([lag], t, "trapezoid")[0] == pytest.approx(ref, abs=2e-4)
    sigma = 1.0 / 2.3548200450309493
    g = ssp_autocorrelation([lag], 1.0, "gaussian")[0] / ssp_autocorrelation([0.0], 1.0,
                                                                              "gaussian")[0]
    assert g == pytest.approx(math.exp(-lag ** 2 / (4 * sigma ** 2)), abs=1e-3)


@pytest.mark.parametrize("name", ["thin_slice_cscT", "calcium_scoring", "low_dose_chest"])
def test_z_correlation_matches_slice_profile(name):
    p = PROTOCOLS[name]
    n = noise_field((48, 96, 96), p, seed=3).astype(np.float64)
    r0 = ssp_autocorrelation([0.0], p.slice_thickness_mm, p.slice_profile)[0]
    for m in (1, 2):
        expected = ssp_autocorrelation([m * p.increment_mm], p.slice_thickness_mm,
                                       p.slice_profile)[0] / r0
        measured = np.mean(n[:-m] * n[m:]) / np.mean(n * n)
        assert abs(measured - expected) < 0.03, (m, measured, expected)


def test_same_seed_same_bytes_different_seed_independent():
    p = get_protocol("calcium_scoring")
    a = noise_field((4, 64, 64), p, seed=1)
    assert a.tobytes() == noise_field((4, 64, 64), p, seed=1).tobytes()
    b = noise_field((4, 64, 64), p, seed=2)
    c = noise_field((4, 64, 64), p, seed=1, stream=1)
    for x, y in ((a, b), (a, c)):
        assert abs(np.corrcoef(x.ravel(), y.ravel())[0, 1]) < 0.05


def test_same_bytes_with_one_or_two_threads():
    code = ("import hashlib, numpy as np; from phantoms import get_protocol, noise_field, "
            "blur_inplane; p = get_protocol('thin_slice_cscT'); n = noise_field((10, 96, 90), p, "
            "seed=123, stream=4); b = blur_inplane(n, 1.3, 0.49); "
            "print(hashlib.sha256(n.tobytes() + b.tobytes()).hexdigest())")
    assert output_with_threads(code, 1) == output_with_threads(code, 2)


def test_noise_free_and_accumulate_and_2d():
    p0 = get_protocol("calcium_scoring", noise_sd_hu=0.0)
    assert not noise_field((2, 16, 16), p0, seed=0).any()
    p = get_protocol("calcium_scoring")
    base = np.full((2, 16, 16), 40.0, np.float32)
    ref = noise_field((2, 16, 16), p, seed=4)
    got = noise_field((2, 16, 16), p, seed=4, out=base, accumulate=True)
    assert got is base
    np.testing.assert_allclose(base, 40.0 + ref, atol=1e-4)
    two = noise_field((32, 32), p, seed=4)
    assert two.shape == (32, 32) and two.dtype == np.float32


@pytest.mark.parametrize("args,kwargs,exc,match", [
    (((4, 0, 4),), {}, ValueError, r"shape must be \(Z, Y, X\) or \(Y, X\) with every size >= 1"),
    (((4, 4.5, 4),), {}, TypeError, "shape must be a tuple of ints"),
    (((4, 8, 8), "calcium_scoring"), {}, TypeError, "protocol must be a phantoms.Protocol"),
    (((4, 8, 8),), {"out": np.zeros((4, 8, 8))}, ValueError, "out must be a C-contiguous float32 ndarray"),
    (((4, 8, 8),), {"accumulate": True}, ValueError, "accumulate=True needs out="),
    (((4, 8, 8),), {"seed": -1}, ValueError, "seed must be an integer"),
    (((4, 1, 1),), {}, ValueError, "noise needs at least 2 pixels in-plane"),
])
def test_errors(args, kwargs, exc, match):
    if len(args) == 1:
        args = args + (get_protocol("calcium_scoring"),)
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(exc, match=match):
        noise_field(*args, **kwargs)


def test_serial_and_parallel_kernels_give_identical_spectra():
    from phantoms._noise_kernels import _shaped_half_spectrum_parallel, _shaped_half_spectrum_serial
    from phantoms.noise import _filters, _protocol_key
    p = get_protocol("thin_slice_cscT")
    for shape in ((6, 40, 66), (5, 33, 31)):
        hz, hxy, _ = _filters(shape, *_protocol_key(p))
        a = np.empty((shape[0], shape[1], shape[2] // 2 + 1), np.complex64)
        b = np.empty_like(a)
        keys = [np.uint64(v) for v in (1, 2, 3, 4)]
        _shaped_half_spectrum_serial(a, hz, hxy, 1.0, *keys, shape[2] % 2 == 0)
        _shaped_half_spectrum_parallel(b, hz, hxy, 1.0, *keys, shape[2] % 2 == 0)
        assert a.tobytes() == b.tobytes()
