"""A scanner twin's protocol: its own HU per mg HA (``Protocol.hu_per_mg_ha``) and a
measured in-plane NPS shape (``Protocol.nps_radial``).

References are independent of the code under test: the noise SD, the radially
averaged NPS and the lag-1 autocorrelation are measured on simulated images with
plain numpy here, and compared with the target SD, the given table (evaluated with
``np.interp`` here) and the Hankel-transform autocorrelation of the table
(``scipy.integrate.quad`` with a Bessel J0 kernel). Lesion and rod HU are compared with
``hu_per_mg_ha x density`` on noise-free, blur-free scans.
"""

from __future__ import annotations

import json
import math
import tomllib

import numpy as np
import pytest
from scipy import integrate, special

from phantoms import Lesion, Phantom, Protocol, ThoraxBody, get_protocol, hu_per_mg_cm3, simulate
from phantoms.body import Rod
from phantoms.noise import noise_field, radial_nps
from phantoms.shapes import Cylinder

#: Two measured-like in-plane NPS shapes (cycles/mm, relative NPS): one peaked at 0.30
#: cycles/mm (sharper than the 1.3 mm soft kernel's parametric 0.204), one at 0.12 with
#: power at zero frequency (the low-frequency texture of iterative reconstructions).
TABLES = {
    "peak_0.30": ((0.0, 0.0), (0.1, 0.4), (0.2, 0.85), (0.3, 1.0), (0.45, 0.6), (0.6, 0.25),
                  (0.8, 0.05), (1.0, 0.0)),
    "peak_0.12": ((0.0, 0.3), (0.06, 0.8), (0.12, 1.0), (0.25, 0.55), (0.4, 0.2), (0.6, 0.04),
                  (0.8, 0.0)),
}
SD_HU = 20.0
TISSUE_HU = 40.0
#: A body larger than the field of view: every pixel is soft tissue (uniform 40 HU)
UNIFORM = Phantom(ThoraxBody(width_mm=600.0, height_mm=600.0, lungs=False, spine=False),
                  z_extent_mm=(-12.0, 12.0), name="uniform")


def _protocol(form, **kw):
    return Protocol(noise_sd_hu=SD_HU, nps_radial=None if form == "parametric" else TABLES[form],
                    **kw)


@pytest.fixture(scope="module")
def noise_scan():
    """form -> (protocol, noise in HU (8, 512, 512) float64) of a uniform noise-only scan."""
    cache = {}

    def make(form):
        if form not in cache:
            p = _protocol(form, matrix=512)
            scan, _ = simulate(UNIFORM, p, seed=11, fraction_maps=False)
            clean, _ = simulate(UNIFORM, p, seed=11, noise=False, fraction_maps=False)
            assert float(clean.min()) == float(clean.max()) == TISSUE_HU
            cache[form] = p, scan.values.astype(np.float64) - TISSUE_HU
        return cache[form]

    return make


def _radial_nps(noise, pixel_mm, width_per_mm=0.02):
    """Slice-averaged |FFT|^2 radially averaged in bins of ``width_per_mm`` up to Nyquist:
    (bin edges, mean NPS per bin, radial frequency of every 2D bin, bin index, in-range mask)."""
    _, ny, nx = noise.shape
    spec = np.abs(np.fft.fft2(noise - noise.mean(axis=(1, 2), keepdims=True))) ** 2
    power = spec.mean(axis=0).ravel()
    fr = np.hypot(np.fft.fftfreq(ny, pixel_mm)[:, None], np.fft.fftfreq(nx, pixel_mm)[None, :])
    fr = fr.ravel()
    edges = np.arange(0.0, 0.5 / pixel_mm + 1e-9, width_per_mm)
    idx = np.digitize(fr, edges) - 1
    ok = (idx >= 0) & (idx < edges.size - 1)
    count = np.bincount(idx[ok], minlength=edges.size - 1)
    mean = np.bincount(idx[ok], power[ok], minlength=edges.size - 1) / np.maximum(count, 1)
    return edges, mean, fr, idx, ok


def _peak(edges, values):
    """Peak frequency: the largest bin refined by a parabola through it and its neighbours."""
    mids = 0.5 * (edges[1:] + edges[:-1])
    k = int(np.argmax(values))
    a, b, c = values[k - 1], values[k], values[k + 1]
    return mids[k] + 0.5 * (a - c) / (a - 2.0 * b + c) * (mids[1] - mids[0])


