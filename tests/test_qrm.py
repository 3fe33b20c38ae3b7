"""pvcalc.qrm.locate_cci: the QRM calcification insert found in scans whose layout is known.

Two kinds of scans with known truth: synthetic ones rendered here with numpy (a 75 HU
disc of 100 mm, nine cylinders by exact area fractions and slice overlaps, rods of 310
and 40 HU in their own section, Gaussian blur and noise), whose geometry is written
independently of the simulator, and scans of :func:`phantoms.cci_phantom`. The full
acceptance run (100 scans) is ``validation/locate_cci.py``.
"""

import io
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

import phantoms
import pvcalc
from phantoms.library import CCI_INSERTS
from pvcalc import _qrm_geometry as geo
from pvcalc.cli import main
from pvcalc.qrm import CCILayout, locate_cci, nominal_inserts

# --- a synthetic scan of the physical insert --------------------------------------------

#: HU per mg HA/cm3 of the synthetic scans (any value in the 1.1-1.4 of 120 kVp).
K_HU = 1.3
SPOKE = {"large": (5.0, 37.5), "medium": (3.0, 25.0), "small": (1.0, 12.5)}
DENS = {"hd": 800.0, "md": 400.0, "ld": 200.0}


def _area_fraction(yc, xc, r, y, x, ns=4):
    """Share of every pixel covered by the disc (yc, xc, r), by ns x ns sub-samples."""
    dy, dx = y[1] - y[0], x[1] - x[0]
    off = (np.arange(ns) + 0.5) / ns - 0.5
    yy = (y[:, None] + off[None, :] * dy).ravel()
    xx = (x[:, None] + off[None, :] * dx).ravel()
    inside = ((yy[:, None] - yc) ** 2 + (xx[None, :] - xc) ** 2) <= r * r
    return inside.reshape(y.size, ns, x.size, ns).mean(axis=(1, 3))


def synthetic_cci(*, rotation_deg=90.0, centre_yx=(0.0, 0.0), mirror=False, noise_sd=20.0,
                  seed=0, pixel=0.6, matrix=256, thickness=3.0, insert_z=0.0,
                  rod_z=(30.0, 45.0), rods=True, inserts=None, z_extent=(-9.0, 51.0)):
    """(scan, truth table) of the physical insert: spokes hd, md, ld at rotation + 0, 120,
    240 degrees (counter-clockwise as displayed; clockwise when ``mirror``)."""
    nz = int(round((z_extent[1] - z_extent[0]) / thickness))
    z = z_extent[0] + thickness * (np.arange(nz) + 0.5)
    y = (np.arange(matrix) - 0.5 * (matrix - 1)) * pixel
    x = y.copy()
    cy, cx = centre_yx

    def overlap(z0, z1):   # box slice profile: share of each slice inside [z0, z1]
        return np.clip(np.minimum(z1, z + thickness / 2) - np.maximum(z0, z - thickness / 2),
                       0, None) / thickness

    yg, xg = np.meshgrid(y, x, indexing="ij")
    base = np.where((yg / 100.0) ** 2 + (xg / 150.0) ** 2 <= 1.0, 40.0, -1000.0)
    disc = _area_fraction(cy, cx, 50.0, y, x, ns=2)
    vol = np.repeat((base * (1 - disc) + 75.0 * disc)[None], nz, axis=0)
    truth = []
    for k, dens in enumerate(DENS):
        angle = math.radians(rotation_deg + (-1 if mirror else 1) * 120.0 * k)
        for size, (d, r) in SPOKE.items():
            name = f"{size}_{dens}"
            if inserts is not None and name not in inserts:
                continue
            yi, xi = cy - r * math.sin(angle), cx + r * math.cos(angle)
            vol += (K_HU * DENS[dens] * overlap(insert_z - d / 2, insert_z + d / 2)[:, None, None]
                    * _area_fraction(yi, xi, d / 2, y, x)[None])
            truth.append((name, insert_z, yi, xi))
    if rods:
        w = overlap(*rod_z)[:, None, None]
        vol += (310.0 - 75.0) * w * _area_fraction(cy, cx, 10.0, y, x, ns=2)[None]
        vol += (40.0 - 75.0) * w * _area_fraction(cy, cx + 26.0, 10.0, y, x, ns=2)[None]
    sigma = 1.3 / 2.3548 / pixel
    vol = ndimage.gaussian_filter(vol, (0, sigma, sigma), mode="nearest")
    if noise_sd > 0:
        noise = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal(vol.shape),
                                        (0, 0.7, 0.7))
        vol += noise * (noise_sd / noise.std())
    scan = pvcalc.make_scan(vol.astype(np.float32), (thickness, pixel, pixel),
                            origin_mm=(z[0], y[0], x[0]))
    table = pd.DataFrame(truth, columns=["lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm"])
    return scan, table


