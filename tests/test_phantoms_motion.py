"""phantoms.motion: cardiac velocity profile, rest windows, timing, errors."""

import numpy as np
import pytest

from phantoms.motion import CardiacMotion, ConstantVelocity, Static, acquisition_times


@pytest.mark.parametrize("hr", [50.0, 60.0, 90.0])
def test_cardiac_profile(hr):
    m = CardiacMotion((0.0, 3.0, 4.0), 70.0, heart_rate_bpm=hr)
    rr = 60.0 / hr
    t = np.linspace(0, 2 * rr, 40001)
    d = m.displacement_mm(t)
    v = m.velocity_mm_s(t)
    # periodic, along the direction, continuous
    np.testing.assert_allclose(m.displacement_mm(t + rr), d, atol=1e-9)
    np.testing.assert_allclose(np.cross(d, [0, 0.6, 0.8]), 0, atol=1e-9)
    assert np.max(np.abs(np.diff(d, axis=0))) < 70.0 * (t[1] - t[0]) * 1.01
    # velocity is the derivative of displacement
    num = np.gradient(d[:, 2], t)
    np.testing.assert_allclose(num[1:-1], v[1:-1, 2], atol=0.05 * 70)
    # peak speed equals the parameter; zero in both rest windows
    speed = np.linalg.norm(v, axis=1)
    assert speed.max() == pytest.approx(70.0, rel=1e-6)
    ph = np.mod(t / rr, 1)
    for a, b in (m.rest_phase, m.diastolic_rest_phase):
        sel = (ph > a + 1e-6) & (ph < b - 1e-6)
        assert np.all(speed[sel] == 0)
        assert np.ptp(d[sel], axis=0).max() < 1e-12
    # nominal position during diastolic rest; end-systolic offset peak * L_short * RR / 2
    assert np.all(d[(ph > 0.66) & (ph < 0.84)] == 0)
    sys_d = np.linalg.norm(m.displacement_mm(0.4 * rr))
    assert sys_d == pytest.approx(70.0 * 0.15 * rr / 2, rel=1e-9)


def test_constant_velocity_and_static():
    m = ConstantVelocity((0.0, 10.0, -20.0), t_ref_s=0.5)
    np.testing.assert_allclose(m.displacement_mm([0.5, 0.6]), [[0, 0, 0], [0, 1.0, -2.0]])
    assert m.speed_mm_s == pytest.approx(np.hypot(10, 20))
    assert not Static().moves and not ConstantVelocity((0, 0, 0)).moves
    assert Static().displacement_mm(np.zeros((2, 5))).shape == (2, 5, 3)


def test_acquisition_times():
    z = np.arange(5) * 3.0
    g = acquisition_times(z, temporal_resolution_ms=150, n_samples=10, gated=True,
                          gating_phase=0.7, heart_rate_bpm=75)
    assert g.shape == (5, 10)
    assert np.all(g == g[0])
    assert g[0].mean() == pytest.approx(0.7 * 0.8)
    assert g[0, -1] - g[0, 0] == pytest.approx(0.15 * 9 / 10)
    h = acquisition_times(z, temporal_resolution_ms=150, n_samples=4, gated=False,
                          start_phase=0.25, table_speed_mm_s=60.0)
    np.testing.assert_allclose(np.diff(h.mean(1)), 3.0 / 60.0)
    a = acquisition_times(z, temporal_resolution_ms=150, n_samples=4, gated=False,
                          start_phase=0.25)
    assert np.all(a == a[0])


def test_errors():
    with pytest.raises(ValueError, match="direction must be a non-zero direction"):
        CardiacMotion((0, 0, 0), 10.0)
    with pytest.raises(ValueError, match="peak_velocity_mm_s must be finite and >= 0"):
        CardiacMotion((1, 0, 0), -5.0)
    with pytest.raises(ValueError, match="rest_phase and diastolic_rest_phase must be ordered"):
        CardiacMotion((1, 0, 0), 5.0, rest_phase=(0.7, 0.8))
    with pytest.raises(ValueError, match="velocity_mm_s must be 3 finite numbers"):
        ConstantVelocity((1, 2))
    with pytest.raises(ValueError, match=r"gating_phase must be in \[0, 1\)"):
        acquisition_times([0.0], temporal_resolution_ms=100, gating_phase=1.5)
    with pytest.raises(ValueError, match="table_speed_mm_s must be a positive speed"):
        acquisition_times([0.0], temporal_resolution_ms=100, gated=False, table_speed_mm_s=-1)
