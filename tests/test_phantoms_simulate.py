"""phantoms.simulate: output model, patch mode, determinism, truth, repeats, errors."""

import numpy as np
import pytest

import pvcalc
from phantoms import (
    Blob,
    CardiacMotion,
    ConstantVelocity,
    Cylinder,
    Lesion,
    Phantom,
    Rod,
    Sphere,
    ThoraxBody,
    fraction_map,
    get_protocol,
    lesion_table,
    repeat,
    simulate,
    simulate_patches,
    simulate_repeat,
)
from phantoms.materials import hu_per_mg_cm3


def _phantom(z_motion=0.2):
    return Phantom(ThoraxBody(), [
        Lesion(Sphere((0.5, 1.0, -4.0), 1.5), 400.0, name="sphere"),
        Lesion(Cylinder((-1.0, -2.0, 3.0), 1.0, 2.0), 800.0,
               CardiacMotion((z_motion, 0.5, 1.0), 60.0), name="cyl"),
        Lesion(Blob([(2.0, 5.0, 1.0), (2.5, 5.5, 1.8)], [1.0, 0.8]), 200.0,
               ConstantVelocity((0.0, 10.0, 25.0))),
    ], rods=(Rod((-15.0, 12.0), 4.0, density_mg_cm3=200.0),), z_extent_mm=(-9.0, 9.0),
        name="test")


PROTOCOL = get_protocol("calcium_scoring", matrix=96)
HELICAL = get_protocol("low_dose_chest", matrix=96)


def test_scan_follows_the_scan_model():
    scan, truth = simulate(_phantom(), PROTOCOL, seed=5)
    pvcalc.validate_scan(scan)
    assert scan.dtype == np.float32 and scan.dims == ("z", "y", "x")
    assert scan.shape == (6, 96, 96)
    assert pvcalc.scan_spacing_mm(scan) == pytest.approx((3.0, 0.49, 0.49))
    assert float(scan.x.mean()) == pytest.approx(0.0, abs=1e-9)
    for key in ("units", "kvp", "slice_thickness_mm", "protocol", "kernel", "psf_fwhm_mm",
                "noise_sd_hu", "seed", "phantom"):
        assert key in scan.attrs
    assert scan.attrs["seed"] == 5 and scan.attrs["phantom"] == "test"
    assert truth.sizes["lesion"] == 3


def test_truth_values():
    ph = _phantom()
    scan, truth = simulate(ph, PROTOCOL, seed=0, noise=False)
    k = hu_per_mg_cm3(120)
    vox = float(np.prod(pvcalc.scan_spacing_mm(scan)))
    # the rendered volume (fractions x voxel volume) against the shapes' analytic volumes,
    # computed here from their parameters; the blob's two spheres overlap, so its volume is
    # the union: two spheres minus the lens where they intersect
    d = float(np.linalg.norm(np.subtract((2.0, 5.0, 1.0), (2.5, 5.5, 1.8))))
    r1, r2 = 1.0, 0.8
    lens = np.pi * (r1 + r2 - d) ** 2 * (d * d + 2 * d * (r1 + r2) - 3 * (r1 - r2) ** 2) / (12 * d)
    analytic = [4 / 3 * np.pi * 1.5 ** 3, np.pi * 1.0 ** 2 * 2.0,
                4 / 3 * np.pi * (r1 ** 3 + r2 ** 3) - lens]
    for i, les in enumerate(ph.lesions):
        rendered = float(fraction_map(truth, i, scan).sum(dtype=np.float64)) * vox
        # the cylinder moves partly along z, but the scan is gated: every slice sees the same
        # time window, so its time-averaged occupancy still sums to its volume
        assert rendered == pytest.approx(analytic[i], rel=5e-3)
        assert float(truth.volume_mm3[i]) == pytest.approx(analytic[i], rel=1e-4)
        assert float(truth.mass_mg[i]) == pytest.approx(les.density_mg_cm3 * analytic[i] / 1000,
                                                        rel=1e-4)
        assert float(truth.delta_hu[i]) == pytest.approx(k * les.density_mg_cm3)
        assert float(truth.hu[i]) == pytest.approx(40.0 + k * les.density_mg_cm3)
    assert list(truth["shape"].values) == ["sphere", "cylinder", "blob"]
    assert list(truth["motion"].values) == ["static", "cardiac", "constant_velocity"]
    assert float(truth.velocity_x_mm_s[2]) == 25.0
    assert float(truth.peak_velocity_mm_s[1]) == 60.0


