"""Protocols, presets, dose model and derived quantities."""

import dataclasses
import math

import numpy as np
import pytest

from phantoms.protocol import PROTOCOLS, Protocol, get_protocol, noise_sd_from_mas


def test_defaults_follow_the_contract():
    p = Protocol()
    assert (p.name, p.kvp, p.pixel_mm, p.matrix, p.slice_thickness_mm, p.increment_mm,
            p.slice_profile, p.psf_fwhm_mm, p.kernel, p.noise_sd_hu, p.temporal_resolution_ms,
            p.gated, p.gating_phase, p.rotation_time_s) == (
        "custom", 120.0, 0.49, 512, 3.0, 3.0, "trapezoid", 1.3, "soft", 20.0, 150.0,
        True, 0.7, 0.28)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.kvp = 100.0
    assert hash(p) == hash(Protocol())


def test_mtf50_is_where_the_gaussian_mtf_is_one_half():
    p = Protocol(psf_fwhm_mm=1.1)
    mtf = math.exp(-2 * math.pi ** 2 * p.psf_sigma_mm ** 2 * p.mtf50_per_mm ** 2)
    assert abs(mtf - 0.5) < 1e-12
    assert abs(p.mtf50_per_mm * p.psf_fwhm_mm - 0.4413) < 1e-4


@pytest.mark.parametrize("mtf50", [0.28, 0.35, 0.42, 0.8])
def test_from_mtf50_round_trip(mtf50):
    p = Protocol.from_mtf50(mtf50, kvp=100.0)
    assert abs(p.mtf50_per_mm - mtf50) < 1e-12 and p.kvp == 100.0


def test_calcium_scoring_kernel_range_of_design():
    # MTF50 0.28-0.42 cycles/mm measured on QRM <=> FWHM about 1.05-1.58 mm
    assert 1.0 < Protocol.from_mtf50(0.42).psf_fwhm_mm < 1.1
    assert 1.5 < Protocol.from_mtf50(0.28).psf_fwhm_mm < 1.6


def test_default_nps_peak_is_the_peak_of_ramp_times_squared_mtf():
    p = Protocol(psf_fwhm_mm=1.3)
    f = np.linspace(0, 1, 200001)
    nps = f * np.exp(-2 * 2 * math.pi ** 2 * p.psf_sigma_mm ** 2 * f ** 2)
    assert abs(f[np.argmax(nps)] - p.nps_peak_per_mm) < 1e-4
    assert Protocol(nps_peak_freq_per_mm=0.3).nps_peak_per_mm == 0.3


def test_presets_have_the_documented_character():
    cs, ldc, thin = (PROTOCOLS[k] for k in ("calcium_scoring", "low_dose_chest",
                                            "thin_slice_cscT"))
    assert cs.kvp == 120 and cs.slice_thickness_mm == cs.increment_mm == 3.0 and cs.gated
    assert 15 <= cs.noise_sd_hu <= 25 and 0.28 <= cs.mtf50_per_mm <= 0.42
    assert 0.2 <= cs.nps_peak_per_mm <= 0.4
    assert not ldc.gated and ldc.slice_thickness_mm <= 1.5 and ldc.noise_sd_hu > cs.noise_sd_hu
    assert ldc.psf_fwhm_mm < cs.psf_fwhm_mm
    assert thin.gated and thin.slice_thickness_mm == 1.0 and thin.overlapping
    assert not cs.overlapping
    for name, p in PROTOCOLS.items():
        assert p.name == name


def test_get_protocol_with_overrides_and_errors():
    p = get_protocol("calcium_scoring", noise_sd_hu=0.0, kvp=100)
    assert p.noise_sd_hu == 0.0 and p.kvp == 100.0
    assert PROTOCOLS["calcium_scoring"].noise_sd_hu == 20.0
    with pytest.raises(ValueError, match=r"unknown protocol 'ct'; valid names: \['calcium_scoring'"):
        get_protocol("ct")
    with pytest.raises(TypeError, match=r"unknown Protocol field\(s\) \['slice_mm'\]"):
        get_protocol("calcium_scoring", slice_mm=2)
    with pytest.raises(ValueError, match="kvp must be in"):
        get_protocol("calcium_scoring", kvp=150)