def _errors_mm(layout, truth):
    """3D distance of every insert's located centre from its true one (Series by lesion)."""
    got = layout.inserts.set_index("lesion")
    want = truth.set_index("lesion")
    return np.sqrt(sum((got[f"centre_{a}_mm"] - want[f"centre_{a}_mm"]).dropna() ** 2
                       for a in "zyx")).dropna()


LARGE_MEDIUM = [n for n, d, _ in CCI_INSERTS if d > 1.0]


@pytest.fixture(scope="module")
def synthetic():
    scan, truth = synthetic_cci(rotation_deg=37.0, centre_yx=(12.0, -20.0), seed=1)
    return scan, truth, locate_cci(scan)


# --- geometry ---------------------------------------------------------------------------


def test_geometry_is_the_simulators():
    assert geo.INSERTS == CCI_INSERTS
    for rotation in (0.0, 77.0):
        p = phantoms.cci_phantom(rotation_deg=rotation, centre_yx_mm=(5.0, -3.0))
        for lesion in p.lesions:
            size, dens = lesion.name.split("_")
            _, y, x = lesion.shape.centre_mm
            assert math.hypot(y - 5.0, x + 3.0) == pytest.approx(geo.SPOKE_RADIUS_MM[size])
            if lesion.name == "large_hd":   # the rotation convention of phantoms.cci_phantom
                assert geo.angle_deg((5.0, -3.0), (y, x)) == pytest.approx(90.0 + rotation)


def test_rigid_fit_recovers_a_known_motion():
    model = geo.layout_points((0.0, 0.0), 0.0)
    truth = geo.layout_points((7.0, -4.0), 133.0)
    centre, angle, rms = geo.fit_rigid(model, truth)
    assert np.allclose(centre, (7.0, -4.0)) and angle % 360 == pytest.approx(133.0)
    assert rms == pytest.approx(0.0, abs=1e-9)
    # weights: a point of weight 0 does not pull the fit
    moved = truth.copy()
    moved[0] += 5.0
    centre, angle, _ = geo.fit_rigid(model, moved, weights=[0, 1, 1, 1, 1, 1])
    assert np.allclose(centre, (7.0, -4.0)) and angle % 360 == pytest.approx(133.0)


def test_nominal_inserts_are_pi_d3_over_4():
    table = nominal_inserts().set_index("lesion")
    assert table.loc["medium_ld", "volume_mm3"] == pytest.approx(math.pi * 27 / 4)
    assert table.loc["large_hd", "mass_mg"] == pytest.approx(800 * math.pi * 125 / 4 / 1000)


# --- synthetic scans --------------------------------------------------------------------


def test_synthetic_scan_is_located(synthetic):
    scan, truth, layout = synthetic
    assert isinstance(layout, CCILayout)
    assert layout.centre_yx_mm == pytest.approx((12.0, -20.0), abs=0.3)
    assert layout.rotation_deg == pytest.approx(37.0, abs=1.0)
    assert layout.insert_z_mm == pytest.approx(0.0, abs=0.5)
    assert layout.insert_body_hu == pytest.approx(75.0, abs=3.0)
    err = _errors_mm(layout, truth)
    assert (err[LARGE_MEDIUM] < 1.0).all(), err
    assert layout.inserts.set_index("lesion").loc[LARGE_MEDIUM, "found"].all()
    assert layout.inserts["lesion"].tolist() == [n for n, _, _ in CCI_INSERTS]
    assert layout.inserts["confidence"].between(0, 1).all()