def _table_lag(table, lag_mm):
    """Autocorrelation at ``lag_mm`` of an isotropic NPS given radially (Hankel transform):
    int T(f) J0(2 pi f d) f df / int T(f) f df, T linear between the table's points."""
    f, v = zip(*table)
    nps = lambda x: float(np.interp(x, f, v, right=0.0))  # noqa: E731
    num = integrate.quad(lambda x: nps(x) * special.j0(2 * math.pi * x * lag_mm) * x, 0.0, f[-1],
                         points=f[1:-1], limit=400)[0]
    den = integrate.quad(lambda x: nps(x) * x, 0.0, f[-1], points=f[1:-1], limit=400)[0]
    return num / den


def _parametric_lag(peak_per_mm, lag_mm):
    """The same for f exp(-f^2 / (2 f_p^2)) (negligible beyond 10 f_p)."""
    nps = lambda x: x * math.exp(-x * x / (2.0 * peak_per_mm ** 2))  # noqa: E731
    top = 10.0 * peak_per_mm
    num = integrate.quad(lambda x: nps(x) * special.j0(2 * math.pi * x * lag_mm) * x, 0.0, top,
                         limit=400)[0]
    return num / integrate.quad(lambda x: nps(x) * x, 0.0, top, limit=400)[0]


# -- noise: SD, NPS shape, autocorrelation --------------------------------------------------
@pytest.mark.parametrize("form", ["parametric", *TABLES])
def test_voxel_sd_is_noise_sd_hu_for_both_nps_forms(noise_scan, form):
    _, noise = noise_scan(form)
    assert abs(noise.std() / SD_HU - 1.0) < 0.03


@pytest.mark.parametrize("form", list(TABLES))
def test_measured_radial_nps_has_the_tables_shape_and_peak(noise_scan, form):
    p, noise = noise_scan(form)
    table = TABLES[form]
    edges, measured, fr, idx, ok = _radial_nps(noise, p.pixel_mm)
    f, v = zip(*table)
    peak_table = f[int(np.argmax(v))]
    assert abs(_peak(edges, measured) / peak_table - 1.0) < 0.10
    # expected radial average: the table at the frequencies of the grid points in each bin
    expected = (np.bincount(idx[ok], np.interp(fr[ok], f, v, right=0.0), minlength=edges.size - 1)
                / np.maximum(np.bincount(idx[ok], minlength=edges.size - 1), 1))
    m, e = measured / measured.sum(), expected / expected.sum()
    big = e > 0.2 * e.max()
    assert np.max(np.abs(m[big] / e[big] - 1.0)) < 0.15
    # the parametric form with the same PSF peaks elsewhere (the table is really used)
    assert abs(p.replace(nps_radial=None).nps_peak_per_mm / peak_table - 1.0) > 0.3


@pytest.mark.parametrize("form", ["parametric", *TABLES])
def test_lag1_autocorrelation_follows_the_nps(noise_scan, form):
    p, noise = noise_scan(form)
    lag = 0.5 * (np.mean(noise[:, :, 1:] * noise[:, :, :-1])
                 + np.mean(noise[:, 1:, :] * noise[:, :-1, :])) / np.mean(noise * noise)
    if form == "parametric":
        expected = _parametric_lag(p.nps_peak_per_mm, p.pixel_mm)
    else:
        expected = _table_lag(TABLES[form], p.pixel_mm)
    assert abs(lag - expected) < 0.03, (form, lag, expected)


def test_the_two_tables_give_different_textures():
    # a peak at 0.12 vs 0.30 cycles/mm: neighbouring pixels far more alike
    lags = [_table_lag(TABLES[n], 0.49) for n in ("peak_0.12", "peak_0.30")]
    assert lags[0] > lags[1] + 0.1


def test_radial_nps_interpolates_linearly_and_is_zero_beyond_the_table():
    t = ((0.1, 2.0), (0.3, 4.0), (0.5, 0.0))
    np.testing.assert_allclose(radial_nps([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.9], t),
                               [0.5, 0.5, 0.75, 1.0, 0.5, 0.0, 0.0])


