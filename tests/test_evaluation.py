"""Estimates beside the truth: the repeat loop and the long table of pvcalc.stats."""

import math

import numpy as np
import pandas as pd
import pytest

import phantoms
import pvcalc
from phantoms.truth import lesion_table
from pvcalc import stats
from pvcalc.calibration import rod_calibration
from pvcalc.evaluation import (
    QUANTITIES,
    beside_truth,
    evaluate_repeat,
    evaluate_repeats,
    quantify_repeats,
    score_lesions,
)
from pvcalc.rois import truth_roi_labels

PROTOCOL = phantoms.get_protocol("calcium_scoring")
SEED = 7

# The QRM insert replica: cylinders with d = L = 1 / 3 / 5 mm at 800 / 400 / 200 mg HA/cm3
# (phantoms.library.cci_phantom; DESIGN.md section 3)
INSERTS = {f"{size}_{grade}": (diameter, density)
           for size, diameter in (("large", 5.0), ("medium", 3.0), ("small", 1.0))
           for grade, density in (("hd", 800.0), ("md", 400.0), ("ld", 200.0))}


def _cylinder_volume_mm3(diameter_mm):
    return math.pi * (diameter_mm / 2) ** 2 * diameter_mm


@pytest.fixture(scope="module")
def phantom():
    # the compact replica (inserts in 40 HU tissue), whose three 1 mm inserts are all
    # missed; in the physical geometry's 75 HU insert small_hd can reach 130 HU
    return phantoms.cci_phantom(geometry="compact")


@pytest.fixture(scope="module")
def per_scan(phantom):
    return evaluate_repeats(phantom, PROTOCOL, seed=SEED, n_repeats=2)


def test_evaluate_repeats_equals_the_hand_written_loop(phantom, per_scan):
    tables = []
    for index, (scan, truth) in enumerate(phantoms.repeat(phantom, PROTOCOL, seed=SEED,
                                                          n_repeats=2)):
        table = score_lesions(scan, truth, calibration=rod_calibration(scan, phantom))
        tables.append(table.assign(repeat=index + 1))
    expected = pd.concat(tables, ignore_index=True)
    pd.testing.assert_frame_equal(per_scan, expected)
    assert per_scan.attrs["simulation_s"] > 0 and per_scan.attrs["scoring_s"] > 0