def test_synthetic_rods_and_calibration(synthetic):
    scan, _, layout = synthetic
    rods = layout.rods.set_index("rod")
    assert list(rods.index) == ["ha200", "water"]
    assert rods.loc["ha200", ["centre_y_mm", "centre_x_mm"]].tolist() == pytest.approx(
        [12.0, -20.0], abs=0.5)
    assert rods.loc["water", ["centre_y_mm", "centre_x_mm"]].tolist() == pytest.approx(
        [12.0, 6.0], abs=0.5)
    assert rods["radius_mm"].tolist() == pytest.approx([10.0, 10.0], abs=0.5)
    assert rods["z_lo_mm"].tolist() == pytest.approx([30.0, 30.0], abs=1.0)
    assert rods["z_hi_mm"].tolist() == pytest.approx([45.0, 45.0], abs=1.0)
    assert rods["mean_hu"].tolist() == pytest.approx([310.0, 40.0], abs=4.0)
    cal = layout.calibration(scan)
    assert cal.c_ha_mg_cm3_per_hu == pytest.approx(200.0 / (310.0 - 40.0), rel=0.03)
    water, ha = layout.rod_rois()
    assert len(water) == 3 and water[1] == pytest.approx(rods.loc["water", "radius_mm"] - 2.0)
    assert 30.0 + 2.0 + 1.5 - 1.0 <= ha[0][0] - ha[2] / 2 and ha[0][0] + ha[2] / 2 <= 45.0


@pytest.mark.parametrize("kwargs", [
    dict(rotation_deg=250.0, centre_yx=(-25.0, 10.0), mirror=True, noise_sd=40.0, seed=2),
    dict(rotation_deg=3.0, centre_yx=(0.0, 28.0), thickness=1.5, insert_z=0.4, seed=3),
])
def test_any_rotation_mirror_offset_and_noise(kwargs):
    scan, truth = synthetic_cci(**kwargs)
    layout = locate_cci(scan)
    assert (_errors_mm(layout, truth)[LARGE_MEDIUM] < 1.0).all()
    assert ((layout.rotation_deg - kwargs["rotation_deg"] + 180) % 360 - 180) == pytest.approx(
        0.0, abs=1.5)
    assert len(layout.rods) == 2


