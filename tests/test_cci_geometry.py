"""The physical geometry of the QRM cardiac calcification insert (CCI) replica: the insert
cylinder, calibration rods limited to their own axial section, rotation and off-centre
placement, and the rod calibration in that section.

Expected values come from geometry (pi r^2, rotations written out), the slice profile's
own definition integrated numerically here (docs/simulator.md: a trapezoid with FWHM T
and linear edges of T / 2, or a Gaussian with FWHM T) and the materials table, never
from the code under test.
"""

import dataclasses
import math

import numpy as np
import pytest

import phantoms
from phantoms import Lesion, Phantom, Rod, Sphere, ThoraxBody, get_protocol
from phantoms.body import render_cross_section
from phantoms.library import cci_phantom
from phantoms.materials import density_to_hu, hu_per_mg_cm3
from pvcalc.calibration import rod_calibration

K120 = hu_per_mg_cm3(120.0)
HA_ROD_HU = density_to_hu(200.0, 120.0)

#: the documented in-plane layout: radius and spoke angle (0 = +x, 90 = anterior = -y)
RADII = {"large": 37.5, "medium": 25.0, "small": 12.5}
SPOKES = {"hd": 90.0, "md": 210.0, "ld": 330.0}


def _on_circle(radius, angle_deg):
    a = math.radians(angle_deg)
    return np.array([-radius * math.sin(a), radius * math.cos(a)])


def _profile(u, thickness, kind):
    """Slice sensitivity profile written out (unit area, FWHM = thickness)."""
    u = np.abs(u)
    if kind == "gaussian":
        s = thickness / (2 * math.sqrt(2 * math.log(2)))
        return np.exp(-0.5 * (u / s) ** 2) / (s * math.sqrt(2 * math.pi))
    edge = 0.5 * thickness              # trapezoid: linear edges of T / 2 centred on +-T / 2
    base = 0.5 * (thickness + edge)
    return np.clip((base - u) / edge, 0.0, 1.0) / thickness


def _weight(z_slice, z_lo, z_hi, thickness, kind):
    """Fraction of the slice's profile inside [z_lo, z_hi] by numerical integration."""
    z = np.linspace(z_lo, z_hi, 200001)
    f = _profile(z - z_slice, thickness, kind)
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(z)))


# --- the insert cylinder -------------------------------------------------------------

def test_insert_cylinder_has_its_analytic_area_and_clears_lungs_and_spine():
    # everything reads 0 but the insert (1): an insert painted before the lungs or the
    # spine (which it overlaps) would lose area
    pix = 0.25
    c = (np.arange(480) - 239.5) * pix
    body = ThoraxBody(tissue_hu=0.0, lung_hu=0.0, bone_hu=0.0, insert_diameter_mm=100.0,
                      insert_hu=1.0)
    img = render_cross_section(body, y_mm=c, x_mm=c, air_hu=0.0)
    assert img.sum() * pix ** 2 == pytest.approx(math.pi * 50.0 ** 2, rel=0.01)
    # with the real materials: inside 75 HU, also where the lungs (x = +-33 to 129 mm)
    # and the spine (y = 48 to 84 mm) reach into the 50 mm radius
    real = ThoraxBody(insert_diameter_mm=100.0)
    lungs = ThoraxBody()
    assert lungs.region_hu(0.0, 45.0) == -850.0 and lungs.region_hu(49.0, 0.0) == 700.0
    for y, x in ((0.0, 45.0), (0.0, -45.0), (49.0, 0.0), (0.0, 0.0)):
        assert real.region_hu(y, x) == 75.0
    assert real.inside_tissue(0.0, 45.0) and not real.inside_tissue(0.0, 55.0)
    img = render_cross_section(real, y_mm=c, x_mm=c)
    yy, xx = np.meshgrid(c, c, indexing="ij")
    r = np.hypot(yy, xx)
    inside = r < 50.0 - pix
    assert np.all(img[inside] == 75.0)
    assert not np.any(img[r > 50.0 + pix] == 75.0)


