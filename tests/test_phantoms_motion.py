"""phantoms.motion: cardiac velocity profile, rest windows, timing, errors; and who owns the
heart rate: the phantom's heart times the scan (gated scans sample the protocol's
gating_phase of the lesion's own cycle, non-gated ones a uniformly random phase of it).

References come from the documented motion model (velocity lobes integrated with
scipy.integrate.quad), the linearity of the image in the time-averaged occupancy (a
moving lesion's scan = the mean of static scans at its sampled positions), and scan
hashes recorded before the heart rate moved from the protocol to the phantom."""

import dataclasses
import hashlib
import math

import numpy as np
import pytest
from scipy import integrate, stats

from phantoms import (
    CardiacMotion,
    ConstantVelocity,
    Lesion,
    Phantom,
    Sphere,
    Static,
    ThoraxBody,
    acquisition_times,
    get_protocol,
    simulate,
    simulate_patches,
)
from phantoms.library import cci_phantom, virtual_patient


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
    g = acquisition_times(z, temporal_resolution_ms=150, heart_rate_bpm=75, n_samples=10,
                          gated=True, gating_phase=0.7)
    assert g.shape == (5, 10)
    assert np.all(g == g[0])
    assert g[0].mean() == pytest.approx(0.7 * 0.8)          # 0.7 of R-R = 0.8 s
    assert g[0, -1] - g[0, 0] == pytest.approx(0.15 * 9 / 10)
    h = acquisition_times(z, temporal_resolution_ms=150, heart_rate_bpm=60, n_samples=4,
                          gated=False, start_phase=0.25, table_speed_mm_s=60.0)
    np.testing.assert_allclose(np.diff(h.mean(1)), 3.0 / 60.0)
    assert h[0].mean() == pytest.approx(0.25)
    a = acquisition_times(z, temporal_resolution_ms=150, heart_rate_bpm=60, n_samples=4,
                          gated=False, start_phase=0.25)
    assert np.all(a == a[0])


def test_errors():
    with pytest.raises(ValueError, match="direction must be a non-zero"):
        CardiacMotion((0, 0, 0), 10.0)
    with pytest.raises(ValueError, match="peak_velocity_mm_s must be"):
        CardiacMotion((1, 0, 0), -5.0)
    with pytest.raises(ValueError, match="rest_phase and diastolic_rest_phase must be ordered"):
        CardiacMotion((1, 0, 0), 5.0, rest_phase=(0.7, 0.8))
    with pytest.raises(ValueError, match=r"heart_rate_bpm must be in \[30.0, 200.0\] beats/min"):
        CardiacMotion((1, 0, 0), 5.0, heart_rate_bpm=250.0)
    with pytest.raises(TypeError, match="heart_rate_bpm must be a number"):
        CardiacMotion((1, 0, 0), 5.0, heart_rate_bpm="70")
    with pytest.raises(ValueError, match="velocity_mm_s must be 3"):
        ConstantVelocity((1, 2))
    with pytest.raises(ValueError, match=r"gating_phase must be in \[0, 1\)"):
        acquisition_times([0.0], temporal_resolution_ms=100, heart_rate_bpm=60, gating_phase=1.5)
    with pytest.raises(ValueError, match="table_speed_mm_s must be a positive speed"):
        acquisition_times([0.0], temporal_resolution_ms=100, heart_rate_bpm=60, gated=False,
                          table_speed_mm_s=-1)
    with pytest.raises(TypeError, match="heart_rate_bpm"):        # no silent default
        acquisition_times([0.0], temporal_resolution_ms=100)


# -- one owner of the heart rate -------------------------------------------------------

BODY = ThoraxBody()
PEAK = 80.0                     # mm/s, along x


def _reference_displacement_x(phase, rr_s, peak=PEAK):
    """Displacement (mm) at a phase of the documented model, integrated with quad.

    Velocity: peak/3 sin^2 over the forward lobe 0.85 -> 1.30 (45% of R-R), 0 in the
    rests 0.30-0.50 and 0.65-0.85, -peak sin^2 over the return lobe 0.50 -> 0.65 (15%);
    displacement 0 in mid-diastolic rest.
    """
    def v(p):                                       # p in [0.85, 1.85): one cycle
        if p < 1.30:
            return peak / 3.0 * math.sin(math.pi * (p - 0.85) / 0.45) ** 2
        q = p - 1.0
        if 0.50 <= q < 0.65:
            return -peak * math.sin(math.pi * (q - 0.50) / 0.15) ** 2
        return 0.0
    def integral(lo, hi):
        inner = [x for x in (1.30, 1.50, 1.65) if lo < x < hi]
        return integrate.quad(v, lo, hi, points=inner or None, limit=200, epsabs=1e-12)[0]
    if phase >= 0.85:                     # forward lobe, from the end of diastolic rest
        return rr_s * integral(0.85, phase)
    if phase < 0.5:                       # rest of the forward lobe, end-systolic rest
        return rr_s * integral(0.85, phase + 1.0)
    return -rr_s * integral(phase + 1.0, 1.85)      # back from the end of diastolic rest


