"""``pvcalc.twin``: the scanner measured on its QRM phantom scan, and its simulated twin.

Round trips: simulated scans of the physical CCI replica with non-default protocols are
measured by :func:`pvcalc.twin.measure_protocol`, which sees only the image (and the
layout located in it); the results are compared with the values set in the simulated
protocol. The pieces are checked against analytic truth: a Gaussian-blurred disc built
with numpy on a fine grid, white and moving-average noise, the Parseval identity.
The full acceptance grid is ``validation/measure_protocol.py``.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

import phantoms
import pvcalc
from pvcalc._twin_edge import GAUSSIAN_MTF10_OVER_MTF50, disc_profile, measure_edge
from pvcalc._twin_noise import expected_rings, measure_noise, place_rois, twin_table
from pvcalc.twin import REPORT_COLUMNS, measure_protocol, plot_mtf, plot_nps

#: Round-trip corners: protocol overrides of calcium_scoring (matrix 256: a 125 mm field
#: holds the 100 mm insert). Tolerances of the task: PSF FWHM 10%, noise SD 5%, NPS peak
#: 10%, HU per mg HA 2%.
CORNERS = {
    "sharp_quiet": dict(psf_fwhm_mm=0.8, noise_sd_hu=10.0, hu_per_mg_ha=1.5),
    "soft_peak_moved": dict(psf_fwhm_mm=2.0, noise_sd_hu=10.0, hu_per_mg_ha=1.1,
                            nps_peak_freq_per_mm=0.30),
    "noisy": dict(psf_fwhm_mm=1.3, noise_sd_hu=40.0, hu_per_mg_ha=1.38),
}


def _scan(seed=11, rotation_deg=25.0, centre_yx_mm=(5.0, -8.0), matrix=256, **protocol):
    phantom = phantoms.cci_phantom(rotation_deg=rotation_deg, centre_yx_mm=centre_yx_mm,
                                   z_extent_mm=(-4.5, 49.5))
    p = phantoms.get_protocol("calcium_scoring", matrix=matrix, **protocol)
    scan, _ = phantoms.simulate(phantom, p, seed=seed, fraction_maps=False)
    return scan, p


@pytest.fixture(scope="module")
def measured():
    """{corner: (true protocol, measured protocol, report, scan)}; layouts in ``LAYOUTS``."""
    from pvcalc.qrm import locate_cci

    out = {}
    for i, (name, kw) in enumerate(CORNERS.items()):
        scan, p = _scan(seed=11 + i, rotation_deg=25.0 + 100.0 * i, **kw)
        LAYOUTS[name] = locate_cci(scan)
        protocol, report = measure_protocol(scan, LAYOUTS[name], n_boot=30)
        out[name] = (p, protocol, report, scan)
    return out


LAYOUTS = {}


def _v(report, quantity, column="value"):
    return float(report.set_index("quantity").loc[quantity, column])


# --- round trips --------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CORNERS))
def test_noise_sd_and_nps_peak_round_trip(measured, name):
    truth, protocol, report, _ = measured[name]
    assert _v(report, "noise_sd_hu") == pytest.approx(truth.noise_sd_hu, rel=0.05)
    assert protocol.noise_sd_hu == _v(report, "noise_sd_hu")
    assert _v(report, "nps_peak_freq_per_mm") == pytest.approx(truth.nps_peak_per_mm, rel=0.10)


@pytest.mark.parametrize("name", ["sharp_quiet", "soft_peak_moved"])
def test_psf_and_hu_per_mg_round_trip(measured, name):
    truth, protocol, report, _ = measured[name]
    assert _v(report, "psf_fwhm_mm") == pytest.approx(truth.psf_fwhm_mm, rel=0.10)
    assert protocol.psf_fwhm_mm == _v(report, "psf_fwhm_mm")
    assert _v(report, "hu_per_mg_ha") == pytest.approx(truth.hu_per_mg_ha, rel=0.02)
    assert protocol.hu_per_mg_ha == _v(report, "hu_per_mg_ha")
    assert _v(report, "psf_non_gaussian") == 0.0


def test_at_40_hu_psf_and_hu_per_mg_lie_within_three_standard_errors(measured):
    # one scan's rod edge and rod means are noise-limited at 40 HU (the spread over
    # scans is in validation/measure_protocol.md); the errors must say so honestly
    truth, _, report, _ = measured["noisy"]
    for quantity, value in (("psf_fwhm_mm", truth.psf_fwhm_mm),
                            ("hu_per_mg_ha", truth.hu_per_mg_ha)):
        se = _v(report, quantity, "se")
        assert 0 < se < 0.1 * value
        assert abs(_v(report, quantity) - value) < 3.0 * se


def test_grid_insert_body_and_report_shape(measured):
    truth, protocol, report, scan = measured["sharp_quiet"]
    assert tuple(report.columns) == REPORT_COLUMNS
    assert _v(report, "insert_body_hu") == pytest.approx(75.0, abs=1.0)
    assert (protocol.pixel_mm, protocol.matrix, protocol.slice_thickness_mm,
            protocol.increment_mm, protocol.kvp) == (0.49, 256, 3.0, 3.0, 120.0)
    assert protocol.nps_radial is not None and protocol.nps_peak_freq_per_mm is None
    assert report["se"].notna().sum() >= 10
    assert np.isfinite(report["value"]).all()


def test_the_twin_protocol_reproduces_the_measured_noise_texture(measured):
    """A noise field drawn with the measured protocol, measured the same way, gives the same
    SD, NPS peak and lag-1 correlation (the NPS table is corrected for the ROI window)."""
    truth, protocol, report, scan = measured["noisy"]
    field = phantoms.noise_field((8, 256, 256), protocol, seed=5)
    rois = [(k, j, i) for k in range(8) for j in (0, 64, 128, 192) for i in (0, 64, 128, 192)]
    axis = np.arange(256) * protocol.pixel_mm
    again = measure_noise(field, rois, pixel_mm=protocol.pixel_mm, side_px=64, z_mm=np.arange(8.0),
                          y_mm=axis, x_mm=axis, n_boot=0)
    assert again.sd_hu == pytest.approx(_v(report, "noise_sd_hu"), rel=0.03)
    assert again.peak_per_mm == pytest.approx(_v(report, "nps_peak_freq_per_mm"), rel=0.06)
    assert again.lag1 == pytest.approx(_v(report, "lag1_autocorrelation"), abs=0.01)


# --- the rod edge against analytic truth ------------------------------------------------------

def _blurred_disc_image(radius_mm, sigma_mm, pixel_mm, n, centre=(0.3, -0.2), psf=None, sub=8):
    """A disc of 1 on 0, blurred by a Gaussian (or ``psf(fine_image, fine_pixel)``) on a
    grid ``sub`` times finer, then averaged over each pixel (numpy and scipy only)."""
    fine = pixel_mm / sub
    c = (np.arange(n * sub) - 0.5 * (n * sub - 1)) * fine
    yy, xx = np.meshgrid(c, c, indexing="ij")
    disc = ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius_mm ** 2).astype(float)
    img = ndimage.gaussian_filter(disc, sigma_mm / fine, mode="nearest") if psf is None \
        else psf(disc, fine)
    img = img.reshape(n, sub, n, sub).mean(axis=(1, 3))
    axis = (np.arange(n) - 0.5 * (n - 1)) * pixel_mm
    return img, axis


def test_disc_profile_equals_a_numerical_integral_over_the_disc():
    # P(r) = integral over the disc's chords x of phi_s(x - r) * (2 Phi(sqrt(R^2 - x^2) / s) - 1)
    from scipy import integrate

    def reference(r, radius, s):
        def chord(x):
            h = math.sqrt(max(radius ** 2 - x ** 2, 0.0))
            gauss = math.exp(-0.5 * ((x - r) / s) ** 2) / (s * math.sqrt(2.0 * math.pi))
            return gauss * math.erf(h / (s * math.sqrt(2.0)))
        return integrate.quad(chord, -radius, radius, points=[r], limit=200)[0]

    for radius, s in ((5.0, 0.6), (10.0, 0.3), (2.5, 1.2)):
        for r in (0.0, 0.5 * radius, radius - s, radius, radius + 0.7 * s, radius + 3 * s):
            assert disc_profile(r, radius, s) == pytest.approx(reference(r, radius, s), abs=1e-6)


@pytest.mark.parametrize("sigma", [0.35, 0.85])
def test_edge_fit_recovers_a_gaussian_blur_and_its_mtf(sigma):
    pixel = 0.5
    img, axis = _blurred_disc_image(8.0, sigma, pixel, 64)
    values = np.stack([200.0 * img + 70.0] * 2)
    res = measure_edge(values, [0, 1], axis, axis, centre_yx_mm=(1.0, 0.5), radius_mm=7.5,
                       pixel_mm=pixel, n_boot=0)
    # the pixel average adds a box of variance p^2 / 12 to the edge
    assert res.sigma_mm == pytest.approx(math.sqrt(sigma ** 2 + pixel ** 2 / 12), rel=0.02)
    assert res.radius_mm == pytest.approx(8.0, abs=0.02)
    assert res.centre_yx_mm == pytest.approx((0.3, -0.2), abs=0.01)
    assert (res.inside_hu, res.outside_hu) == pytest.approx((270.0, 70.0), abs=0.5)
    expected50 = math.sqrt(math.log(2) / (2 * math.pi ** 2 * res.sigma_mm ** 2))
    assert res.mtf50_per_mm == pytest.approx(expected50, rel=0.03)
    assert res.mtf10_over_mtf50 == pytest.approx(GAUSSIAN_MTF10_OVER_MTF50, rel=0.05)
    assert res.non_gaussian_reasons == []


def test_a_two_gaussian_psf_is_flagged_non_gaussian():
    def psf(disc, fine):
        return (0.6 * ndimage.gaussian_filter(disc, 0.3 / fine, mode="nearest")
                + 0.4 * ndimage.gaussian_filter(disc, 1.8 / fine, mode="nearest"))

    img, axis = _blurred_disc_image(8.0, None, 0.5, 64, psf=psf)
    values = np.stack([200.0 * img + 70.0] * 2)
    res = measure_edge(values, [0, 1], axis, axis, centre_yx_mm=(0.3, -0.2), radius_mm=8.0,
                       pixel_mm=0.5, n_boot=0)
    assert res.non_gaussian_reasons


# --- noise against analytic truth ------------------------------------------------------------

def _grid_rois(nz, n, side):
    return [(k, j, i) for k in range(nz) for j in range(0, n - side + 1, side)
            for i in range(0, n - side + 1, side)]


def test_white_noise_has_a_flat_nps_and_no_correlation():
    rng = np.random.default_rng(0)
    field = rng.normal(0.0, 10.0, (4, 256, 256))
    axis = np.arange(256) * 0.5
    res = measure_noise(field, _grid_rois(4, 256, 64), pixel_mm=0.5, side_px=64,
                        z_mm=np.arange(4.0), y_mm=axis, x_mm=axis, detrend="mean", n_boot=5)
    assert res.sd_hu == pytest.approx(10.0, rel=0.01)
    assert abs(res.lag1) < 0.01
    nps = res.nps["nps_hu2_mm2"].to_numpy()[1:33]
    assert nps.mean() == pytest.approx(100.0 * 0.25, rel=0.02)   # sigma^2 p^2
    assert res.mean_hu == pytest.approx(0.0, abs=0.2)


def test_nps_integrates_to_the_variance_and_lag1_follows_a_moving_average():
    rng = np.random.default_rng(1)
    white = rng.normal(0.0, 10.0, (4, 256, 257))
    field = 0.5 * (white[:, :, 1:] + white[:, :, :-1])      # lag-1 correlation 0.5 along x
    axis = np.arange(256) * 0.5
    rois = _grid_rois(4, 256, 64)
    res = measure_noise(field, rois, pixel_mm=0.5, side_px=64, z_mm=np.arange(4.0), y_mm=axis,
                        x_mm=axis, detrend="mean", n_boot=0)
    assert res.lag1 == pytest.approx(0.25, abs=0.01)           # mean of x (0.5) and y (0)
    assert res.sd_hu == pytest.approx(10.0 / math.sqrt(2), rel=0.02)
    # Parseval: the 2D NPS summed over the ROI's frequency grid (df = 1 / (N p)) is the
    # variance of the (mean-removed) ROI
    roi = field[0, :64, :64] - field[0, :64, :64].mean()
    ps = np.abs(np.fft.fft2(roi)) ** 2 * 0.25 / 64 ** 2
    assert ps.sum() / (64 * 0.5) ** 2 == pytest.approx(roi.var(), rel=1e-10)


def test_twin_table_is_a_fixed_point_of_the_roi_estimator():
    f = np.arange(46) / (64 * 0.49)
    measured = f * np.exp(-f ** 2 / (2 * 0.2 ** 2))
    measured[0] = 0.0
    table = twin_table(f, measured, 64, 0.49)
    predicted = expected_rings(f, table, 64, 0.49)
    predicted, target = predicted[1:33] / predicted[1:33].max(), measured[1:33] / measured[1:33].max()
    assert np.max(np.abs(predicted - target)) < 0.01


def test_rois_lie_inside_the_disc_and_clear_of_exclusions():
    axis = (np.arange(256) - 127.5) * 0.5
    excl = [((0.0, 20.0), 12.0)]
    rois = place_rois(axis, axis, centre_yx_mm=(0.0, 0.0), radius_mm=46.0, side_px=32,
                      exclude=excl)
    assert len(rois) >= 4
    for j, i in rois:
        ys, xs = axis[j:j + 32], axis[i:i + 32]
        corners = [(y, x) for y in (ys[0] - 0.25, ys[-1] + 0.25) for x in (xs[0] - 0.25,
                                                                            xs[-1] + 0.25)]
        assert max(math.hypot(y, x) for y, x in corners) <= 46.0 + 1e-9
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        assert np.hypot(yy - 0.0, xx - 20.0).min() >= 12.0 - 0.5


# --- API, determinism, errors ----------------------------------------------------------------

def test_same_seed_same_report_and_figures(measured):
    *_, scan = measured["sharp_quiet"]
    layout = LAYOUTS["sharp_quiet"]
    a = measure_protocol(scan, layout, n_boot=5, seed=3)[1]
    b = measure_protocol(scan, layout, n_boot=5, seed=3)[1]
    pd.testing.assert_frame_equal(a, b)
    both = pd.concat([a, b])           # reports concatenate (their curves compare by identity)
    assert len(both) == 2 * len(a)
    for plot in (plot_mtf, plot_nps):
        fig = plot(a)
        assert len(fig.axes) == 1 and fig.axes[0].lines
    with pytest.raises(TypeError, match="report DataFrame of pvcalc.twin.measure_protocol"):
        plot_mtf(pd.DataFrame({"quantity": ["noise_sd_hu"], "value": [20.0]}))


def test_kvp_from_the_scan_or_the_argument(measured):
    *_, scan = measured["sharp_quiet"]
    unknown = scan.copy()
    unknown.attrs["kvp_source"] = "default"
    _, report = measure_protocol(unknown, LAYOUTS["sharp_quiet"], n_boot=0)
    assert "does not record its tube voltage" in report.set_index("quantity").loc["kvp", "method"]
    protocol, report = measure_protocol(unknown, LAYOUTS["sharp_quiet"], n_boot=0, kvp=100.0)
    assert protocol.kvp == 100.0 and _v(report, "kvp") == 100.0


def test_bad_inputs_say_what_is_wrong(measured):
    *_, scan = measured["sharp_quiet"]
    with pytest.raises(TypeError, match="pvcalc.qrm.CCILayout"):
        measure_protocol(scan, layout="centre")
    import dataclasses

    layout = LAYOUTS["sharp_quiet"]
    no_rods = dataclasses.replace(layout, rods=layout.rods.iloc[:0])
    with pytest.raises(ValueError, match="no 'ha200' rod"):
        measure_protocol(scan, no_rods)
    with pytest.raises(ValueError, match="detrend must be one of"):
        measure_protocol(scan, layout, detrend="linear")
    with pytest.raises(ValueError, match="n_boot must be an integer >= 0"):
        measure_protocol(scan, layout, n_boot=-1)
    stretched = scan.assign_coords(x=scan.x.values * 1.2)
    with pytest.raises(ValueError, match="not square"):
        measure_protocol(stretched, layout)
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        pvcalc.twin.simulate_twin(scan, layout=layout, repeats=0)


# --- the twin on the command line ---------------------------------------------------------------

def test_cli_twin_writes_the_comparison_of_a_small_scan(tmp_path, capsys):
    from pvcalc.cli import main

    scan, _ = _scan(seed=4, rotation_deg=200.0, centre_yx_mm=(0.0, 0.0), noise_sd_hu=20.0,
                    hu_per_mg_ha=1.4)
    pvcalc.write_scan(scan, tmp_path / "scan.nii.gz")
    out = tmp_path / "twin"
    code = main(["twin", str(tmp_path / "scan.nii.gz"), "--repeats", "2", "--out", str(out),
                 "--methods", "clinical,integrated"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "twin: 2 scans analysed, 0 failed" in printed.out
    comparison = pd.read_csv(out / "twin.csv")
    assert set(comparison["method"]) == {"clinical", "integrated"}
    assert set(comparison["insert"]) == {f"{s}_{d}" for s in ("large", "medium", "small")
                                         for d in ("hd", "md", "ld")}
    assert (comparison["n_twin"] == 2).all()
    assert comparison.loc[comparison["quantity"] == "volume_mm3", "nominal"].notna().all()
    noise = pd.read_csv(out / "twin_noise.csv").set_index("quantity")
    # the twin reproduces what it was built from
    assert noise.loc["noise_sd_hu", "twin_mean"] == pytest.approx(noise.loc["noise_sd_hu", "real"],
                                                                  rel=0.05)
    assert noise.loc["hu_per_mg_ha", "twin_mean"] == pytest.approx(
        noise.loc["hu_per_mg_ha", "real"], rel=0.02)
    assert noise.loc["hu_per_mg_ha", "real"] == pytest.approx(1.4, rel=0.02)
    protocol = phantoms.Protocol(**json.loads((out / "protocol.json").read_text()))
    assert protocol.hu_per_mg_ha == pytest.approx(1.4, rel=0.02)
    report = (out / "report.md").read_text()
    assert "# Scanner twin of" in report and "![real vs twin](twin.png)" in report
    assert (out / "twin.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["twin", str(tmp_path / "none.nii"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("pvcalc: error:")


def test_cli_twin_help_lists_its_options():
    run = subprocess.run([sys.executable, "-m", "pvcalc.cli", "twin", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0
    for option in ("--repeats", "--out", "--seed", "--methods", "--kvp", "--extension-ring"):
        assert option in run.stdout