def test_noise_free_physical_scan_reads_insert_hu_around_every_insert():
    ph = cci_phantom(insert_hu=80.0, calibration_rods=False, z_extent_mm=(-4.5, 4.5))
    protocol = get_protocol("calcium_scoring", matrix=200)
    scan, truth = phantoms.simulate(ph, protocol, seed=0, noise=False, fraction_maps=False)
    table = phantoms.lesion_table(truth)
    assert np.all(table["background_hu"] == 80.0)
    assert np.allclose(table["hu"], 80.0 + K120 * table["density_mg_cm3"])
    central = scan.sel(z=0.0).values
    yy, xx = np.meshgrid(scan.y.values, scan.x.values, indexing="ij")
    far = np.ones(central.shape, bool)
    for _, row in table.iterrows():
        far &= np.hypot(yy - row.centre_y_mm, xx - row.centre_x_mm) > row.radius_mm + 4.0
    ring = far & (np.hypot(yy, xx) < 45.0)
    np.testing.assert_allclose(central[ring], 80.0, atol=1e-3)


# --- rods in their own axial section ---------------------------------------------------

def _rod_phantom(z_range=(30.0, 45.0), z_extent=(24.0, 51.0), **rod):
    body = ThoraxBody(lungs=False, spine=False, insert_diameter_mm=100.0)
    return Phantom(body, (), rods=(Rod((0.0, 0.0), 10.0, density_mg_cm3=200.0,
                                       z_range_mm=z_range, **rod),),
                   z_extent_mm=z_extent)


@pytest.mark.parametrize("profile", ["trapezoid", "gaussian"])
def test_rod_end_slices_mix_by_the_slice_profile_integral(profile):
    protocol = get_protocol("calcium_scoring", matrix=64, increment_mm=1.5,
                            slice_profile=profile)
    scan, _ = phantoms.simulate(_rod_phantom(), protocol, seed=0, noise=False)
    axis = scan.sel(y=0.0, x=0.0, method="nearest").values.astype(float)
    frac = (axis - 75.0) / (HA_ROD_HU - 75.0)
    expected = [_weight(z, 30.0, 45.0, 3.0, profile) for z in scan.z.values]
    np.testing.assert_allclose(frac, expected, atol=2e-5)
    z = scan.z.values
    # a slice centred on a rod end reads half-way (symmetric profile)
    assert frac[np.isclose(z, 30.0)] == pytest.approx(0.5, abs=2e-5)
    assert frac[np.isclose(z, 45.0)] == pytest.approx(0.5, abs=2e-5)
    if profile == "trapezoid":
        # 1.5 mm inside the end: the part of the profile beyond it, an edge triangle of
        # height 1/2 and base 0.75 mm / 3 mm slice, is 0.0625; 2.25 mm outside: nothing
        assert frac[np.isclose(z, 31.5)] == pytest.approx(0.9375, abs=2e-5)
        assert frac[np.isclose(z, 28.5)] == pytest.approx(0.0625, abs=2e-5)
        assert np.all(frac[(z <= 27.75) | (z >= 47.25)] == 0.0)


def test_slices_outside_the_rod_section_equal_the_scan_without_the_rod():
    protocol = get_protocol("calcium_scoring", matrix=64)
    ph = _rod_phantom()
    scan, _ = phantoms.simulate(ph, protocol, seed=0, noise=False)
    bare, _ = phantoms.simulate(dataclasses.replace(ph, rods=()), protocol, seed=0, noise=False)
    outside = (scan.z.values + 2.25 <= 30.0) | (scan.z.values - 2.25 >= 45.0)
    assert outside.sum() >= 2
    np.testing.assert_array_equal(scan.values[outside], bare.values[outside])
    inside = (scan.z.values - 2.25 >= 30.0) & (scan.z.values + 2.25 <= 45.0)
    assert float(scan.sel(y=0, x=0, method="nearest").values[inside].min()) == pytest.approx(
        HA_ROD_HU, abs=1e-3)


def test_noise_free_patches_next_to_an_axial_section_rod_equal_the_full_scan():
    body = ThoraxBody(lungs=False, spine=False, insert_diameter_mm=100.0)
    ph = Phantom(body, [Lesion(Sphere((31.0, 0.0, 7.5), 1.5), 400.0),
                        Lesion(Sphere((0.0, 0.0, 7.5), 1.5), 400.0)],
                 rods=(Rod((0.0, 0.0), 5.0, density_mg_cm3=200.0, z_range_mm=(30.0, 45.0)),),
                 z_extent_mm=(-6.0, 48.0))
    protocol = get_protocol("calcium_scoring", matrix=96)
    scan, _ = phantoms.simulate(ph, protocol, seed=3, noise=False)
    patches, _ = phantoms.simulate_patches(ph, protocol, seed=3, noise=False)
    for p in patches:
        cut = scan.sel(z=p.z, y=p.y, x=p.x)
        np.testing.assert_array_equal(p.values, cut.values)
    # the first patch holds the rod's edge (x < 5 mm) and both slices across its end
    assert {28.5, 31.5} <= set(patches[0].z.values) and float(patches[0].x.min()) < 4.0