def test_the_z_correlation_is_still_the_slice_profiles():
    # thin_slice_cscT: 1 mm trapezoid slices every 0.5 mm, slice correlation 0.6 at lag 1
    p = get_protocol("thin_slice_cscT", nps_radial=TABLES["peak_0.30"])
    n = noise_field((32, 128, 128), p, seed=5).astype(np.float64)
    r1 = np.mean(n[1:] * n[:-1]) / np.mean(n * n)
    assert abs(r1 - 0.6) < 0.03


# -- HU per mg HA ---------------------------------------------------------------------------
def _noise_free_blur_free(**kw):
    return Protocol(matrix=64, noise_sd_hu=0.0, psf_fwhm_mm=0.1, **kw)


@pytest.mark.parametrize("k", [None, 1.1, 1.5])
def test_a_lesion_renders_at_hu_per_mg_ha_times_density(k):
    rho = 400.0
    lesion = Lesion(Cylinder((0.0, 0.0, 0.0), 5.0, 15.0), rho, name="big")
    ph = Phantom(ThoraxBody(lungs=False, spine=False), [lesion], z_extent_mm=(-15.0, 15.0))
    p = _noise_free_blur_free(hu_per_mg_ha=k)
    scan, truth = simulate(ph, p, seed=0)
    kk = hu_per_mg_cm3(120.0) if k is None else k
    centre = scan.sel(z=0.0, y=0.0, x=0.0, method="nearest")
    assert float(centre) == pytest.approx(TISSUE_HU + kk * rho, rel=1e-6)
    assert float(truth["hu"][0]) == pytest.approx(TISSUE_HU + kk * rho, rel=1e-12)
    assert scan.attrs["hu_per_mg_ha"] == p.ha_hu_per_mg == kk
    assert scan.attrs["hu_per_mg_ha_source"] == ("kvp_table" if k is None else "protocol")


def test_the_ha_rod_follows_the_same_factor():
    rods = (Rod((0.0, -10.0), 4.0, density_mg_cm3=200.0), Rod((0.0, 10.0), 4.0),
            Rod((10.0, 0.0), 3.0, hu=123.0))
    ph = Phantom(ThoraxBody(lungs=False, spine=False), rods=rods, z_extent_mm=(-3.0, 3.0))
    for k in (None, 1.35):
        scan, _ = simulate(ph, _noise_free_blur_free(hu_per_mg_ha=k), seed=0)
        kk = hu_per_mg_cm3(120.0) if k is None else k
        at = scan.isel(z=0).sel(y=[0.0, 0.0, 10.0], x=[-10.0, 10.0, 0.0], method="nearest")
        ha, water, fixed = (float(at.values[i, i]) for i in range(3))
        assert ha == pytest.approx(200.0 * kk, rel=1e-6)
        assert water == 0.0             # water rod: 0 mg HA/cm3
        assert fixed == 123.0           # a fixed-HU rod keeps its HU


def test_a_rod_calibration_of_the_simulated_scan_returns_its_inverse():
    from phantoms.library import cci_phantom
    from pvcalc.calibration import rod_calibration

    ph = cci_phantom()
    p = get_protocol("calcium_scoring", noise_sd_hu=0.0, hu_per_mg_ha=1.5)
    scan, _ = simulate(ph, p, seed=0, fraction_maps=False)
    assert rod_calibration(scan, ph).c_ha_mg_cm3_per_hu == pytest.approx(1.0 / 1.5, rel=1e-3)


def test_nominal_study_calibration_uses_the_protocols_factor():
    from pvcalc.study._execute import _calibrate

    p = Protocol(hu_per_mg_ha=1.35)
    cal, info = _calibrate(None, None, p, {"source": "nominal"})
    assert cal.c_ha_mg_cm3_per_hu == pytest.approx(1.0 / 1.35)
    cal, _ = _calibrate(None, None, Protocol(kvp=100.0), {"source": "nominal"})
    assert cal.c_ha_mg_cm3_per_hu == pytest.approx(1.0 / hu_per_mg_cm3(100.0))


