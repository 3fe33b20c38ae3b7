"""The study report's per-lesion tables, trend figures and many-condition summary, on
synthetic results (no simulation): every number equals a plain pandas computation.

The results mimic the motion study: one phantom, a speed axis with three values and a
gating axis, two lesions, four repeats, two methods.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest

from pvcalc.study import parse_spec
from pvcalc.study.report import write_report

SPEEDS = (0.0, 10.0, 30.0)
LESIONS = {"a": (40.0, 100.0), "b": (8.0, 20.0)}      # true mass (mg), volume (mm3)
REPEATS = 4


def _results():
    rng = np.random.default_rng(7)
    rows = []
    for v in SPEEDS:
        for gated in (True, False):
            condition = f"motion|v={v:g}|gated={gated}"
            for r in range(1, REPEATS + 1):
                for lesion, (mass, volume) in LESIONS.items():
                    for method in ("clinical", "integrated"):
                        slope = 0.01 if method == "clinical" else 0.0
                        rows.append({
                            "task_key": f"{condition}|r{r:03d}", "condition": condition,
                            "repeat": r, "phantom": "motion", "phantom_name": "motion",
                            "heart_rate_bpm": math.nan if v == 0 else (60.0 if gated else 80.0),
                            "velocity_mm_s": v, "protocol_gated": gated, "lesion": lesion,
                            "method": method, "true_mass_mg": mass, "true_volume_mm3": volume,
                            # the truth's rounding noise must not split the speeds
                            "true_peak_velocity_mm_s": v + (1e-13 if r % 2 else 0.0),
                            "mass_mg": mass * (1 - slope * v) * rng.normal(1.0, 0.05),
                            "volume_mm3": volume * (1 + slope * v) * rng.normal(1.0, 0.08),
                            "detected": not (lesion == "b" and method == "clinical"
                                             and rng.random() < 0.3)})
    df = pd.DataFrame(rows)
    df["repeat"] = df["repeat"].astype("Int64")
    df["protocol_gated"] = df["protocol_gated"].astype("boolean")
    df["detected"] = df["detected"].astype("boolean")
    return df


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("lesions")
    results = _results()
    folder = write_report(out, results=results, formats=["markdown"])
    return folder, results


def test_lesion_table_equals_pandas(report):
    folder, results = report
    table = pd.read_csv(folder / "lesions.csv")
    keys = ["method", "velocity_mm_s", "protocol_gated", "lesion"]
    for quantity in ("mass_mg", "volume_mm3"):
        got = table[table["quantity"] == quantity]
        assert len(got) == 2 * len(SPEEDS) * 2 * len(LESIONS)
        g = results.assign(err=100 * (results[quantity] - results[f"true_{quantity}"])
                           / results[f"true_{quantity}"]).groupby(keys)
        expected = pd.DataFrame({"n": g.size(), "mean": g[quantity].mean(),
                                 "sd": g[quantity].std(ddof=1), "rel": g["err"].mean(),
                                 "rel_sd": g["err"].std(ddof=1),
                                 "det": g["detected"].mean()}).reset_index()
        merged = got.merge(expected.astype({"protocol_gated": bool}), on=keys, validate="1:1")
        assert len(merged) == len(got)
        assert (merged["n_scans"] == REPEATS).all() and (merged["n"] == REPEATS).all()
        for ours, theirs in (("mean_estimate", "mean"), ("sd_estimate", "sd"),
                             ("relative_error_pct", "rel"), ("relative_error_sd_pct", "rel_sd"),
                             ("detection_rate", "det")):
            np.testing.assert_allclose(merged[ours], merged[theirs], rtol=1e-12)
        np.testing.assert_allclose(merged["cv_pct"], 100 * merged["sd"] / merged["mean"],
                                   rtol=1e-12)
        np.testing.assert_allclose(merged["bias"], merged["mean"] - merged["true_value"],
                                   rtol=1e-9, atol=1e-12)
    assert (table["detection_rate_ci_low"] <= table["detection_rate"]).all()


def test_markdown_has_the_lesion_tables_and_trend_figures(report):
    folder, _ = report
    md = (folder / "report.md").read_text()
    assert "## Each lesion in each condition" in md
    assert "### Mass: relative error % (CV %)" in md
    # lesion b was missed by clinical in some scans: the detection table lists it
    section = md.split("### Detection rate, lesions some method missed")[1].split("\n\n")[1]
    assert "| b |" in section and "| a |" not in section
    for name in ("mass_error_vs_velocity_mm_s.png", "volume_error_vs_velocity_mm_s.png"):
        assert (folder / name).read_bytes().startswith(b"\x89PNG")
        assert f"]({name})" in md


def test_summary_of_many_conditions(report):
    folder, _ = report
    md = (folder / "report.md").read_text()
    lines = [x[2:] for x in md.split("## Summary\n\n")[1].split("\n\n")[0].splitlines()]
    assert "nan" not in lines[0]
    assert "heart_rate_bpm: n/a, 60, 80" in lines[0]
    comp = pd.read_csv(folder / "compare_accuracy.csv")
    comp = comp[comp["quantity"] == "mass_mg"]
    n = len(comp)
    a_smaller = int(((comp["t_p_value_holm"] < 0.05) & (comp["mean_difference"] < 0)).sum())
    b_smaller = int(((comp["t_p_value_holm"] < 0.05) & (comp["mean_difference"] > 0)).sum())
    line = next(x for x in lines if x.startswith("Absolute mass error, `clinical` vs"))
    assert f"in {n} conditions" in line
    assert f"`clinical` significantly smaller in {a_smaller}," in line
    assert f"`integrated` in {b_smaller}, no significant difference in {n - a_smaller - b_smaller}" \
        in line
    assert not any(re.match(r"Absolute mass error on ", x) for x in lines)


def test_a_descriptor_equal_to_a_condition_column_is_one_stratum(report):
    folder, _ = report
    strata = set(pd.read_csv(folder / "accuracy.csv")["stratum"])
    assert "velocity_mm_s" in strata and "motion" not in strata


SPEC = """
[study]
name = "m"
seed = 1
repeats = 4
[[phantoms]]
name = "motion"
[grid]
protocol = "calcium_scoring"
velocity_mm_s = [0, 10, 30]
gated = [true, false]
[methods.clinical]
[methods.integrated]
[calibration]
source = "nominal"
[report]
statistics = ["accuracy"]
figures = ["error_vs_condition"]
formats = ["markdown"]
"""


def test_statistics_not_asked_for_are_not_written(tmp_path):
    folder = write_report(tmp_path, results=_results(), spec=parse_spec(SPEC))
    names = {p.name for p in folder.iterdir()}
    assert {"lesions.csv", "accuracy.csv", "mass_error_vs_velocity_mm_s.png"} <= names
    assert not {n for n in names if n.startswith(("risk_", "compare_", "interscan"))}
    assert "error_vs_true_mass.png" not in names


def test_no_lesion_table_for_a_population(tmp_path):
    results = _results().assign(phantom_name="patients")
    folder = write_report(tmp_path, results=results, spec=parse_spec(SPEC))
    assert not (folder / "lesions.csv").exists()
    assert "## Each lesion in each condition" not in (folder / "report.md").read_text()