def test_rod_sections_may_not_overlap_where_both_are_present():
    body = ThoraxBody()
    a = Rod((0.0, 0.0), 5.0, z_range_mm=(0.0, 10.0))
    Phantom(body, rods=(a, Rod((0.0, 3.0), 5.0, z_range_mm=(10.0, 20.0))))   # disjoint in z
    with pytest.raises(ValueError, match=r"rods\[0\] and rods\[1\] overlap"):
        Phantom(body, rods=(a, Rod((0.0, 3.0), 5.0)))
    # a lesion in-plane over a rod of another axial section is allowed
    Phantom(body, [Lesion(Sphere((-10.0, 0.0, 0.0), 1.0), 400.0)], rods=(a,),
            z_extent_mm=(-15.0, 15.0))
    with pytest.raises(ValueError, match=r"touches rods\[0\]"):
        Phantom(body, [Lesion(Sphere((5.0, 0.0, 0.0), 1.0), 400.0)], rods=(a,),
                z_extent_mm=(-15.0, 15.0))


# --- the CCI phantom: physical geometry, rotation, offset ------------------------------

def test_physical_cci_geometry():
    p = cci_phantom()
    assert p.z_extent_mm == (-16.5, 49.5)
    assert p.body.insert_diameter_mm == 100.0 and p.body.insert_hu == 75.0
    ha, water = p.rods
    assert ha.density_mg_cm3 == 200.0 and water.hu == 0.0
    assert ha.radius_mm == water.radius_mm == 10.0
    assert ha.z_range_mm == water.z_range_mm == (30.0, 45.0)
    np.testing.assert_allclose(ha.centre_yx_mm, (0.0, 0.0), atol=1e-12)
    d = math.hypot(*water.centre_yx_mm)
    assert d == pytest.approx(25.0) and d > 20.0 and d + 10.0 < 50.0   # beside, inside
    # 3 mm contiguous slices: one centred on the insert plane, four inside the rods
    z = get_protocol("calcium_scoring").slice_positions_mm(p.z_extent_mm)
    assert np.any(z == 0.0) and np.sum((z - 2.25 >= 30.0) & (z + 2.25 <= 45.0)) == 4
    for les in p.lesions:
        lo, hi = les.shape.bounding_box_mm()
        assert hi[0] < 30.0 - 2.25                                 # not in the rods' slices
        assert math.hypot(*les.shape.centre_mm[1:]) + les.shape.radius_mm < 50.0


@pytest.mark.parametrize("geometry, theta", [("physical", 47.0), ("compact", 120.0)])
def test_rotation_and_offset_move_inserts_and_rods_to_analytic_positions(geometry, theta):
    # (the compact replica's MD and LD inserts are 3 mm from the lungs: most angles put
    # one into a lung, which Phantom refuses; 120 degrees swaps the spokes)
    c = np.array([23.0, -31.0])
    p = cci_phantom(geometry=geometry, rotation_deg=theta, centre_yx_mm=tuple(c),
                    extension_ring=True)
    for les in p.lesions:
        size, dens = les.name.split("_")
        expected = _on_circle(RADII[size], SPOKES[dens] + theta) + c
        np.testing.assert_allclose(les.shape.centre_mm[1:], expected, atol=1e-9)
        assert les.shape.centre_mm[0] == 0.0
    ha, water = p.rods
    if geometry == "physical":
        np.testing.assert_allclose(ha.centre_yx_mm, c, atol=1e-9)
        np.testing.assert_allclose(water.centre_yx_mm, _on_circle(25.0, 30.0 + theta) + c,
                                   atol=1e-9)
        assert p.body.insert_rotation_deg == theta
    else:
        np.testing.assert_allclose(ha.centre_yx_mm, _on_circle(20.0, 150.0 + theta) + c)
        np.testing.assert_allclose(water.centre_yx_mm, _on_circle(20.0, 30.0 + theta) + c)
    assert p.body.centre_yx_mm == tuple(c)