@pytest.mark.parametrize("protocol", [PROTOCOL, HELICAL], ids=["gated", "helical"])
def test_fraction_maps_sum_to_true_volume(protocol):
    # in-plane motion only: a non-gated helical scan sees a lesion moving along z at
    # different times in different slices, so its sum is not its volume (physically)
    scan, truth = simulate(_phantom(z_motion=0.0), protocol, seed=1, noise=False)
    vox = float(np.prod(pvcalc.scan_spacing_mm(scan)))
    for i in range(truth.sizes["lesion"]):
        f = fraction_map(truth, i, scan)
        assert float(f.sum()) * vox == pytest.approx(float(truth.volume_mm3[i]), rel=5e-3)
        assert float(f.min()) >= 0 and float(f.max()) <= 1 + 1e-6


@pytest.mark.parametrize("protocol", [PROTOCOL, HELICAL], ids=["gated", "helical"])
def test_noise_free_patches_equal_full_scan_bit_for_bit(protocol):
    ph = _phantom()
    scan, _ = simulate(ph, protocol, seed=11, noise=False)
    patches, truth = simulate_patches(ph, protocol, seed=11, noise=False)
    assert len(patches) == 3
    for p in patches:
        cut = scan.sel(z=p.z, y=p.y, x=p.x)
        assert cut.shape == p.shape
        assert np.array_equal(cut.values, p.values)          # bytes, not tolerance
    # the patches overlap, so neighbours' contributions were included
    assert len(np.intersect1d(patches[0].x, patches[2].x)) > 0


def test_noisy_patches_have_the_protocol_noise_sd():
    ph = _phantom()
    clean, _ = simulate_patches(ph, PROTOCOL, seed=2, noise=False, margin_mm=8.0)
    sds = []
    for seed in range(4):
        noisy, _ = simulate_patches(ph, PROTOCOL, seed=seed, margin_mm=8.0)
        sds += [float((n - c).std()) for n, c in zip(noisy, clean)]
    assert np.mean(sds) == pytest.approx(PROTOCOL.noise_sd_hu, rel=0.15)


def test_determinism_and_seed_independence():
    ph = _phantom()
    a, _ = simulate(ph, HELICAL, seed=3)
    b, _ = simulate(ph, HELICAL, seed=3)
    c, _ = simulate(ph, HELICAL, seed=4)
    assert a.values.tobytes() == b.values.tobytes()
    assert not np.array_equal(a.values, c.values)
    # the non-gated cardiac phase is drawn from the seed
    assert a.attrs["cardiac_phase"] != c.attrs["cardiac_phase"]
    # noise of different seeds is uncorrelated
    na = a.values - simulate(ph, HELICAL, seed=3, noise=False)[0].values
    nc = c.values - simulate(ph, HELICAL, seed=4, noise=False)[0].values
    assert abs(np.corrcoef(na.ravel(), nc.ravel())[0, 1]) < 0.02


def test_repeat_changes_position_noise_and_phase_not_truth():
    ph = _phantom()
    pairs = repeat(ph, HELICAL, seed=7, n_repeats=3, fraction_maps=False)
    again = repeat(ph, HELICAL, seed=7, n_repeats=3, fraction_maps=False)
    for (s, t), (s2, _) in zip(pairs, again):
        assert s.values.tobytes() == s2.values.tobytes()
        np.testing.assert_array_equal(t.volume_mm3, pairs[0][1].volume_mm3)
        np.testing.assert_array_equal(t.mass_mg, pairs[0][1].mass_mg)
    cz = [float(t.centre_z_mm[0]) for _, t in pairs]
    assert len(set(cz)) == 3
    shifts = [s.attrs["translation_x_mm"] for s, _ in pairs]
    assert 0 < np.max(np.abs(shifts)) < 5.0
    assert len({s.attrs["cardiac_phase"] for s, _ in pairs}) == 3
    assert [s.attrs["repeat"] for s, _ in pairs] == [0, 1, 2]


def test_repeat_without_variation_is_the_same_scan():
    ph = _phantom()
    pairs = repeat(ph, PROTOCOL, seed=1, n_repeats=2, reposition=False, noise=False,
                   gating_jitter_sd=0.0, fraction_maps=False)
    assert np.array_equal(pairs[0][0].values, pairs[1][0].values)
    ref, _ = simulate(ph, PROTOCOL, seed=9, noise=False, fraction_maps=False)
    assert np.array_equal(pairs[0][0].values, ref.values)