def _one_lesion(motion, z_extent=(-6.0, 6.0)):
    return Phantom(BODY, [Lesion(Sphere((0.0, 0.0, 0.0), 1.5), 400.0, motion)],
                   z_extent_mm=z_extent)


def _reference_scan(phantom, protocol, times_s):
    """Mean over the time samples (K, M) of static scans of the lesion at its positions
    (slice k of sample m from a static scan shifted by the reference displacement)."""
    les = phantom.lesions[0]
    rr = 60.0 / les.motion.heart_rate_bpm
    cache, out = {}, None
    K, M = times_s.shape
    for k in range(K):
        for m in range(M):
            dx = _reference_displacement_x(math.fmod(times_s[k, m] / rr, 1.0), rr)
            if dx not in cache:
                shifted = Lesion(les.shape.translated((0.0, 0.0, dx)), les.density_mg_cm3)
                cache[dx] = simulate(dataclasses.replace(phantom, lesions=(shifted,)),
                                     protocol, seed=0, noise=False,
                                     fraction_maps=False)[0].values.astype(np.float64)
            if out is None:
                out = np.zeros_like(cache[dx])
            out[k] += cache[dx][k] / M
    return out, len(cache)


GATED = get_protocol("calcium_scoring", matrix=64, noise_sd_hu=0.0)


@pytest.mark.parametrize("hr", [50.0, 60.0, 80.0, 100.0, 120.0])
def test_gated_scan_samples_the_gating_phase_of_the_lesion_cycle(hr):
    M = 16
    ph = _one_lesion(CardiacMotion((0.0, 0.0, 1.0), PEAK, heart_rate_bpm=hr))
    scan, _ = simulate(ph, GATED, seed=0, noise=False, fraction_maps=False, n_time_samples=M)
    assert scan.attrs["heart_rate_bpm"] == hr and scan.attrs["cardiac_phase"] == 0.75
    # every slice's window is centred on 0.75 of the lesion's own R-R, 150 ms wide
    rr = 60.0 / hr
    window = ((np.arange(M) + 0.5) / M - 0.5) * 0.150
    times = np.broadcast_to(0.75 * rr + window, (scan.sizes["z"], M))
    sampled_phases = 0.75 + window / rr
    in_rest = bool(np.all((sampled_phases >= 0.65) & (sampled_phases <= 0.85)))
    assert in_rest == (hr <= 85.0)          # 150 ms fits the 0.65-0.85 rest up to ~85 bpm
    reference, n_positions = _reference_scan(ph, GATED, times)
    if in_rest:
        # diastolic rest at every heart rate: the lesion is at its nominal position for
        # the whole window (no displacement, no smear), bit for bit the static scan
        assert n_positions == 1
        static, _ = simulate(_one_lesion(Static()), GATED, seed=0, noise=False,
                             fraction_maps=False)
        np.testing.assert_array_equal(scan.values, static.values)
    else:
        # the window's edges reach the return and forward lobes: the smear is that of
        # the phases 0.75 +- 75 ms / R-R of the lesion's own cycle
        assert n_positions > 1
    np.testing.assert_allclose(scan.values, reference, atol=2e-3)


def test_gated_scan_at_80_bpm_is_not_timed_by_a_60_bpm_clock():
    # a 60 bpm clock would put the 75% trigger at 0.75 s, i.e. phase 0.00 (the R wave, in
    # the forward lobe) of an 80 bpm heart: displaced by ~0.9 mm. The scan is not that.
    hr = 80.0
    rr = 60.0 / hr
    assert _reference_displacement_x(0.75, rr) == 0.0
    assert _reference_displacement_x(math.fmod(0.75 / rr, 1.0), rr) > 0.5
    ph = _one_lesion(CardiacMotion((0.0, 0.0, 1.0), PEAK, heart_rate_bpm=hr))
    scan, _ = simulate(ph, GATED, seed=0, noise=False, fraction_maps=False)
    window = ((np.arange(16) + 0.5) / 16 - 0.5) * 0.150
    wrong, _ = _reference_scan(ph, GATED, np.broadcast_to(0.75 + window, (scan.sizes["z"], 16)))
    assert np.abs(scan.values - wrong).max() > 10.0          # HU


NON_GATED = get_protocol("calcium_scoring", matrix=64, noise_sd_hu=0.0, gated=False)