def test_giving_the_tables_own_factor_changes_no_byte():
    les = Lesion(Cylinder((0.0, 2.0, -1.0), 1.5, 3.0), 800.0)
    ph = Phantom(ThoraxBody(), [les], rods=(Rod((0.0, 20.0), 5.0, density_mg_cm3=200.0),),
                 z_extent_mm=(-6.0, 6.0))
    p = get_protocol("calcium_scoring", matrix=64)
    a, _ = simulate(ph, p, seed=4)
    b, _ = simulate(ph, p.replace(hu_per_mg_ha=hu_per_mg_cm3(120.0)), seed=4)
    assert a.values.tobytes() == b.values.tobytes()


# -- determinism, hashing, records ------------------------------------------------------------
def test_same_seed_same_bytes_with_a_table():
    p = _protocol("peak_0.12", matrix=64, hu_per_mg_ha=1.4)
    ph = Phantom(ThoraxBody(), [Lesion(Cylinder((0.0, 0.0, 0.0), 2.5, 5.0), 400.0)],
                 z_extent_mm=(-6.0, 6.0))
    a, _ = simulate(ph, p, seed=9)
    b, _ = simulate(ph, p, seed=9)
    c, _ = simulate(ph, p, seed=10)
    assert a.values.tobytes() == b.values.tobytes() != c.values.tobytes()


def test_table_is_hashable_tomlable_and_survives_replace_and_attrs(tmp_path):
    text = "nps_radial = [[0.0, 0.0], [0.2, 1.0], [0.5, 0.3], [0.8, 0.0]]\n"
    p = Protocol(nps_radial=tomllib.loads(text)["nps_radial"], hu_per_mg_ha=1.35)
    assert p.nps_radial == ((0.0, 0.0), (0.2, 1.0), (0.5, 0.3), (0.8, 0.0))
    assert hash(p) == hash(Protocol(nps_radial=np.array(p.nps_radial), hu_per_mg_ha=1.35))
    q = p.replace(noise_sd_hu=10.0)
    assert q.nps_radial == p.nps_radial and q.hu_per_mg_ha == 1.35 and q.nps_peak_per_mm == 0.2
    attrs = p.as_attrs()
    assert all(isinstance(v, (int, float, str)) for v in attrs.values())
    assert Protocol(nps_radial=json.loads(attrs["nps_radial"])) == Protocol(nps_radial=p.nps_radial)
    assert "nps_radial" not in Protocol().as_attrs()
    # a scan carries both through netCDF
    import xarray as xr

    scan, _ = simulate(UNIFORM, p.replace(matrix=32), seed=0, fraction_maps=False)
    scan.to_netcdf(tmp_path / "scan.nc")
    with xr.open_dataarray(tmp_path / "scan.nc") as back:
        assert back.attrs["nps_radial"] == attrs["nps_radial"]
        assert back.attrs["hu_per_mg_ha"] == 1.35


def test_study_grid_takes_both_axes():
    from pvcalc.study._spec_base import Problems
    from pvcalc.study._spec_grid import check_grid

    table = [[0.0, 0.0], [0.2, 1.0], [0.5, 0.3], [0.8, 0.0]]
    problems = Problems()
    grid = check_grid(problems, {"protocol": "calcium_scoring", "hu_per_mg_ha": [1.1, 1.5],
                                 "nps_radial": table})
    assert not problems.items, problems.items
    assert grid["hu_per_mg_ha"] == (1.1, 1.5)
    assert grid["nps_radial"] == (tuple(map(tuple, table)),)
    problems = Problems()
    grid = check_grid(problems, {"protocol": "calcium_scoring", "nps_radial": [table, table[:3]]})
    assert not problems.items and len(grid["nps_radial"]) == 2
    problems = Problems()
    check_grid(problems, {"protocol": "calcium_scoring", "nps_radial": [[0.0, 0.0], [0.2, 1.0]]})
    assert "at least 3 [frequency_per_mm, relative_nps] pairs" in str(problems.items)


# -- errors -----------------------------------------------------------------------------------
GOOD = [[0.0, 0.0], [0.2, 1.0], [0.5, 0.3], [0.8, 0.0]]