def test_named_phantom_runs():
    from phantoms import cci_phantom
    scan, truth = simulate(cci_phantom(), get_protocol("calcium_scoring", matrix=256), seed=0,
                           fraction_maps=False)
    assert truth.sizes["lesion"] == 9
    assert np.isfinite(scan.values).all()


def test_errors():
    ph = _phantom()
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        simulate(ph, PROTOCOL, seed=1.5)
    with pytest.raises(TypeError, match="phantom must be a phantoms.Phantom"):
        simulate("cci", PROTOCOL, seed=0)
    with pytest.raises(TypeError, match="protocol must be a phantoms.Protocol"):
        simulate(ph, "calcium_scoring", seed=0)
    with pytest.raises(ValueError, match="mode must be 'full' or 'patches'"):
        simulate(ph, PROTOCOL, seed=0, mode="slab")
    with pytest.raises(ValueError, match="n_repeats must be a positive integer"):
        repeat(ph, PROTOCOL, seed=0, n_repeats=0)
    with pytest.raises(ValueError, match="n_time_samples must be an integer in 1-256"):
        simulate(ph, PROTOCOL, seed=0, n_time_samples=0)
    with pytest.raises(ValueError, match="margin_mm must be a non-negative length"):
        simulate_patches(ph, PROTOCOL, seed=0, margin_mm=-1.0)


def test_phantom_validation():
    body = ThoraxBody()
    with pytest.raises(ValueError, match=r"outside z_extent_mm"):
        Phantom(body, [Lesion(Sphere((29.5, 0, 0), 1.0), 400.0)])
    with pytest.raises(ValueError, match="not inside the soft tissue of the body"):
        Phantom(body, [Lesion(Sphere((0, 0, 149.5), 1.0), 400.0)])      # beyond the body edge
    with pytest.raises(ValueError, match="not inside the soft tissue"):
        Phantom(body, [Lesion(Sphere((0, -5.0, 81.0), 1.0), 400.0)])    # in a lung
    with pytest.raises(ValueError, match=r"lesions\[0\] and lesions\[1\] overlap"):
        Phantom(body, [Lesion(Sphere((0, 0, 0), 1.0), 400.0),
                       Lesion(Sphere((0, 0, 1.5), 1.0), 400.0)])
    # boxes intersect but the spheres do not: allowed
    Phantom(body, [Lesion(Sphere((0, 0, 0), 1.0), 400.0),
                   Lesion(Sphere((0, 1.5, 1.5), 1.0), 400.0)])
    with pytest.raises(ValueError, match=r"touches rods\[0\]"):
        Phantom(body, [Lesion(Sphere((0, 0, 0), 1.0), 400.0)], rods=[Rod((0, 0), 3.0)])
    with pytest.raises(TypeError, match="density_mg_cm3 must be a number"):
        Lesion(Sphere((0, 0, 0), 1.0), "dense")
    with pytest.raises(TypeError, match="body must be a ThoraxBody"):
        Phantom(None)


def test_repositioning_moves_lesions_and_rods_together():
    from scipy.spatial.transform import Rotation
    # off-origin lesion and an asymmetric z extent: the pivot (phantom centre: mid z of
    # the extent, body centre in-plane) is not the origin and the lesion is not on it
    centre = np.array([1.5, 12.0, -15.0])
    ph = Phantom(ThoraxBody(lungs=False, spine=False),
                 [Lesion(Sphere(tuple(centre), 2.0), 800.0)],
                 rods=(Rod((-5.0, 20.0), 4.0, density_mg_cm3=800.0),), z_extent_mm=(-4.5, 7.5))
    pivot = np.array([0.5 * (-4.5 + 7.5), 0.0, 0.0])
    p = get_protocol("calcium_scoring", matrix=128, noise_sd_hu=0.0)
    (scan, truth), = repeat(ph, p, seed=3, n_repeats=1, translation_sd_mm=(0.5, 1.0, 1.0),
                            rotation_sd_deg=10.0, fraction_maps=False)
    a = scan.attrs
    R = Rotation.from_rotvec(np.radians(a["rotation_deg"]) * np.array(
        [a["rotation_axis_z"], a["rotation_axis_y"], a["rotation_axis_x"]])).as_matrix()
    t = np.array([a["translation_z_mm"], a["translation_y_mm"], a["translation_x_mm"]])
    assert abs(a["rotation_deg"]) > 2
    # the lesion centre in the truth is the nominal centre rotated about the pivot, then
    # translated (and the rotation moves it by far more than the tolerance)
    c = lesion_table(truth).loc[0, ["centre_z_mm", "centre_y_mm", "centre_x_mm"]].to_numpy(float)
    np.testing.assert_allclose(c, R @ (centre - pivot) + pivot + t, atol=1e-9)
    assert np.linalg.norm(R @ (centre - pivot) - (centre - pivot)) > 0.5
    # the rod (rendered in the image) sits at its centre in the pivot's plane, rotated and
    # translated
    rod = (R @ (np.array([pivot[0], -5.0, 20.0]) - pivot) + pivot + t)[1:]
    img = scan.isel(z=1).values.astype(float) - 40.0
    yy, xx = np.meshgrid(scan.y.values, scan.x.values, indexing="ij")
    near = (yy - rod[0]) ** 2 + (xx - rod[1]) ** 2 < 7.0 ** 2
    w = np.where(near, img, 0.0)
    found = np.array([(w * yy).sum(), (w * xx).sum()]) / w.sum()
    np.testing.assert_allclose(found, rod, atol=0.05)