@pytest.mark.parametrize("field,value,exc,match", [
    ("kvp", 150.0, ValueError, r"kvp must be in \[70.0, 140.0\] kV, got 150.0; the HA table"),
    ("kvp", "120", TypeError, "kvp must be a number"),
    ("pixel_mm", -0.5, ValueError, "pixel_mm must be in"),
    ("matrix", 512.0, TypeError, "matrix must be an int"),
    ("matrix", 8, ValueError, r"matrix must be in \[16, 2048\]"),
    ("slice_thickness_mm", 0.0, ValueError, "slice_thickness_mm must be in"),
    ("increment_mm", 0.0, ValueError, "increment_mm must be in .*overlapping"),
    ("slice_profile", "box", ValueError, "slice_profile must be one of .*'trapezoid'"),
    ("psf_fwhm_mm", 0.0, ValueError, "psf_fwhm_mm must be in .*from_mtf50"),
    ("noise_sd_hu", -1.0, ValueError, "noise_sd_hu must be in .*noise-free"),
    ("nps_peak_freq_per_mm", 2.0, ValueError, "below the Nyquist frequency"),
    ("gating_phase", 1.0, ValueError, r"gating_phase must be in \[0, 1\)"),
    ("gated", 1, TypeError, "gated must be True or False"),
    ("pitch", 0.0, ValueError, "pitch must be in"),
    ("name", 3, TypeError, "name must be a str"),
    ("temporal_resolution_ms", math.nan, ValueError, "temporal_resolution_ms must be in"),
])
def test_validation_messages(field, value, exc, match):
    with pytest.raises(exc, match=match):
        Protocol(**{field: value})


def test_heart_rate_is_not_a_protocol_field():
    # the heart rate belongs to the phantom (its CardiacMotion); every way of giving
    # it to a protocol fails and says where it went
    assert "heart_rate_bpm" not in {f.name for f in dataclasses.fields(Protocol)}
    assert "heart_rate_bpm" not in PROTOCOLS["calcium_scoring"].as_attrs()
    where = r"Protocol has no heart_rate_bpm.*CardiacMotion.*virtual_patient.*motion_phantom"
    for make in (lambda: Protocol(heart_rate_bpm=80.0),
                 lambda: get_protocol("calcium_scoring", heart_rate_bpm=80.0),
                 lambda: PROTOCOLS["low_dose_chest"].replace(heart_rate_bpm=70.0)):
        with pytest.raises(TypeError, match=where):
            make()
    # the signature shown to users is still the dataclass one, without the field
    import inspect
    params = inspect.signature(Protocol).parameters
    assert "heart_rate_bpm" not in params and list(params)[:2] == ["name", "kvp"]


def test_overlap_and_gaps_are_allowed():
    assert Protocol(slice_thickness_mm=1.0, increment_mm=0.5).overlapping
    assert not Protocol(slice_thickness_mm=1.0, increment_mm=2.0).overlapping


def test_noise_from_dose():
    assert noise_sd_from_mas(100.0) == pytest.approx(20.0)
    # SD ~ 1/sqrt(mAs)
    assert noise_sd_from_mas(400.0) == pytest.approx(10.0)
    # SD ~ 1/sqrt(thickness)
    assert noise_sd_from_mas(100.0, slice_thickness_mm=0.75) == pytest.approx(40.0)
    # +40 mm of water: transmission halves, SD x sqrt(2)
    d0 = math.sqrt(300 * 200)
    assert noise_sd_from_mas(100.0, effective_diameter_mm=d0 + 40) == pytest.approx(
        20 * math.sqrt(2))
    big = noise_sd_from_mas(100.0, width_mm=400, height_mm=300)
    assert big > 20 and big == pytest.approx(
        noise_sd_from_mas(100.0, effective_diameter_mm=math.sqrt(400 * 300)))
    with pytest.raises(ValueError, match=r"mas must be in \(0.0"):
        noise_sd_from_mas(0.0)
    with pytest.raises(ValueError, match="give both width_mm and height_mm"):
        noise_sd_from_mas(100.0, width_mm=300)


def test_grid_helpers():
    p = Protocol(matrix=16, pixel_mm=0.5)
    y, x = p.grid_yx_mm()
    np.testing.assert_allclose(x[6:10], [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(x, -x[::-1])
    z = Protocol(increment_mm=3.0).slice_positions_mm((-15.0, 15.0))
    np.testing.assert_allclose(np.diff(z), 3.0)
    assert z.size == 10 and abs(z.mean()) < 1e-12
    with pytest.raises(ValueError, match="z1 > z0"):
        p.slice_positions_mm((1.0, 1.0))


def test_attrs_are_netcdf_safe():
    attrs = PROTOCOLS["low_dose_chest"].as_attrs()
    assert attrs["protocol"] == "low_dose_chest" and attrs["gated"] == 0
    assert all(isinstance(v, (int, float, str)) for v in attrs.values())
    for key in ("kvp", "slice_thickness_mm", "psf_fwhm_mm", "noise_sd_hu", "kernel"):
        assert key in attrs


def test_presets_are_read_only():
    with pytest.raises(TypeError):
        PROTOCOLS["mine"] = Protocol()


def test_with_dose_uses_the_protocol_thickness():
    p = Protocol(slice_thickness_mm=1.0, increment_mm=1.0).with_dose(100.0, width_mm=300,
                                                                     height_mm=200)
    assert p.noise_sd_hu == pytest.approx(20.0 * math.sqrt(3.0))
    assert p.slice_thickness_mm == 1.0