# --- simulated scans (acceptance, small) --------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_simulated_scans_are_located(seed):
    rng = np.random.default_rng(seed)
    rotation = float(rng.uniform(0, 360))
    r, a = 30.0 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
    centre = (r * math.sin(a), r * math.cos(a))
    p = phantoms.cci_phantom(rotation_deg=rotation, centre_yx_mm=centre,
                             extension_ring=bool(seed % 2))
    protocol = phantoms.get_protocol(("calcium_scoring", "low_dose_chest")[seed // 3],
                                     noise_sd_hu=float(rng.uniform(10, 40)), matrix=256,
                                     pixel_mm=0.7)
    scan, truth = phantoms.simulate_repeat(p, protocol, seed=seed, index=0, fraction_maps=False)
    layout = locate_cci(scan)
    true = phantoms.lesion_table(truth)[["lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm"]]
    err = _errors_mm(layout, true)
    assert (err[LARGE_MEDIUM] < 1.0).all(), err
    rods = layout.rods.set_index("rod")
    for index, name in enumerate(("ha200", "water")):
        where = (scan.attrs[f"rod_{index}_centre_y_mm"], scan.attrs[f"rod_{index}_centre_x_mm"])
        assert math.hypot(rods.loc[name, "centre_y_mm"] - where[0],
                          rods.loc[name, "centre_x_mm"] - where[1]) < 1.0


def test_compact_replica_with_rods_in_the_insert_plane():
    p = phantoms.cci_phantom(geometry="compact")
    protocol = phantoms.get_protocol("calcium_scoring", matrix=256, pixel_mm=0.6)
    scan, truth = phantoms.simulate(p, protocol, seed=4, fraction_maps=False)
    layout = locate_cci(scan)
    true = phantoms.lesion_table(truth)[["lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm"]]
    assert (_errors_mm(layout, true)[LARGE_MEDIUM] < 1.0).all()
    assert layout.rotation_deg == pytest.approx(90.0, abs=1.0)
    assert layout.insert_body_hu == pytest.approx(40.0, abs=3.0)   # the body's tissue
    rods = layout.rods.set_index("rod")
    assert rods["radius_mm"].tolist() == pytest.approx([5.0, 5.0], abs=0.5)
    assert rods.loc["ha200", "mean_hu"] == pytest.approx(p.rods[0].hu_at(120.0), abs=5.0)
    assert rods.loc["water", "mean_hu"] == pytest.approx(0.0, abs=5.0)


# --- refusals -----------------------------------------------------------------------------


def test_a_water_cylinder_is_refused():
    z, y, x = np.meshgrid(np.arange(8) * 3.0, *(2 * [np.arange(256) * 0.6 - 76.5]),
                          indexing="ij")
    values = np.where(y ** 2 + x ** 2 < 70.0 ** 2, 0.0, -1000.0)
    values += np.random.default_rng(0).normal(0.0, 20.0, values.shape)
    with pytest.raises(ValueError, match=r"found \d+ compact bright spots .* the QRM cardiac "
                                         r"calcification insert has six 3 and 5 mm"):
        locate_cci(pvcalc.make_scan(values, (3.0, 0.6, 0.6)))


def test_three_inserts_are_refused():
    scan, _ = synthetic_cci(inserts=("large_hd", "medium_hd", "small_hd"), seed=5)
    with pytest.raises(ValueError, match="at least 4 of the 6 are needed"):
        locate_cci(scan)


def test_a_patient_is_refused():
    patient = phantoms.virtual_patient(4, risk_category=4, motion=False)
    protocol = phantoms.get_protocol("calcium_scoring", matrix=256, pixel_mm=0.7)
    scan, _ = phantoms.simulate(patient, protocol, seed=0, fraction_maps=False)
    with pytest.raises(ValueError, match="QRM cardiac calcification insert has six"):
        locate_cci(scan)


def test_missing_rods_are_refused_or_allowed():
    scan, truth = synthetic_cci(rods=False, seed=6, z_extent=(-9.0, 12.0))
    with pytest.raises(ValueError, match="found no calibration 200 mg HA/cm3 rod and no "
                                         "water-equivalent rod.*require_rods=False"):
        locate_cci(scan)
    layout = locate_cci(scan, require_rods=False)
    assert len(layout.rods) == 0 and list(layout.rods.columns) == list(pvcalc.qrm.ROD_COLUMNS)
    assert (_errors_mm(layout, truth)[LARGE_MEDIUM] < 1.0).all()
    with pytest.raises(ValueError, match="the layout has no water and no ha200 rod"):
        layout.calibration(scan)


def test_bad_arguments():
    with pytest.raises(TypeError, match="xarray.DataArray"):
        locate_cci(np.zeros((3, 10, 10)))
    scan, _ = synthetic_cci(seed=7, z_extent=(-6.0, 6.0), rods=False, matrix=200)
    with pytest.raises(TypeError, match="require_rods must be True or False"):
        locate_cci(scan, require_rods="no")


# --- ROIs, quantify, plot -----------------------------------------------------------------


def test_rois_default_rule_and_options(synthetic):
    _, _, layout = synthetic
    rois = layout.rois()
    assert list(rois.columns) == ["lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm",
                                  "radius_mm", "radius_z_mm"]
    radius = dict(zip(rois["lesion"], rois["radius_mm"]))
    assert (radius["large_ld"], radius["medium_ld"], radius["small_ld"]) == (5.0, 4.0, 3.0)
    assert (rois["radius_z_mm"] - rois["radius_mm"]).tolist() == pytest.approx([2.25] * 9)
    assert layout.rois(radius_mm=2.0)["radius_mm"].eq(2.0).all()
    mapped = layout.rois(radius_mm={"large": 6, "medium": 4.5, "small": 2})
    assert dict(zip(mapped["lesion"], mapped["radius_mm"]))["medium_hd"] == 4.5
    with pytest.raises(ValueError, match="radius_mm must be a positive radius"):
        layout.rois(radius_mm=0.0)
    with pytest.raises(ValueError, match="missing \\['small'\\]"):
        layout.rois(radius_mm={"large": 6, "medium": 4})
    with pytest.raises(ValueError, match="leaves no ROI in the water rod"):
        layout.rod_rois(margin_mm=12.0)


def test_rois_feed_quantify(synthetic):
    scan, _, layout = synthetic
    result = pvcalc.quantify(scan, layout.rois(), methods=["integrated"],
                             calibration=layout.calibration(scan))
    mass = dict(zip(result["lesion"], result["mass_mg"]))
    # integrated intensity is unbiased: the large inserts' masses within 10% of nominal
    truth = nominal_inserts().set_index("lesion")["mass_mg"]
    for name in ("large_hd", "large_md", "large_ld"):
        assert mass[name] == pytest.approx(truth[name] * K_HU * 200 / 270, rel=0.1)


def test_plot_writes_a_png(synthetic, tmp_path):
    import matplotlib.image

    scan, _, layout = synthetic
    fig = layout.plot(scan)
    assert len(fig.axes) == 2      # insert plane and the rods' own section
    path = tmp_path / "overlay.png"
    fig.savefig(path)
    image = matplotlib.image.imread(path)
    assert path.stat().st_size > 0 and image.ndim == 3 and image.shape[0] > 100


def test_plot_on_given_axes(synthetic):
    from matplotlib.figure import Figure

    scan, _, layout = synthetic
    fig = Figure()
    one = fig.add_subplot(1, 2, 1)
    assert layout.plot(scan, ax=one) is fig
    assert len(one.patches) == 9          # the inserts' ROIs; the rods are in another section
    two = Figure().subplots(1, 2)
    layout.plot(scan, ax=two)
    assert len(two[1].patches) == 4       # two rod outlines, two calibration ROIs


def test_repr_and_determinism(synthetic):
    scan, _, layout = synthetic
    assert "inserts found: " in repr(layout) and "rods: ha200, water" in repr(layout)
    again = locate_cci(scan)
    pd.testing.assert_frame_equal(again.inserts, layout.inserts)
    pd.testing.assert_frame_equal(again.rods, layout.rods)


# --- command line -------------------------------------------------------------------------


def _run(args):
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def scan_file(synthetic, tmp_path_factory):
    path = tmp_path_factory.mktemp("locate") / "cci.nii.gz"
    pvcalc.write_scan(synthetic[0], path)
    return path


def test_cli_locate_prints_and_writes(scan_file, tmp_path):
    code, out, err = _run(["locate", str(scan_file), "--out", str(tmp_path / "out")])
    assert (code, err) == (0, "")
    assert "QRM calcification insert: axis (y, x) = (" in out and "rod calibration c_HA" in out
    assert out.count("yes") >= 6
    for name in ("cci_overlay.png", "cci_inserts.csv", "cci_rods.csv", "cci_rois.csv"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    rois = pd.read_csv(tmp_path / "out" / "cci_rois.csv")
    assert rois["lesion"].tolist() == [n for n, _, _ in CCI_INSERTS]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cli_locate_formats(scan_file, fmt):
    code, out, err = _run(["locate", str(scan_file), "--format", fmt])
    assert (code, err) == (0, "")
    if fmt == "csv":
        table = pd.read_csv(io.StringIO(out))
        assert table["kind"].tolist() == ["insert"] * 9 + ["rod"] * 2
        assert table.loc[table["kind"] == "rod", "name"].tolist() == ["ha200", "water"]
    else:
        data = json.loads(out)
        assert len(data["inserts"]) == 9 and [r["rod"] for r in data["rods"]] == ["ha200", "water"]
        assert data["files"] == []


def test_cli_locate_errors(tmp_path):
    values = np.zeros((4, 120, 120)) + np.random.default_rng(0).normal(0.0, 20.0, (4, 120, 120))
    path = tmp_path / "water.nii.gz"
    pvcalc.write_scan(pvcalc.make_scan(values, (3.0, 0.6, 0.6)), path)
    code, out, err = _run(["locate", str(path)])
    assert code == 2 and out == ""
    assert err.startswith("pvcalc: error: found ") and len(err.strip().splitlines()) == 1
    (tmp_path / "file").write_text("")
    code, _, err = _run(["locate", str(path), "--out", str(tmp_path / "file")])
    assert code == 2 and "is a file; give a folder" in err


def test_cli_quantify_phantom_cci(scan_file):
    code, out, err = _run(["quantify", str(scan_file), "--phantom", "cci", "--methods",
                           "clinical,integrated", "--format", "csv"])
    assert (code, err) == (0, "")
    table = pd.read_csv(io.StringIO(out))
    truth = nominal_inserts().set_index("lesion")
    assert table["true_volume_mm3"].tolist() == pytest.approx(
        truth.loc[table["lesion"], "volume_mm3"].tolist())
    assert table["true_mass_mg"].tolist() == pytest.approx(
        truth.loc[table["lesion"], "mass_mg"].tolist())
    assert set(table["method"]) == {"clinical", "integrated"} and len(table) == 18
    code, out, err = _run(["quantify", str(scan_file), "--phantom", "cci", "--methods",
                           "clinical"])
    assert code == 0 and "true_volume_mm3" in out and "QRM insert: axis" in out