def _repeat_reference(ph, protocol, seed, n, n_time_samples):
    """The repeat loop written out: one SeedSequence child per repeat, spawned together."""
    from phantoms.simulate import TRANSLATION_SD_MM, _full
    out = []
    for child in np.random.SeedSequence(seed).spawn(n):
        scan, truth = _full(ph, protocol, child, seed, True, False,
                            reposition=True, translation_sd_mm=TRANSLATION_SD_MM,
                            rotation_sd_deg=1.0, gating_jitter_sd=0.02,
                            n_time_samples=n_time_samples, nsub=4)
        out.append((scan, truth))
    return out


@pytest.mark.parametrize("protocol", [PROTOCOL, HELICAL], ids=["gated", "helical"])
def test_simulate_repeat_is_repeat_k_bit_for_bit(protocol):
    ph = _phantom()          # moving lesions; reposition, jitter and noise on by default
    m = 4                    # time samples (fewer than the default: a faster test)
    for seed in (0, 7, 2 ** 40 + 3):
        series = repeat(ph, protocol, seed=seed, n_repeats=3, n_time_samples=m)
        ref = _repeat_reference(ph, protocol, seed, 3, m)
        for k in (2, 0, 1):
            scan, truth = simulate_repeat(ph, protocol, seed=seed, index=k, n_time_samples=m)
            s, t = series[k]
            assert scan.values.tobytes() == s.values.tobytes() == ref[k][0].values.tobytes()
            assert scan.attrs == s.attrs and scan.attrs["repeat"] == k
            assert truth.identical(t)
            for name in truth.data_vars:
                assert truth[name].values.tobytes() == t[name].values.tobytes()
            np.testing.assert_array_equal(truth.centre_x_mm, ref[k][1].centre_x_mm)
        # the repeats are different scans
        assert series[0][0].attrs["translation_x_mm"] != series[1][0].attrs["translation_x_mm"]
    # a repeat does not depend on how many repeats the series has
    long = repeat(ph, protocol, seed=5, n_repeats=4, fraction_maps=False, n_time_samples=m)
    short = repeat(ph, protocol, seed=5, n_repeats=2, fraction_maps=False, n_time_samples=m)
    assert long[1][0].values.tobytes() == short[1][0].values.tobytes()


def test_simulate_repeat_errors():
    ph = _phantom()
    for bad in (-1, 1.0, True, "0", None):
        err = TypeError if not isinstance(bad, int) or isinstance(bad, bool) else ValueError
        with pytest.raises(err, match="index must be"):
            simulate_repeat(ph, PROTOCOL, seed=0, index=bad)
    for bad in (-1, 0.5, None, True):
        with pytest.raises(TypeError, match="seed must be a non-negative integer"):
            simulate_repeat(ph, PROTOCOL, seed=bad, index=0)
    with pytest.raises(TypeError, match="index"):
        simulate_repeat(ph, PROTOCOL, seed=0)            # index is required
    with pytest.raises(ValueError, match="translation_sd_mm must be 3 non-negative"):
        simulate_repeat(ph, PROTOCOL, seed=0, index=0, translation_sd_mm=(1.0, -1.0, 0.0))
    with pytest.raises(ValueError, match="rotation_sd_deg must be a non-negative number"):
        simulate_repeat(ph, PROTOCOL, seed=0, index=0, rotation_sd_deg=-2.0)