@pytest.mark.parametrize("table, exc, match", [
    ("0.2:1.0", TypeError, "nps_radial must be a sequence of at least 3"),
    ([[0.0, 0.0], [0.2, "x"], [0.5, 0.3]], TypeError, "nps_radial must be a sequence"),
    ([[0.0, 0.0], [0.2, 1.0]], ValueError, r"at least 3 .*got an array of shape \(2, 2\)"),
    ([0.0, 0.2, 0.5], ValueError, r"got an array of shape \(3,\)"),
    ([[0.0, 0.0, 1.0], [0.2, 1.0, 1.0], [0.5, 0.3, 1.0]], ValueError, r"shape \(3, 3\)"),
    ([[0.0, 0.0], [0.2, float("nan")], [0.5, 0.3]], ValueError, r"nps_radial\[1\] must be two finite"),
    ([[0.0, 0.0], [0.2, -1.0], [0.5, 0.3]], ValueError, r"nps_radial\[1\] has a negative NPS value"),
    ([[-0.1, 0.0], [0.2, 1.0], [0.5, 0.3]], ValueError, "must start at >= 0 cycles/mm, got -0.1"),
    ([[0.0, 0.0], [0.5, 1.0], [0.2, 0.3]], ValueError,
     r"must increase strictly, but nps_radial\[2\] has 0.2 after 0.5"),
    ([[0.0, 0.0], [0.2, 1.0], [0.2, 0.3]], ValueError, "must increase strictly"),
    ([[0.0, 0.0], [0.2, 0.0], [0.5, 0.0]], ValueError, "values are all zero"),
    ([[0.0, 0.0], [0.2, 1.0], [1.6, 0.0]], ValueError,
     r"reaches 1.6 cycles/mm, beyond .*sqrt\(2\) x the Nyquist frequency .* = 1.443"),
    ([[0.0, 0.0], [1.03, 0.0], [1.2, 1.0]], ValueError,
     "no power below the Nyquist frequency 0.5 / pixel_mm = 1.02"),
])
def test_bad_tables_are_refused_with_a_clear_message(table, exc, match):
    with pytest.raises(exc, match=match):
        Protocol(nps_radial=table)


def test_table_limits_follow_the_pixel_size():
    Protocol(pixel_mm=0.49, nps_radial=[[0.0, 0.0], [0.2, 1.0], [1.4, 0.0]])   # corner 1.443
    with pytest.raises(ValueError, match="0.5 mm pixel grid.* = 1.414"):
        Protocol(pixel_mm=0.5, nps_radial=[[0.0, 0.0], [0.2, 1.0], [1.42, 0.0]])
    # replace re-validates against the new pixel size
    with pytest.raises(ValueError, match="beyond the highest radial frequency"):
        Protocol(nps_radial=[[0.0, 0.0], [0.2, 1.0], [1.4, 0.0]]).replace(pixel_mm=1.0)


def test_table_and_peak_are_exclusive():
    with pytest.raises(ValueError, match="nps_radial .* or nps_peak_freq_per_mm .* not both"):
        Protocol(nps_radial=GOOD, nps_peak_freq_per_mm=0.3)
    with pytest.raises(ValueError, match="not both"):
        Protocol(nps_radial=GOOD).replace(nps_peak_freq_per_mm=0.3)


def test_a_grid_too_small_for_the_table_is_refused_by_the_noise():
    p = Protocol(nps_radial=[[0.0, 0.0], [0.2, 1.0], [0.3, 0.0]])
    with pytest.raises(ValueError, match="no power at the in-plane frequencies of a 2 x 2 grid"):
        noise_field((1, 2, 2), p, seed=0)


@pytest.mark.parametrize("value, exc, match", [
    (0.1, ValueError, r"hu_per_mg_ha must be a finite number in \[0.5, 3.0\] HU per mg HA/cm3, "
                      r"got 0.1; measure it as \(HA rod HU - water rod HU\)"),
    (3.5, ValueError, r"in \[0.5, 3.0\]"),
    (float("nan"), ValueError, "finite"),
    (float("inf"), ValueError, "finite"),
    ("1.35", TypeError, "hu_per_mg_ha must be a number in HU per mg HA/cm3"),
    (True, TypeError, "must be a number"),
])
def test_bad_hu_per_mg_ha_is_refused(value, exc, match):
    with pytest.raises(exc, match=match):
        Protocol(hu_per_mg_ha=value)
    with pytest.raises(exc, match=match):
        get_protocol("calcium_scoring", hu_per_mg_ha=value)
