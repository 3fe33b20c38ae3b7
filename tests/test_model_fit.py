"""``model_fit``: forward model against a slow reference, fits against analytic truth,
detection against its null distribution, bad input.

The reference renderer here shares no code with pvcalc/methods/_model_fit_kernels.py:
the shape's exact z chord at each point of a fine in-plane grid (sub-pixel step
pixel / 9), the slice profile integrated over the chord numerically, the PSF and one
pixel box applied on the fine grid with ``scipy.ndimage`` and the pixel average taken
by block means (docs/scanner.md: the discrete PSF of the scanner model is the
Gaussian integrated over each pixel, applied to pixel-averaged values, which is this
continuous chain).
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

import pvcalc
from pvcalc.methods import METHODS, ModelFitParams, quantify
from pvcalc.methods import _model_fit_detect as detect
from pvcalc.methods import _model_fit_kernels as kernels
from pvcalc.methods._model_fit import NO_PSF

CAL = pvcalc.Calibration(0.8)
PIXEL = 0.49
FWHM = 1.3
SIGMA = FWHM / (2.0 * math.sqrt(2.0 * math.log(2.0)))
SUB = 9


# --- slow reference --------------------------------------------------------------------

def _chord(shape, centre, semi, y, x):
    """(z0, z1) arrays of the shape's chord along z at points (y, x); NaN where none."""
    cz, cy, cx = centre
    az, ay, ax = semi
    u = ((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2
    if shape == "cylinder":
        inside = u <= 1.0
        h = np.where(inside, az, np.nan)
    else:                                         # sphere, ellipsoid
        inside = u < 1.0
        h = np.where(inside, az * np.sqrt(np.clip(1.0 - u, 0.0, None)), np.nan)
    return cz - h, cz + h


def _trapezoid_pdf(u, thickness, edge=0.5):
    a, b = 0.5 * thickness * (1 + edge), 0.5 * thickness * (1 - edge)
    au = np.abs(u)
    return np.where(au <= b, 1.0, np.where(au < a, (a - au) / (a - b), 0.0)) / thickness


def _slice_weights(z0, z1, zc, thickness, profile):
    """(K, n) integral of the slice profile of slice k over [z0, z1] (numerically)."""
    ok = np.isfinite(z0)
    if profile != "box":                          # integrate each distinct chord once
        pairs, inverse = np.unique(np.round(np.column_stack([z0[ok], z1[ok]]), 12), axis=0,
                                   return_inverse=True)
        if len(pairs) < ok.sum():
            w = _slice_weights(pairs[:, 0], pairs[:, 1], zc, thickness, profile)
            out = np.zeros((zc.size, z0.size))
            out[:, ok] = w[:, inverse.ravel()]
            return out
    out = np.zeros((zc.size, z0.size))
    for k, zk in enumerate(zc):
        if profile == "box":
            lo = np.maximum(z0[ok], zk - 0.5 * thickness)
            hi = np.minimum(z1[ok], zk + 0.5 * thickness)
            out[k, ok] = np.clip(hi - lo, 0.0, None) / thickness
        else:                                     # trapezoid: midpoint rule, 4000 points
            t = (np.arange(4000) + 0.5) / 4000
            zz = z0[ok, None] + (z1[ok] - z0[ok])[:, None] * t[None, :]
            out[k, ok] = _trapezoid_pdf(zz - zk, thickness).mean(axis=1) * (z1[ok] - z0[ok])
    return out


def reference_scan(shape, centre, semi, delta_hu, *, dz, thickness, profile, n=(15, 48, 48),
                   background_hu=40.0):
    """Noise-free scan of one lesion (module notes), and its voxel-centre grid."""
    nz, ny, nx = n
    zc = (np.arange(nz) - nz // 2) * dz
    yc = (np.arange(ny) - ny // 2) * PIXEL
    xc = (np.arange(nx) - nx // 2) * PIXEL
    h = PIXEL / SUB
    yf = yc[0] - 0.5 * PIXEL + (np.arange(ny * SUB) + 0.5) * h
    xf = xc[0] - 0.5 * PIXEL + (np.arange(nx * SUB) + 0.5) * h
    yy, xx = np.meshgrid(yf, xf, indexing="ij")
    z0, z1 = _chord(shape, centre, semi, yy.ravel(), xx.ravel())
    w = _slice_weights(z0, z1, zc, thickness, profile).reshape(nz, ny * SUB, nx * SUB)
    img = np.zeros((nz, ny, nx))
    for k in range(nz):
        if not w[k].any():
            continue
        f = ndimage.gaussian_filter(w[k], SIGMA / h, mode="constant", truncate=5.0)
        f = ndimage.uniform_filter(f, SUB, mode="constant")           # one pixel box
        img[k] = f.reshape(ny, SUB, nx, SUB).mean(axis=(1, 3))        # the pixel average
    scan = pvcalc.make_scan(background_hu + delta_hu * img, (dz, PIXEL, PIXEL),
                            origin_mm=(zc[0], yc[0], xc[0]), slice_thickness_mm=thickness,
                            psf_fwhm_mm=FWHM, slice_profile=profile)
    return scan


def _volume(shape, semi):
    az, ay, ax = semi
    return 2 * math.pi * ay * ax * az if shape == "cylinder" else 4 / 3 * math.pi * az * ay * ax


def _roi(centre, semi, margin=3.0):
    return pd.DataFrame({"lesion": ["a"], "centre_z_mm": [centre[0]],
                         "centre_y_mm": [centre[1]], "centre_x_mm": [centre[2]],
                         "radius_mm": [max(semi[1:]) + margin],
                         "radius_z_mm": [semi[0] + margin]})


CENTRE = (0.23, 0.17, -0.11)   # off the voxel grid


# --- forward model against the reference ------------------------------------------------

@pytest.mark.parametrize(("shape", "semi", "params"), [
    ("cylinder", (1.5, 1.5, 1.5), {}),
    ("cylinder", (2.5, 2.5, 2.5), {}),
    ("sphere", (1.5, 1.5, 1.5), {"shape": "sphere"}),
    ("sphere", (2.5, 2.5, 2.5), {"shape": "sphere"}),
    ("ellipsoid", (2.0, 1.5, 2.5), {"shape": "ellipsoid"}),
])
def test_noise_free_fit_recovers_mass_volume_and_centre(shape, semi, params):
    delta = 500.0
    scan = reference_scan(shape, CENTRE, semi, delta, dz=1.0, thickness=1.0, profile="box",
                          n=(17, 44, 44))
    row = quantify(scan, _roi(CENTRE, semi), calibration=CAL,
                   methods={"model_fit": params}).iloc[0]
    vol = _volume(shape, semi)
    mass = CAL.c_ha_mg_cm3_per_hu * delta * vol / 1000.0
    assert row["reason"] == ""
    assert abs(row["mass_mg"] / mass - 1) < 0.01
    assert abs(row["volume_mm3"] / vol - 1) < 0.03
    for axis, c in zip("zyx", CENTRE):
        assert abs(row[f"centre_{axis}_mm"] - c) < 0.1
    assert row["detected"] and row["volume_resolved"] and row["size_fitted"]
    assert row["fit_rms_hu"] < 0.01 * delta


@pytest.mark.parametrize("semi", [(1.5, 1.5, 1.5), (2.5, 2.5, 2.5)])
def test_mass_at_3mm_trapezoid_slices(semi):
    """3 mm slices: the length may be undetermined, the mass never is."""
    delta = 400.0
    scan = reference_scan("cylinder", CENTRE, semi, delta, dz=3.0, thickness=3.0,
                          profile="trapezoid", n=(7, 44, 44))
    row = quantify(scan, _roi(CENTRE, semi), calibration=CAL, methods=["model_fit"]).iloc[0]
    vol = _volume("cylinder", semi)
    assert abs(row["mass_mg"] / (CAL.c_ha_mg_cm3_per_hu * delta * vol / 1000.0) - 1) < 0.01
    if row["volume_resolved"]:
        assert abs(row["volume_mm3"] / vol - 1) < 0.03
    else:
        assert np.isnan(row["volume_mm3"]) and row["reason"].startswith("size not resolved")


def test_unresolved_lesion_reports_mass_not_volume():
    """A 0.6 mm sphere under a 1.3 mm PSF: size and contrast are degenerate."""
    semi = (0.3, 0.3, 0.3)
    delta = 1000.0
    scan = reference_scan("sphere", CENTRE, semi, delta, dz=1.0, thickness=1.0, profile="box",
                          n=(13, 40, 40))
    row = quantify(scan, _roi(CENTRE, semi), calibration=CAL,
                   methods={"model_fit": {"shape": "sphere"}}).iloc[0]
    mass = CAL.c_ha_mg_cm3_per_hu * delta * _volume("sphere", semi) / 1000.0
    assert np.isnan(row["volume_mm3"]) and not row["volume_resolved"]
    assert row["reason"].startswith("size not resolved")
    assert abs(row["mass_mg"] / mass - 1) < 0.05 and row["detected"]


def test_template_conserves_the_integrated_contrast_and_volume():
    """Sum of the unit-contrast template x voxel volume = 1 (contiguous box / trapezoid
    slices, every voxel), and the kernel's volume is the analytic one."""
    nk, nj, ni = 9, 40, 40
    zc = (np.arange(nk) - 4) * 3.0
    kk, jj, ii = (a.ravel().astype(np.int64) for a in np.meshgrid(
        np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij"))
    from pvcalc.methods._model_fit_solve import gaussian_taps
    taps = gaussian_taps(FWHM, PIXEL)
    for code, g, n_slabs, vol in [
            (kernels.CYLINDER, [0.4, 0.1, -0.2, 1.5, 2.0], 1, 2 * math.pi * 1.5 ** 2 * 2.0),
            (kernels.SPHERE, [0.4, 0.1, -0.2, 2.1], 16, 4 / 3 * math.pi * 2.1 ** 3),
            (kernels.ELLIPSOID, [0.4, 0.1, -0.2, 2.5, 1.2, 1.7], 16,
             4 / 3 * math.pi * 2.5 * 1.2 * 1.7)]:
        for kind in (kernels.TRAPEZOID, kernels.BOX):
            out = np.empty(kk.size)
            v = kernels._render(code, np.array(g, dtype=float), n_slabs, zc,
                                -19.5 * PIXEL, -19.5 * PIXEL, PIXEL, PIXEL, nj, ni, taps, taps,
                                3.0, kind, 0.5, kk, jj, ii, out)
            assert v == pytest.approx(vol, rel=1e-12)
            assert out.sum() * 3.0 * PIXEL * PIXEL == pytest.approx(1.0, abs=1e-9)
            assert out.min() >= -1e-15


def test_pixel_area_fractions_are_exact():
    """Area of the unit disk in rectangles against a 4000 x 4000 midpoint grid."""
    rng = np.random.default_rng(3)
    g = (np.arange(4000) + 0.5) / 4000
    for _ in range(5):
        u0, v0 = rng.uniform(-1.3, 0.9, 2)
        u1, v1 = u0 + rng.uniform(0.05, 0.6), v0 + rng.uniform(0.05, 0.6)
        exact = (kernels._disk_rect(u1, v1) - kernels._disk_rect(u0, v1)
                 - kernels._disk_rect(u1, v0) + kernels._disk_rect(u0, v0))
        uu, vv = u0 + (u1 - u0) * g[:, None], v0 + (v1 - v0) * g[None, :]
        grid = np.mean(uu ** 2 + vv ** 2 <= 1.0) * (u1 - u0) * (v1 - v0)
        assert exact == pytest.approx(grid, abs=2e-5)
    assert 4 * kernels._disk_rect(1.0, 1.0) == pytest.approx(math.pi, rel=1e-14)


def test_template_width_matches_its_second_moments():
    """template_sigma_mm (used by the detection threshold) against the rendered template."""
    nk, nj, ni = 1, 61, 61
    kk, jj, ii = (a.ravel().astype(np.int64) for a in np.meshgrid(
        np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij"))
    from pvcalc.methods._model_fit_solve import gaussian_taps
    taps = gaussian_taps(FWHM, PIXEL)
    out = np.empty(kk.size)
    kernels._render(kernels.CYLINDER, np.array([0.0, 0.0, 0.0, 0.5, 0.5]), 1, np.zeros(1),
                    -30 * PIXEL, -30 * PIXEL, PIXEL, PIXEL, nj, ni, taps, taps, 3.0,
                    kernels.BOX, 0.5, kk, jj, ii, out)
    y = (jj - 30) * PIXEL
    measured = math.sqrt(np.sum(out * y * y) / np.sum(out))
    expected = detect.template_sigma_mm("cylinder", 1.0, FWHM, (3.0, PIXEL, PIXEL), 3.0, "box",
                                        0.5)[1]
    assert measured == pytest.approx(expected, rel=0.03)


# --- detection ------------------------------------------------------------------------

def test_search_threshold_matches_the_maximum_of_a_smooth_1d_field():
    """P(max over a window > u) of a smooth Gaussian process (Monte Carlo) ~ alpha."""
    rng = np.random.default_rng(7)
    step, sigma, length = 0.05, 1.0, 12.0           # mm
    n_win = int(length / step)
    field = ndimage.gaussian_filter1d(rng.standard_normal((4000, n_win + 400)),
                                      sigma / math.sqrt(2) / step, axis=1)[:, 200:200 + n_win]
    field /= field.std()
    u = detect.search_threshold(0.05, length, (sigma / math.sqrt(2),))   # the kernel's sigma
    rate = float(np.mean(field.max(axis=1) > u))
    assert 0.035 < rate < 0.065          # 4000 windows: binomial SE 0.0034
    assert detect.search_threshold(0.01, length, (sigma,)) > u


def test_false_positive_rate_on_calcium_free_rois_of_white_noise():
    """Detection at alpha = 0.05 on 144 calcium-free ROIs: rate within 5% + 2.5 SE."""
    rng = np.random.default_rng(11)
    hits, n = 0, 0
    for _ in range(4):
        a = 40.0 + 20.0 * rng.standard_normal((11, 120, 120))
        scan = pvcalc.make_scan(a, (3.0, PIXEL, PIXEL), slice_thickness_mm=3.0,
                                psf_fwhm_mm=FWHM, slice_profile="trapezoid")
        c = (np.arange(6) - 2.5) * 9.0
        yy, xx = np.meshgrid(c, c, indexing="ij")
        rois = pd.DataFrame({"lesion": [f"r{i}" for i in range(yy.size)], "centre_z_mm": 15.0,
                             "centre_y_mm": yy.ravel() + 29.16, "centre_x_mm": xx.ravel() + 29.16,
                             "radius_mm": 3.5, "radius_z_mm": 4.2})
        res = quantify(scan, rois, calibration=CAL, methods=["model_fit"])
        # no volume in pure noise: nothing there is a resolved lesion
        assert res["volume_mm3"].isna().all()
        assert res["reason"].str.match("size not resolved|no calcium|fit failed").all()
        hits += int(res["detected"].sum())
        n += len(res)
    assert n == 144
    assert hits / n <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / n)


def test_cci_inserts_a_few_scans():
    """Simulated CCI replica, calcium_scoring: 3 and 5 mm masses within 12% per scan, the
    1 mm 800 mg/cm3 insert detected (the full acceptance is validation/model_fit_cci.py)."""
    import phantoms
    from phantoms.truth import lesion_table
    from pvcalc.calibration import rod_calibration
    from pvcalc.rois import truth_roi_labels

    ph = phantoms.cci_phantom()
    prot = phantoms.get_protocol("calcium_scoring")
    for index in range(2):
        scan, truth = phantoms.simulate_repeat(ph, prot, seed=5, index=index)
        cal = rod_calibration(scan, ph)
        res = quantify(scan, truth_roi_labels(scan, truth), calibration=cal,
                       methods=["model_fit"]).set_index("lesion")
        tt = lesion_table(truth).set_index("lesion")
        ratio = res["mass_mg"] / tt["mass_mg"]
        big = [n for n in tt.index if not n.startswith("small")]
        assert (ratio[big] - 1).abs().max() < 0.12, ratio[big].to_dict()
        assert res.loc["small_hd", "detected"]
        assert res.loc[big, "detected"].all()


# --- where the PSF comes from, parameters, bad input ------------------------------------

def _bump_scan(**attrs):
    a = np.full((9, 50, 50), 40.0)
    a[3:6, 22:28, 22:28] = 440.0
    return pvcalc.make_scan(a, (1.0, 0.5, 0.5), **attrs)


BUMP = pd.DataFrame({"lesion": ["a"], "centre_z_mm": [4.0], "centre_y_mm": [12.25],
                     "centre_x_mm": [12.25], "radius_mm": [4.5]})


def test_psf_from_params_else_attrs_else_reason():
    row = quantify(_bump_scan(), BUMP, calibration=CAL, methods=["model_fit"]).iloc[0]
    assert np.isnan(row["mass_mg"]) and np.isnan(row["volume_mm3"])
    assert row["reason"] == NO_PSF and "pvcalc.twin.measure_protocol" in NO_PSF
    row = quantify(_bump_scan(psf_fwhm_mm=0.1), BUMP, calibration=CAL,
                   methods=["model_fit"]).iloc[0]
    assert row["reason"].startswith("no slice profile")
    ok = quantify(_bump_scan(psf_fwhm_mm=0.1, slice_profile="box"), BUMP, calibration=CAL,
                  methods=["model_fit"]).iloc[0]
    given = quantify(_bump_scan(), BUMP, calibration=CAL, methods={"model_fit": {
        "psf_fwhm_mm": 0.1, "slice_profile": "box"}}).iloc[0]
    assert ok["psf_fwhm_mm"] == given["psf_fwhm_mm"] == 0.1
    assert given["mass_mg"] == pytest.approx(ok["mass_mg"], rel=1e-12)
    # a 3 x 3 x 3 mm cube of 400 HU: mass = 0.8 x 400 x 27 / 1000 within 2%
    assert given["mass_mg"] == pytest.approx(8.64, rel=0.02)
    bad = quantify(_bump_scan(psf_fwhm_mm="wide", slice_profile="box"), BUMP, calibration=CAL,
                   methods=["model_fit"]).iloc[0]
    assert bad["reason"].startswith("invalid psf_fwhm_mm")
    odd = quantify(_bump_scan(psf_fwhm_mm=1.0, slice_profile="lorentz"), BUMP,
                   calibration=CAL, methods=["model_fit"]).iloc[0]
    assert odd["reason"].startswith("unknown slice_profile 'lorentz'")


def test_parameters_are_validated_with_clear_errors():
    with pytest.raises(ValueError, match=r"shape must be one of \['cylinder', 'sphere', "
                                         r"'ellipsoid'\], got 'cube'"):
        ModelFitParams(shape="cube")
    with pytest.raises(ValueError, match=r"psf_fwhm_mm must be > 0(\.0)?, got -1"):
        ModelFitParams(psf_fwhm_mm=-1)
    with pytest.raises(TypeError, match="alpha must be a number"):
        ModelFitParams(alpha="small")
    with pytest.raises(ValueError, match="slice_profile must be one of"):
        ModelFitParams(slice_profile="flat")
    with pytest.raises(ValueError, match="detection_search must be one of"):
        ModelFitParams(detection_search="anywhere")
    assert "model_fit" in METHODS and METHODS["model_fit"].params is ModelFitParams


def test_bad_regions_give_rows_with_reasons():
    attrs = dict(psf_fwhm_mm=1.0, slice_profile="box")
    flat = pvcalc.make_scan(np.full((9, 50, 50), 40.0), (1.0, 0.5, 0.5), **attrs)
    row = quantify(flat, BUMP, calibration=CAL, methods=["model_fit"]).iloc[0]
    assert row["reason"].startswith("no signal") and row["mass_mg"] == 0.0
    assert not row["detected"]
    # an ROI too small for the model; an ROI of one value above the background: NaN, not 0
    vol = np.full((9, 40, 40), 40.0) + np.random.default_rng(0).normal(0, 10, (9, 40, 40))
    for box, start in (((4, 20, slice(20, 23)), "ROI too small: 3 voxel(s) for a model with "
                                                 "7 parameters"),
                       ((slice(3, 6), slice(19, 22), slice(19, 22)),
                        "constant ROI: all 27 voxels are 600.0 HU, above the background")):
        labels = np.zeros(vol.shape, dtype=np.int32)
        labels[box] = 1
        bright = vol.copy()
        bright[box] = 600.0
        row = quantify(pvcalc.make_scan(bright, (3.0, 0.5, 0.5), **attrs), labels,
                       calibration=CAL, methods=["model_fit"]).iloc[0]
        assert row["reason"].startswith(start) and np.isnan(row["mass_mg"])
    a = _bump_scan(**attrs).values.copy()
    a[4, 24, 24] = np.nan
    row = quantify(_bump_scan(**attrs).copy(data=a), BUMP, calibration=CAL,
                   methods=["model_fit"]).iloc[0]
    assert row["reason"].startswith("NaN in the ROI")
    # a lesion cut by the first slice of the scan
    b = np.full((9, 50, 50), 40.0)
    b[0:2, 22:28, 22:28] = 440.0
    edge = pvcalc.make_scan(b, (1.0, 0.5, 0.5), **attrs)
    roi = BUMP.assign(centre_z_mm=0.5)
    row = quantify(edge, roi, calibration=CAL, methods=["model_fit"],
                   region_params={"min_background_voxels": 10}).iloc[0]
    assert row["reason"].startswith("lesion at the scan border")
    assert np.isnan(row["mass_mg"]) and np.isnan(row["volume_mm3"])
    # a fit stopped before it converged
    scan = reference_scan("cylinder", CENTRE, (1.5, 1.5, 1.5), 300.0, dz=3.0, thickness=3.0,
                          profile="trapezoid", n=(7, 40, 40))
    noisy = scan.copy(data=scan.values + np.random.default_rng(2).normal(0, 20, scan.shape))
    roi = _roi(CENTRE, (1.5, 1.5, 1.5))
    row = quantify(noisy, roi, calibration=CAL, methods={"model_fit": {
        "max_nfev": 2, "detection_search": "roi"}}).iloc[0]
    assert row["reason"].startswith("fit failed: the fit did not converge")
    assert np.isnan(row["mass_mg"]) and not row["converged"] and not row["detected"]
    # only the full fit stopped: the mass comes from the fixed-size fit at the centroid
    row = quantify(noisy, roi, calibration=CAL, methods={"model_fit": {"max_nfev": 2}}).iloc[0]
    assert row["reason"].startswith("size not resolved") and not row["size_fitted"]
    assert np.isfinite(row["mass_mg"]) and np.isnan(row["volume_mm3"])


def test_without_calibration_the_volume_remains():
    row = quantify(_bump_scan(psf_fwhm_mm=0.1, slice_profile="box"), BUMP,
                   methods=["model_fit"]).iloc[0]
    assert np.isnan(row["mass_mg"]) and row["reason"].startswith("no calibration")
    assert row["volume_mm3"] == pytest.approx(27.0, rel=0.03)


def test_same_input_same_bytes():
    scan = reference_scan("cylinder", CENTRE, (1.5, 1.5, 1.5), 300.0, dz=3.0, thickness=3.0,
                          profile="trapezoid", n=(7, 40, 40))
    noisy = scan.copy(data=scan.values + np.random.default_rng(2).normal(0, 20, scan.shape))
    a = quantify(noisy, _roi(CENTRE, (1.5, 1.5, 1.5)), calibration=CAL, methods=["model_fit"])
    b = quantify(noisy, _roi(CENTRE, (1.5, 1.5, 1.5)), calibration=CAL, methods=["model_fit"])
    pd.testing.assert_frame_equal(a, b, check_exact=True)


# --- the solver against scipy's and numpy's own -----------------------------------------

def _noisy_problem(seed=3):
    """The fit problem of a 3 mm cylinder in correlated noise, built as ``model_fit``
    builds it, and its region."""
    from pvcalc.methods import RegionParams, ScanContext, _quantify, build_regions
    from pvcalc.methods import _model_fit_solve as solve

    semi = (1.5, 1.5, 1.5)
    scan = reference_scan("cylinder", CENTRE, semi, 300.0, dz=3.0, thickness=3.0,
                          profile="trapezoid", n=(7, 40, 40))
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).normal(0, 40, scan.shape),
                                    (0.0, 1.0, 1.0))
    scan = scan.copy(data=scan.values + noise)
    rp = RegionParams()
    lab, names, order, _, _ = _quantify._lesion_labels(scan, _roi(CENTRE, semi), None, rp)
    ctx = ScanContext(scan=scan, labels=lab, label_names=names, finite=True)
    region = build_regions(ctx, order, rp)[0]
    prob = solve.make_problem(region, "cylinder", FWHM, 3.0, "trapezoid", 0.5, 1)
    return prob, region


def test_correlated_noise_variance_matches_the_direct_double_sum():
    """sum_(u,v) w_u w_v rho(v - u) by FFT against the explicit sum over voxel pairs."""
    from pvcalc.methods import _model_fit_solve as solve
    from pvcalc.methods._noise import BLOCK_MM

    prob, region = _noisy_problem()
    rho = solve.noise_correlation(region, BLOCK_MM)
    assert rho.shape[0] == 3 and rho[tuple(n // 2 for n in rho.shape)] == 1.0
    assert np.count_nonzero(rho) > 100                     # correlated: many lags count
    w = np.random.default_rng(4).normal(size=(2, prob.n))
    lags = np.array(rho.shape) // 2
    pos = np.column_stack([prob.rk, prob.rj, prob.ri])
    d = pos[None, :, :] - pos[:, None, :]                 # v - u for every pair
    inside = np.all(np.abs(d) <= lags, axis=2)
    r = np.zeros(inside.shape)
    r[inside] = rho[tuple((d[inside] + lags).T)]
    direct = np.einsum("mu,uv,mv->m", w, r, w)
    fast = np.einsum("mzyx,zyx->m", solve.lag_autocorrelation(w, prob, tuple(lags)), rho)
    np.testing.assert_allclose(fast, direct, rtol=1e-10)


def test_noise_correlation_matches_the_mean_over_shell_voxel_pairs():
    """The masked FFT autocorrelation against the mean of r_u r_(u+l) over shell pairs."""
    from pvcalc.methods import _model_fit_solve as solve
    from pvcalc.methods._noise import BLOCK_MM

    _, region = _noisy_problem(seed=5)
    rho = solve.noise_correlation(region, BLOCK_MM)
    shell = region.background
    r = np.where(shell, region.hu - region.background_hu, 0.0)
    lags = np.array(rho.shape) // 2
    n = np.array(shell.shape)
    ref = np.zeros(rho.shape)
    for idx in np.ndindex(*rho.shape):
        lag = np.array(idx) - lags
        a = tuple(slice(max(0, -d), m - max(0, d)) for d, m in zip(lag, n))
        b = tuple(slice(max(0, d), m - max(0, -d)) for d, m in zip(lag, n))
        pairs = shell[a] & shell[b]
        if pairs.sum() >= solve.MIN_PAIRS:
            ref[idx] = float(np.sum((r[a] * r[b])[pairs])) / pairs.sum()
    ref /= ref[tuple(lags)]
    np.testing.assert_allclose(rho, ref, rtol=1e-9, atol=1e-12)


def test_fit_takes_the_steps_of_scipy_least_squares():
    """MINPACK called through leastsq: the iterates of least_squares(method="lm")."""
    from scipy import optimize

    from pvcalc.methods import _model_fit_solve as solve

    prob, region = _noisy_problem()
    g0 = np.clip(solve.initial_guess(prob, region, region.background_hu, FWHM),
                 *solve.bounds(prob, 2))
    q0, b0 = solve.linear_amplitude(prob, prob.template(g0), None)
    prior = (solve.prior_sizes("cylinder", 1.0), region.background_sd_hu / 3.0)
    free = [0, 1, 2, 3, 4]
    ours = solve.fit(prob, g0, free, q0, b0, prior=prior)
    obj = solve._Objective(prob, g0, free, None, prior)
    ref = optimize.least_squares(obj.residuals, obj.pack(g0, q0, b0), jac=obj.jacobian,
                                 method="lm", x_scale="jac", xtol=1e-6, ftol=1e-6, gtol=1e-6,
                                 max_nfev=200)
    g, q, b = obj.unpack(ref.x)
    assert ours["status"] == ref.status > 0
    assert (ours["nfev"], ours["njev"]) == (ref.nfev, ref.njev)
    np.testing.assert_allclose(ours["geometry"], g, rtol=1e-12)
    assert ours["q"] == pytest.approx(q, rel=1e-12) and ours["b"] == pytest.approx(b, rel=1e-12)


def test_fit_without_free_geometry_is_the_linear_least_squares_solution():
    from pvcalc.methods import _model_fit_solve as solve

    prob, region = _noisy_problem()
    g = np.array([*CENTRE, 0.5, 0.5])
    t = prob.template(g)
    design = np.column_stack([t, np.ones(prob.n)])
    (q, b), rss, *_ = np.linalg.lstsq(design, prob.y, rcond=None)
    res = solve.fit(prob, g, [], 1.0, 0.0, prior=(solve.prior_sizes("cylinder", 1.0), 1.0))
    assert res["q"] == pytest.approx(q, rel=1e-10) and res["b"] == pytest.approx(b, rel=1e-10)
    assert res["rss"] == pytest.approx(float(rss[0]), rel=1e-10)
    cov = res["s2"] * np.linalg.inv(design.T @ design)
    np.testing.assert_allclose(res["cov"], cov, rtol=1e-8)
    fixed = solve.fit(prob, g, [], 1.0, 0.0, prior=(solve.prior_sizes("cylinder", 1.0), 1.0),
                      fixed_background=40.0)
    assert fixed["b"] == 40.0
    assert fixed["q"] == pytest.approx(float(t @ (prob.y - 40.0) / (t @ t)), rel=1e-12)


def test_fit_refuses_an_roi_smaller_than_the_model():
    import dataclasses

    from pvcalc.methods import _model_fit_solve as solve

    prob, _ = _noisy_problem()
    tiny = dataclasses.replace(prob, rk=prob.rk[:3], rj=prob.rj[:3], ri=prob.ri[:3],
                               y=prob.y[:3])
    g = np.array([*CENTRE, 0.5, 0.5])
    with pytest.raises(ValueError, match="the ROI has 3 voxel"):
        solve.fit(tiny, g, [0, 1, 2, 3, 4], 1.0, 0.0,
                  prior=(solve.prior_sizes("cylinder", 1.0), 1.0))


def test_validation_script_runs_one_repeat(capsys):
    """validation/model_fit_cci.py (the acceptance measurement), one repeat, no files."""
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "validation"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))              # it imports methods_cci
    spec = importlib.util.spec_from_file_location("model_fit_cci", folder / "model_fit_cci.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--repeats", "1", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| large_hd (5 mm) |" in out and "calcium-free ROI of insert" in out
    assert "small_hd detected in >= 90% of scans" in out