@pytest.mark.parametrize("hr, seed", [(50.0, 3), (100.0, 3), (72.0, 11)])
def test_non_gated_scan_samples_a_random_phase_of_the_lesion_cycle(hr, seed):
    M = 4
    ph = _one_lesion(CardiacMotion((0.0, 0.0, 1.0), PEAK, heart_rate_bpm=hr),
                     z_extent=(-4.5, 4.5))
    scan, _ = simulate(ph, NON_GATED, seed=seed, noise=False, fraction_maps=False,
                       n_time_samples=M)
    phase = scan.attrs["cardiac_phase"]
    assert scan.attrs["heart_rate_bpm"] == hr and 0.0 <= phase < 1.0
    # helical: slice k is acquired (z_k - z_0) / table speed after the first, whose
    # window is centred on `phase` of the lesion's own R-R
    rr = 60.0 / hr
    z = scan.z.values
    window = ((np.arange(M) + 0.5) / M - 0.5) * NON_GATED.temporal_resolution_ms / 1000.0
    times = (phase * rr + (z - z[0])[:, None] / NON_GATED.table_speed_mm_s + window[None, :])
    reference, _ = _reference_scan(ph, NON_GATED, times)
    np.testing.assert_allclose(scan.values, reference, atol=2e-3)


def test_non_gated_phase_is_uniform_over_seeds():
    ph = _one_lesion(CardiacMotion((0.0, 0.0, 1.0), PEAK, heart_rate_bpm=80.0))
    small = NON_GATED.replace(matrix=16)
    phases = [simulate(ph, small, seed=s, noise=False, fraction_maps=False,
                       n_time_samples=1)[0].attrs["cardiac_phase"] for s in range(120)]
    assert stats.kstest(phases, "uniform").pvalue > 0.01
    assert np.histogram(phases, bins=4, range=(0, 1))[0].min() >= 15     # 30 expected


def test_virtual_patients_scanned_gated_land_in_diastolic_rest():
    # the patient's own heart rate (55-85 bpm) times the gated scan: at 75% of its R-R
    # every artery is in mid-diastolic rest, so the moving patient's patches equal the
    # static patient's (same lesions: the motion draws happen in both) bit for bit
    protocol = get_protocol("calcium_scoring", noise_sd_hu=0.0, matrix=320)
    rates = []
    for seed, hr in ((1, None), (4, None), (9, None), (2, 55.0), (3, 85.0)):
        moving = virtual_patient(seed, risk_category=3, heart_rate_bpm=hr)
        static = virtual_patient(seed, risk_category=3, heart_rate_bpm=hr, motion=False)
        assert static.heart_rate_bpm is None
        assert 55.0 <= moving.heart_rate_bpm <= 85.0
        assert hr is None or moving.heart_rate_bpm == hr
        assert any(les.motion.moves for les in moving.lesions)
        a, _ = simulate_patches(moving, protocol, seed=0, noise=False, fraction_maps=False)
        b, _ = simulate_patches(static, protocol, seed=0, noise=False, fraction_maps=False)
        assert a[0].attrs["heart_rate_bpm"] == moving.heart_rate_bpm
        assert a[0].attrs["cardiac_phase"] == 0.75 and "heart_rate_bpm" not in b[0].attrs
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa.values, pb.values)
        rates.append(moving.heart_rate_bpm)
    assert max(rates) - min(rates) > 10.0                # a spread of heart rates


def test_a_phantom_has_one_heart():
    def lesion(y, hr):
        return Lesion(Sphere((0.0, y, 0.0), 1.0), 400.0,
                      CardiacMotion((0.0, 0.0, 1.0), 30.0, heart_rate_bpm=hr), name=f"y{y:g}")
    same = Phantom(BODY, [lesion(-5.0, 70.0), Lesion(Sphere((0, 5.0, 0), 1.0), 400.0),
                          lesion(10.0, 70.0)])
    assert same.heart_rate_bpm == 70.0
    assert Phantom(BODY, [Lesion(Sphere((0, 0, 0), 1.0), 400.0,
                                 ConstantVelocity((0, 0, 5.0)))]).heart_rate_bpm is None
    with pytest.raises(ValueError, match=r"lesions\[1\] \(y10\) has CardiacMotion\("
                                         r"heart_rate_bpm=80\) but lesions\[0\] \(y-5\) has "
                                         r"heart_rate_bpm=70: a phantom has one heart"):
        Phantom(BODY, [lesion(-5.0, 70.0), lesion(10.0, 80.0)])


def test_static_phantoms_scan_as_before_the_heart_rate_moved():
    # sha256 (first 16 hex digits) of the scan bytes recorded with the heart rate still on
    # the protocol: a static phantom does not depend on the timing, gated or not (the
    # digests are of the compact CCI replica, the default when they were recorded)
    def digest(protocol, seed):
        scan, _ = simulate(cci_phantom(geometry="compact"), protocol, seed=seed,
                           fraction_maps=False)
        assert "heart_rate_bpm" not in scan.attrs            # no heart in the phantom
        return hashlib.sha256(np.ascontiguousarray(scan.values).tobytes()).hexdigest()[:16]
    assert digest(get_protocol("calcium_scoring"), 11) == "48dea7197dc04e59"
    assert digest(get_protocol("low_dose_chest"), 3) == "36c23a0311972585"