def test_offset_phantom_scan_truth_and_attrs_give_the_true_centres():
    theta, c = -100.0, (12.0, 18.0)
    p = cci_phantom(rotation_deg=theta, centre_yx_mm=c)
    protocol = get_protocol("calcium_scoring", matrix=256)
    scan, truth = phantoms.simulate(p, protocol, seed=0, noise=False, fraction_maps=False)
    table = phantoms.lesion_table(truth)
    for _, row in table.iterrows():
        size, dens = row.lesion.split("_")
        expected = _on_circle(RADII[size], SPOKES[dens] + theta) + np.array(c)
        np.testing.assert_allclose([row.centre_y_mm, row.centre_x_mm], expected, atol=1e-9)
    a = scan.attrs
    assert (a["insert_centre_y_mm"], a["insert_centre_x_mm"]) == c
    assert a["insert_rotation_deg"] == theta and a["insert_diameter_mm"] == 100.0
    # the large_hd insert is where the truth says: its HU-weighted centroid
    row = table.set_index("lesion").loc["large_hd"]
    img = scan.sel(z=0.0).values.astype(float) - 75.0
    yy, xx = np.meshgrid(scan.y.values, scan.x.values, indexing="ij")
    w = np.where(np.hypot(yy - row.centre_y_mm, xx - row.centre_x_mm) < 5.0, img, 0.0)
    found = [(w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()]
    np.testing.assert_allclose(found, [row.centre_y_mm, row.centre_x_mm], atol=0.02)
    # the insert cylinder is centred on c: 75 HU 46 mm from c, soft tissue 54 mm anterior
    for dy, dx in ((46.0, 0.0), (0.0, -46.0), (-46.0, 0.0)):
        v = scan.sel(z=15.0, y=c[0] + dy, x=c[1] + dx, method="nearest").values
        assert float(v) == pytest.approx(75.0, abs=1e-3)
    assert float(scan.sel(z=15.0, y=c[0] - 54.0, x=c[1], method="nearest")) == pytest.approx(
        40.0, abs=1e-3)


@pytest.mark.parametrize("geometry", ["physical", "compact"])
def test_stacked_layout_works_with_both_geometries(geometry):
    p = cci_phantom(geometry=geometry, insert_layout="stacked", z_extent_mm=(-16.5, 49.5))
    planes = sorted({les.shape.centre_mm[0] for les in p.lesions})
    assert planes == [-12.0, 0.0, 12.0]


def test_compact_geometry_is_the_earlier_replica():
    # the earlier replica written out: 40 HU body without an insert, z-invariant 10 mm
    # rods 20 mm from the centre at 150 (HA) and 30 (water) degrees, eleven 3 mm slices
    p = cci_phantom(geometry="compact")
    rods = (Rod(tuple(_on_circle(20.0, 150.0)), 5.0, density_mg_cm3=200.0),
            Rod(tuple(_on_circle(20.0, 30.0)), 5.0, density_mg_cm3=0.0, hu=0.0))
    assert p == Phantom(ThoraxBody(), p.lesions, rods=rods, z_extent_mm=(-16.5, 16.5),
                        name="cci")
    assert p.body.insert_diameter_mm is None
    for les in p.lesions:
        size, dens = les.name.split("_")
        np.testing.assert_allclose(les.shape.centre_mm[1:], _on_circle(RADII[size],
                                                                       SPOKES[dens]))
    # z-invariant: away from the inserts every slice is the same 2D background
    scan, _ = phantoms.simulate(p, get_protocol("calcium_scoring", matrix=64), seed=0,
                                noise=False, fraction_maps=False)
    v = scan.values
    np.testing.assert_array_equal(v[0], v[-1])
    assert "insert_diameter_mm" not in scan.attrs and "rod_0_z_lo_mm" not in scan.attrs


# --- rod calibration in the rods' section ---------------------------------------------

def test_rod_calibration_of_a_noise_free_physical_replica():
    p = cci_phantom()
    protocol = get_protocol("calcium_scoring", matrix=160)
    scan, _ = phantoms.simulate(p, protocol, seed=0, noise=False, fraction_maps=False)
    cal = rod_calibration(scan, p)
    assert cal.c_ha_mg_cm3_per_hu == pytest.approx(1.0 / K120, rel=0.005)
    assert cal.water_hu == pytest.approx(0.0, abs=0.05)
    assert cal.ha_hu == pytest.approx(HA_ROD_HU, rel=1e-4)


def test_rod_calibration_follows_rotation_offset_and_the_z_shift():
    from scipy.spatial.transform import Rotation
    p = cci_phantom(rotation_deg=60.0, centre_yx_mm=(-8.0, 15.0))
    protocol = get_protocol("calcium_scoring", matrix=192)
    (scan, _), = phantoms.repeat(p, protocol, seed=4, n_repeats=1, noise=False,
                                 fraction_maps=False, translation_sd_mm=(2.0, 2.0, 2.0),
                                 rotation_sd_deg=3.0)
    a = scan.attrs
    R = Rotation.from_rotvec(np.radians(a["rotation_deg"]) * np.array(
        [a["rotation_axis_z"], a["rotation_axis_y"], a["rotation_axis_x"]])).as_matrix()
    t = np.array([a["translation_z_mm"], a["translation_y_mm"], a["translation_x_mm"]])
    assert abs(t[0]) > 0.5
    pivot = np.array([16.5, 0.0, 0.0])
    for i, rod in enumerate(p.rods):
        # the section's centre (37.5 mm, y, x) rotated about the phantom centre, translated
        moved = R @ (np.array([37.5, *rod.centre_yx_mm]) - pivot) + pivot + t
        assert a[f"rod_{i}_z_lo_mm"] == pytest.approx(moved[0] - 7.5, abs=1e-9)
        assert a[f"rod_{i}_z_hi_mm"] == pytest.approx(moved[0] + 7.5, abs=1e-9)
        assert a[f"rod_{i}_centre_y_mm"] == pytest.approx(moved[1], abs=1e-9)
        assert a[f"rod_{i}_centre_x_mm"] == pytest.approx(moved[2], abs=1e-9)
    # the rendered HA rod sits there, in z (slice weights) and in-plane (centroid)
    ha_y, ha_x = a["rod_0_centre_y_mm"], a["rod_0_centre_x_mm"]
    axis = scan.sel(y=ha_y, x=ha_x, method="nearest").values.astype(float)
    frac = (axis - 75.0) / (HA_ROD_HU - 75.0)
    expected = [_weight(z, a["rod_0_z_lo_mm"], a["rod_0_z_hi_mm"], 3.0, "trapezoid")
                for z in scan.z.values]
    np.testing.assert_allclose(frac, expected, atol=1e-4)
    k = int(np.argmax(frac))
    img = scan.values[k].astype(float) - 75.0
    yy, xx = np.meshgrid(scan.y.values, scan.x.values, indexing="ij")
    w = np.where(np.hypot(yy - ha_y, xx - ha_x) < 12.0, img, 0.0)
    found = [(w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()]
    np.testing.assert_allclose(found, [ha_y, ha_x], atol=0.05)
    assert rod_calibration(scan, p).c_ha_mg_cm3_per_hu == pytest.approx(1.0 / K120, rel=0.005)


def test_rod_calibration_needs_the_rods_section_in_the_scan():
    p = cci_phantom()
    scan, _ = phantoms.simulate(cci_phantom(z_extent_mm=(-16.5, 16.5)),
                                get_protocol("calcium_scoring", matrix=32), seed=0,
                                noise=False, fraction_maps=False)
    with pytest.raises(ValueError, match=r"fills z = 30.00 to 45.00 mm.*no slice centre"):
        rod_calibration(scan, p)


# --- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("make, exc, text", [
    (lambda: ThoraxBody(insert_diameter_mm=250.0), ValueError,
     "insert_diameter_mm must be smaller than the body"),
    (lambda: ThoraxBody(insert_diameter_mm=-1.0), ValueError,
     "insert_diameter_mm must be a finite positive length"),
    (lambda: ThoraxBody(insert_diameter_mm=100.0, insert_hu=float("nan")), ValueError,
     "insert_hu"),
    (lambda: ThoraxBody(centre_yx_mm=(1.0, 2.0, 3.0)), ValueError,
     r"centre_yx_mm must be 2 finite numbers \(y, x\)"),
    (lambda: ThoraxBody(lungs="yes"), TypeError, "lungs must be True or False"),
    (lambda: Rod((0, 0), 5.0, z_range_mm=(45.0, 30.0)), ValueError,
     "z_range_mm must be finite with z_lo_mm < z_hi_mm"),
    (lambda: Rod((0, 0), 5.0, z_range_mm=30.0), TypeError, "z_range_mm must be a pair"),
    (lambda: cci_phantom(geometry="round"), ValueError, "geometry must be one of"),
    (lambda: cci_phantom(geometry="compact", insert_hu=60.0), ValueError,
     "insert_hu=60.0 applies to geometry='physical' only"),
    (lambda: cci_phantom(rotation_deg="30"), TypeError, "rotation_deg must be a number"),
    (lambda: cci_phantom(centre_yx_mm=(1.0,)), ValueError, "centre_yx_mm must be 2"),
    (lambda: cci_phantom(z_extent_mm=(-1.0, 1.0)), ValueError, "does not contain insert"),
])
def test_geometry_errors(make, exc, text):
    with pytest.raises(exc, match=text):
        make()