def test_evaluate_repeat_is_one_repeat_of_the_series(phantom, per_scan):
    second = evaluate_repeat(phantom, PROTOCOL, seed=SEED, index=1)
    expected = per_scan[per_scan["repeat"] == 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(second, expected)


def test_a_fixed_calibration_is_used_for_every_scan(phantom):
    calibration = pvcalc.Calibration(c_ha_mg_cm3_per_hu=0.5)
    table = evaluate_repeats(phantom, PROTOCOL, seed=SEED, n_repeats=1, noise=False,
                             calibration=calibration, connectivity=4)
    assert (table["c_ha"] == 0.5).all()
    scan, truth = phantoms.simulate_repeat(phantom, PROTOCOL, seed=SEED, index=0, noise=False)
    pd.testing.assert_frame_equal(
        table.drop(columns="repeat"),
        score_lesions(scan, truth, calibration=calibration, connectivity=4))


def test_long_form_pivots_back_to_the_wide_table(per_scan):
    long = beside_truth(per_scan)
    assert list(long.columns[:5]) == ["lesion", "method", "quantity", "estimate", "truth"]
    assert len(long) == 3 * len(per_scan)
    assert set(long["method"]) == {"clinical"}
    wide = long.pivot(index=["repeat", "lesion"], columns="quantity", values="estimate")
    original = per_scan.set_index(["repeat", "lesion"])
    for quantity, column in (("volume_mm3", "volume_score_mm3"), ("mass_mg", "mass_score_mg"),
                             ("agatston", "agatston")):
        np.testing.assert_array_equal(wide.loc[original.index, quantity], original[column])
    # every other column of the wide table comes along, one value per (scan, lesion)
    for column in ("detected", "c_ha", "density_mg_cm3", "shape", "radius_mm"):
        back = long.groupby(["repeat", "lesion"])[column].agg(["first", "nunique"])
        assert (back["nunique"] == 1).all()
        np.testing.assert_array_equal(back.loc[original.index, "first"], original[column])


def test_truths_are_the_inserts_exact_volumes_and_masses(per_scan):
    long = beside_truth(per_scan)
    for name, (diameter, density) in INSERTS.items():
        rows = long[long["lesion"] == name].set_index(["repeat", "quantity"])["truth"]
        volume = _cylinder_volume_mm3(diameter)
        for repeat in (1, 2):
            assert rows[(repeat, "volume_mm3")] == pytest.approx(volume, rel=1e-12)
            assert rows[(repeat, "mass_mg")] == pytest.approx(density * volume / 1000,
                                                              rel=1e-12)
            assert math.isnan(rows[(repeat, "agatston")])   # no true Agatston score
    radius = long.groupby("lesion")["radius_mm"].first()
    assert radius.to_dict() == {name: d / 2 for name, (d, _) in INSERTS.items()}


def test_truth_read_from_the_simulators_dataset_agrees(phantom, per_scan):
    _, truth = phantoms.simulate(phantom, PROTOCOL, seed=0, noise=False)
    from_dataset = beside_truth(per_scan, truth)
    pd.testing.assert_frame_equal(from_dataset, beside_truth(per_scan))
    # a truth that does not belong to the results is refused
    bad = truth.assign(volume_mm3=truth["volume_mm3"] * 1.5)
    with pytest.raises(ValueError, match="true_volume_mm3 disagrees with the truth"):
        beside_truth(per_scan, bad)
    # the lesion table of the truth API is accepted as it is
    pd.testing.assert_frame_equal(beside_truth(per_scan, lesion_table(truth)), from_dataset)


def test_wide_tables_of_several_methods_keep_their_method(per_scan):
    # a method result table in pvcalc's result naming (volume_mm3, mass_mg, agatston)
    clinical = per_scan.rename(columns={"volume_score_mm3": "volume_mm3",
                                        "mass_score_mg": "mass_mg"}).assign(method="clinical")
    doubled = clinical.assign(method="doubled", volume_mm3=2 * clinical["volume_mm3"])
    results = pd.concat([clinical, doubled], ignore_index=True)
    long = beside_truth(results.drop(columns=["mass_mg", "agatston"]))
    assert set(long["quantity"]) == {"volume_mm3"}
    est = long.pivot(index=["repeat", "lesion"], columns="method", values="estimate")
    np.testing.assert_array_equal(est["doubled"], 2 * est["clinical"])


def test_a_quantify_result_goes_beside_the_truth(phantom):
    scan, truth = phantoms.simulate(phantom, PROTOCOL, seed=0, noise=False)
    results = pvcalc.quantify(scan, truth_roi_labels(scan, truth),
                              methods=["clinical", "adaptive_groen"],
                              calibration=rod_calibration(scan, phantom))
    long = beside_truth(results, truth)
    assert len(long) == 3 * len(results) == 3 * 2 * len(INSERTS)
    back = long.pivot(index=["lesion", "method"], columns="quantity", values="estimate")
    wide = results.set_index(["lesion", "method"])
    for quantity in QUANTITIES:
        np.testing.assert_array_equal(back.loc[wide.index, quantity], wide[quantity])
    volume = long[long["quantity"] == "volume_mm3"].set_index(["lesion", "method"])["truth"]
    for (name, _), value in volume.items():
        assert value == pytest.approx(_cylinder_volume_mm3(INSERTS[name][0]), rel=1e-12)
    # the method's own columns come along (reason says why a value is missing)
    assert {"threshold_hu", "reason", "density_mg_cm3"} <= set(long.columns)


def test_quantify_repeats_equals_the_hand_written_loop(phantom, per_scan):
    results = quantify_repeats(phantom, PROTOCOL, seed=SEED, n_repeats=2)
    tables = []
    for index, (scan, truth) in enumerate(phantoms.repeat(phantom, PROTOCOL, seed=SEED,
                                                          n_repeats=2)):
        cal = rod_calibration(scan, phantom)
        table = pvcalc.quantify(scan, truth_roi_labels(scan, truth), calibration=cal)
        tables.append(table.assign(c_ha=cal.c_ha_mg_cm3_per_hu, repeat=index + 1))
    expected = pd.concat(tables, ignore_index=True)
    pd.testing.assert_frame_equal(results.drop(columns=["true_volume_mm3", "true_mass_mg"]),
                                  expected)
    assert results.attrs["simulation_s"] > 0 and results.attrs["quantify_s"] > 0
    assert list(results["method"].unique()) == list(pvcalc.methods.METHODS)
    # the truth beside each row: the inserts' analytic volumes and masses
    for name, volume, mass in results[["lesion", "true_volume_mm3", "true_mass_mg"]].itertuples(
            index=False):
        diameter, density = INSERTS[name]
        assert volume == pytest.approx(_cylinder_volume_mm3(diameter), rel=1e-12)
        assert mass == pytest.approx(density * _cylinder_volume_mm3(diameter) / 1000, rel=1e-12)
    # the clinical rows are the scores of evaluate_repeats (pvcalc.score on the same ROIs)
    clinical = results[results["method"] == "clinical"].reset_index(drop=True)
    for ours, theirs in (("volume_mm3", "volume_score_mm3"), ("mass_mg", "mass_score_mg"),
                         ("agatston", "agatston"), ("repeat", "repeat"), ("lesion", "lesion")):
        np.testing.assert_array_equal(clinical[ours], per_scan[theirs])
    # beside_truth takes the table as it is (its own truth columns)
    long = beside_truth(results)
    assert len(long) == 3 * len(results)
    np.testing.assert_array_equal(long.loc[long["quantity"] == "mass_mg", "truth"],
                                  results["true_mass_mg"])
    with pytest.raises(ValueError, match="n_repeats must be >= 1, got 0"):
        quantify_repeats(phantom, PROTOCOL, seed=0, n_repeats=0)


def test_the_long_table_feeds_the_statistics_without_reshaping(per_scan):
    long = beside_truth(per_scan)
    acc = stats.accuracy(long[long["quantity"] != "agatston"], groupby=["method", "quantity"])
    mass = acc.set_index("quantity").loc["mass_mg"]
    # hand computation from the wide table and the inserts' analytic masses
    true_mass = np.array([INSERTS[n][1] * _cylinder_volume_mm3(INSERTS[n][0]) / 1000
                          for n in per_scan["lesion"]])
    error = per_scan["mass_score_mg"].to_numpy() - true_mass
    assert mass["n_lesions"] == 18
    assert mass["bias"] == pytest.approx(error.mean(), rel=1e-12)
    assert mass["detected"] == int((per_scan["mass_score_mg"] > 0).sum())

    inter = stats.interscan_summary(long, subject="lesion", rater="repeat", value="estimate",
                                    groupby=["method", "quantity"])
    a = per_scan[per_scan["repeat"] == 1].set_index("lesion")["agatston"]
    b = per_scan[per_scan["repeat"] == 2].set_index("lesion")["agatston"].reindex(a.index)
    mean = (a + b) / 2
    rel = np.where(mean > 0, (a - b).abs() / mean.where(mean > 0, 1.0) * 100, 0.0)
    row = inter.set_index("quantity").loc["agatston"]
    assert row["mean_relative_difference_pct"] == pytest.approx(rel.mean(), rel=1e-12)
    assert row["n_both_zero"] == int(((a == 0) & (b == 0)).sum())

    icc = stats.icc(long, subject="lesion", rater="repeat", value="estimate",
                    groupby=["method", "quantity"])
    assert set(icc["quantity"]) == set(QUANTITIES)


def test_bad_results_and_truth_are_refused(per_scan):
    with pytest.raises(TypeError, match="results must be a pandas DataFrame"):
        beside_truth(per_scan.to_dict())
    with pytest.raises(ValueError, match="'lesion' column"):
        beside_truth(per_scan.drop(columns="lesion"))
    with pytest.raises(ValueError, match="none of the quantity columns"):
        beside_truth(per_scan[["lesion", "true_volume_mm3", "true_mass_mg"]])
    with pytest.raises(ValueError, match="both 'volume_score_mm3' and 'volume_mm3'"):
        beside_truth(per_scan.assign(volume_mm3=1.0))
    with pytest.raises(TypeError, match="column 'agatston' must be numeric"):
        beside_truth(per_scan.assign(agatston="high"))
    with pytest.raises(ValueError, match="truth=None takes the truth from the results"):
        beside_truth(per_scan.drop(columns="true_mass_mg"))
    truth = per_scan.rename(columns={"true_volume_mm3": "volume_mm3",
                                     "true_mass_mg": "mass_mg"})[
        ["repeat", "lesion", "volume_mm3", "mass_mg"]]
    with pytest.raises(ValueError, match="several rows for.*on=\\('repeat', 'lesion'\\)"):
        beside_truth(per_scan, truth)
    long = beside_truth(per_scan, truth, on=("repeat", "lesion"))
    # (the descriptors this truth table lacks come along as the results' own columns)
    pd.testing.assert_frame_equal(long, beside_truth(per_scan)[long.columns])
    with pytest.raises(ValueError, match="2 result row\\(s\\) have no truth"):
        beside_truth(per_scan, truth[truth["lesion"] != "large_hd"], on=("repeat", "lesion"))
    with pytest.raises(TypeError, match="truth must be an xarray.Dataset"):
        beside_truth(per_scan, truth.to_numpy())
    with pytest.raises(TypeError, match="method must be a non-empty str"):
        beside_truth(per_scan, method=3)


def test_bad_loop_options_are_refused(phantom):
    with pytest.raises(TypeError, match="calibration must be 'rods'.*pvcalc.Calibration"):
        evaluate_repeats(phantom, PROTOCOL, seed=0, n_repeats=1, calibration=0.8)
    with pytest.raises(TypeError, match="n_repeats must be a positive integer"):
        evaluate_repeats(phantom, PROTOCOL, seed=0, n_repeats=2.0)
    with pytest.raises(ValueError, match="n_repeats must be >= 1, got 0"):
        evaluate_repeats(phantom, PROTOCOL, seed=0, n_repeats=0)
    with pytest.raises(ValueError, match="must not set fraction_maps"):
        evaluate_repeat(phantom, PROTOCOL, seed=0, index=0,
                        simulate_options={"fraction_maps": False})
    with pytest.raises(TypeError, match="simulate_options must be a dict"):
        evaluate_repeat(phantom, PROTOCOL, seed=0, index=0, simulate_options=[("nsub", 2)])
    with pytest.raises(ValueError, match="needs a water rod"):
        evaluate_repeat(phantoms.cci_phantom(calibration_rods=False), PROTOCOL, seed=0,
                        index=0, noise=False)


def test_log_bland_altman_of_missed_inserts_says_how_to_handle_zeros(per_scan):
    # the 1 mm inserts are missed (score 0): ln 0 is undefined
    long = beside_truth(per_scan)
    keys = {"subject": "lesion", "rater": "repeat", "value": "estimate",
            "groupby": ["method", "quantity"]}
    with pytest.raises(ValueError) as err:
        stats.bland_altman(long, transform="log", **keys)
    message = str(err.value)
    assert "column 'estimate' (repeat=1) must be strictly positive" in message
    assert "first at subject 'small_hd'" in message
    assert "transform='percent'" in message and "transform='none'" in message
    # the drop the message spells out works as written
    drop = message.split("measurement (")[1].split("), or use")[0]
    assert drop == ("data[data.groupby(['method', 'quantity', 'lesion'])['estimate']"
                    ".transform('min') > 0]")
    found = eval(drop, {"data": long})
    assert set(found["lesion"]) == set(INSERTS) - {"small_hd", "small_md", "small_ld"}
    ratios = stats.bland_altman(found, transform="log", **keys)
    assert (ratios["n_subjects"] == 6).all() and (ratios["bias"] > 0).all()
    # the transforms the message offers accept the zeros
    assert len(stats.bland_altman(long, transform="percent", **keys)) == 3
    # plain arrays: the message says how to drop the pairs
    with pytest.raises(ValueError, match=r"b must be strictly positive.*1 value\(s\) <= 0.*"
                                         r"position 1.*keep = \(a > 0\) & \(b > 0\)"):
        stats.bland_altman([1.0, 2.0, 3.0], [1.0, 0.0, 2.0], transform="log")
    # and the plot reports the same
    with pytest.raises(ValueError, match="transform='log' .*needs A, B > 0"):
        stats.plot_bland_altman([1.0, 2.0, 3.0], [1.0, 0.0, 2.0], transform="log")
