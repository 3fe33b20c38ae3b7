"""The validation studies of the partial-volume methods run, and their tables hold up.

``validation/methods_cci.py --quick`` and ``validation/methods_motion.py --quick`` run
in-process into a scratch folder; the tables must have the documented shape and
columns, the clinical rows must be finite and must equal ``pvcalc.score`` per label of
the study's insert ROIs on the same simulated scans, and the statistics the studies compute directly
must equal ``pvcalc.stats.accuracy`` where both apply.
"""

import contextlib
import importlib.util
import io
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import phantoms
import pvcalc
from pvcalc import stats
from pvcalc.calibration import rod_calibration
from pvcalc.methods import METHODS

VALIDATION = Path(__file__).resolve().parents[1] / "validation"


def _load(name):
    if str(VALIDATION) not in sys.path:
        sys.path.insert(0, str(VALIDATION))   # methods_motion imports methods_cci
    spec = importlib.util.spec_from_file_location(name, VALIDATION / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cci():
    return _load("methods_cci")


@pytest.fixture(scope="module")
def cci_quick(cci, tmp_path_factory):
    out = tmp_path_factory.mktemp("methods_cci")
    printed, log = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(log):
        assert cci.main(["--quick", "--out", str(out)]) == 0
    tables = {name: pd.read_csv(out / f"methods_cci_{name}.csv")
              for name in ("summary", "detection", "false_positives", "calcium_free")}
    tables["per_scan"] = pd.read_csv(out / "methods_cci_per_scan.csv.gz")
    return tables, printed.getvalue(), out


def _quantities(name):
    return [q for q in ("volume_mm3", "mass_mg") if q in METHODS[name].defines]


def test_cci_quick_tables_have_the_documented_shape(cci_quick):
    tables, printed, out = cci_quick
    names = [les.name for les in phantoms.cci_phantom().lesions]
    methods = list(METHODS)
    per_scan = tables["per_scan"]
    assert len(per_scan) == 2 * 2 * len(names) * len(methods)   # bodies x repeats x ...
    assert set(per_scan["protocol"]) == {"calcium_scoring"}
    assert set(per_scan["method"]) == set(methods) and set(per_scan["lesion"]) == set(names)
    summary = tables["summary"]
    for column in ("protocol", "body", "method", "lesion", "quantity", "n_scans", "truth",
                   "bias", "sd_error", "relative_error_pct", "relative_sd_pct", "cv_pct",
                   "mean_estimate", "n_negative", "n_missing", "detection_rate"):
        assert column in summary.columns, column
    expected = 2 * len(names) * sum(len(_quantities(m)) for m in methods)
    assert len(summary) == expected
    assert len(tables["detection"]) == 2 * len(names) * len(methods)
    fp = tables["false_positives"]
    assert len(fp) == 2 * len(methods) * 3          # bodies x methods x ROI diameters
    assert set(fp["diameter_mm"]) == {1.0, 3.0, 5.0}
    assert (fp["rate"].between(0, 1)).all() and (fp["n"] >= 2 * 5).all()
    assert (out / "methods_cci_mass_error.png").stat().st_size > 10_000
    assert "Mass: mean relative error" in printed and "False-positive rate" in printed


def test_cci_clinical_rows_are_finite(cci_quick):
    summary = cci_quick[0]["summary"]
    clinical = summary[summary["method"] == "clinical"]
    assert len(clinical) == 2 * 9 * 2
    for column in ("bias", "sd_error", "relative_error_pct", "mean_estimate", "truth"):
        assert np.isfinite(clinical[column]).all(), column
    found = clinical[clinical["mean_estimate"] > 0]
    assert len(found) >= 2 * 6 * 2 and np.isfinite(found["cv_pct"]).all()
    assert (clinical["n_missing"] == 0).all() and (clinical["n_negative"] == 0).all()


def test_cci_clinical_rows_equal_pvcalc_score_in_the_same_rois(cci, cci_quick):
    """The study's clinical rows = pvcalc.score per label of the study's own insert ROIs.

    (On the physical geometry's 75 HU insert body the 130 HU threshold lies 2.75 noise
    SDs above the background, so noise components make the clinical score depend on the
    ROI; the comparison must use the same ROIs.)
    """
    per_scan = cci_quick[0]["per_scan"]
    protocol = phantoms.get_protocol("calcium_scoring")
    for body, ring in cci.BODIES:
        phantom = phantoms.cci_phantom(extension_ring=ring)
        for index in range(2):
            scan, truth = phantoms.simulate_repeat(phantom, protocol, seed=cci.SEED + int(ring),
                                                   index=index)
            rois = cci.roi_labels(scan, cci.insert_rois(phantom, truth, protocol),
                                  cci.soft_tissue_mask(scan, phantom))
            ref = pvcalc.score(scan, labels=rois, calibration=rod_calibration(scan, phantom))
            by_label = ref.by_label.set_index("label_name")
            got = per_scan[(per_scan["body"] == body) & (per_scan["repeat"] == index + 1)
                           & (per_scan["method"] == "clinical")].set_index("lesion")
            names = list(rois.attrs["label_names"].values())
            for mine, theirs in (("volume_mm3", "volume_mm3"), ("mass_mg", "mass_mg"),
                                 ("agatston", "agatston")):
                expected = by_label[theirs].reindex(names).fillna(0.0).to_numpy()
                np.testing.assert_allclose(got.loc[names, mine].to_numpy(), expected,
                                           rtol=1e-5, atol=1e-9, err_msg=f"{body} {mine}")


def test_error_statistics_direct_path_matches_stats_accuracy(cci):
    """Groups with a negative estimate are computed directly: same as accuracy's formulas."""
    rng = np.random.default_rng(0)
    est = rng.normal(10.0, 3.0, 12)
    long = pd.DataFrame({"g": ["a"] * 6 + ["b"] * 6, "estimate": est,
                         "truth": [8.0] * 6 + [11.0] * 6})
    long.loc[0, "estimate"] = -1.0                 # group a takes the direct path
    long.loc[7, "estimate"] = np.nan               # one missing estimate in group b
    table = cci.error_statistics(long, ["g"]).set_index("g")
    a = long[long["g"] == "a"]
    err = a["estimate"].to_numpy() - 8.0
    assert table.loc["a", "n_negative"] == 1 and table.loc["a", "n_scans"] == 6
    assert math.isclose(table.loc["a", "bias"], err.mean())
    assert math.isclose(table.loc["a", "sd_error"], err.std(ddof=1))
    assert math.isclose(table.loc["a", "relative_error_pct"], 100 * err.mean() / 8.0)
    assert math.isclose(table.loc["a", "cv_pct"], 100 * err.std(ddof=1) / a["estimate"].mean())
    b = long[long["g"] == "b"].dropna()
    ref = stats.accuracy(b)
    assert table.loc["b", "n_missing"] == 1 and table.loc["b", "n_scans"] == 5
    for column in ("bias", "sd_error", "relative_error_pct"):
        assert math.isclose(table.loc["b", column], float(ref[column].iloc[0]))


def test_calcium_free_rois_are_clear_of_inserts_and_rods(cci):
    phantom = phantoms.cci_phantom()
    positions = cci.calcium_free_positions(phantom)
    assert {d: len(p) >= 5 for d, p in positions.items()} == {5.0: True, 3.0: True, 1.0: True}
    reach = cci._shell_reach_mm()
    for diameter, points in positions.items():
        r = cci.roi_semi_axes(diameter, diameter, phantoms.get_protocol("calcium_scoring"))[0]
        for y, x in points:
            for les in phantom.lesions:
                gap = math.hypot(y - les.shape.centre_mm[1], x - les.shape.centre_mm[2])
                assert gap > r + reach + les.shape.radius_mm
            for rod in phantom.rods:
                gap = math.hypot(y - rod.centre_yx_mm[0], x - rod.centre_yx_mm[1])
                assert gap > r + reach + rod.radius_mm


def test_motion_quick_tables(tmp_path):
    motion = _load("methods_motion")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        assert motion.main(["--quick", "--out", str(tmp_path)]) == 0
    summary = pd.read_csv(tmp_path / "methods_motion_summary.csv")
    n_speeds = len(motion.VELOCITIES_MM_S)
    assert len(summary) == n_speeds * sum(len(_quantities(m)) for m in METHODS)
    assert sorted(summary["speed_mm_s"].unique()) == list(motion.VELOCITIES_MM_S)
    clinical = summary[summary["method"] == "clinical"]
    assert np.isfinite(clinical[["relative_error_pct", "relative_sd_pct", "cv_pct"]]).all().all()
    sens = pd.read_csv(tmp_path / "methods_motion_sensitivity.csv")
    assert math.isclose(sens.loc[sens["method"] == "clinical", "ratio_to_clinical"].iloc[0], 1.0)
    # sensitivity = mean |E(v) - E(0)| / E(0), recomputed from the summary
    vol = clinical[clinical["quantity"] == "volume_mm3"].set_index("speed_mm_s")["mean_estimate"]
    expected = 100 * np.mean(np.abs(vol.drop(index=0.0) - vol.loc[0.0])) / vol.loc[0.0]
    got = sens[(sens["method"] == "clinical") & (sens["quantity"] == "volume_mm3")]
    assert math.isclose(float(got["sensitivity_pct"].iloc[0]), expected, rel_tol=1e-5)
    assert "Groen et al." in printed.getvalue()
