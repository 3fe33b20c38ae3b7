"""The README's first command runs the built-in study end to end and prints a true summary.

``pvcalc study run quick --out quick-study`` (taken from the README's quick start) runs
here with one in-process worker (the same code path, faster to start); its printed table
is checked against the truth computed with pandas from the stored results.
"""

import contextlib
import io
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pvcalc.cli import main
from pvcalc.study import read_results
from pvcalc.study._run_summary import format_summary, summary_table

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)
            for line in block.strip().splitlines()]


def test_the_readme_quick_start_installs_then_runs_the_quick_study_and_the_tests():
    first, tests = _quick_start_commands()
    assert first == "pip install . && pvcalc study run quick --out quick-study"
    assert tests == 'pip install -e ".[test]" && python -m pytest -q'


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    command = _quick_start_commands()[0].split("&&", 1)[1].strip()
    args = shlex.split(command)
    assert args[:3] == ["pvcalc", "study", "run"]
    folder = tmp_path_factory.mktemp("readme")
    args = [a.replace("quick-study", str(folder / "quick-study")) for a in args[1:]]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = main([*args, "--workers", "1"])
    return status, out.getvalue(), folder / "quick-study"


def _row(text, method):
    line = next(x for x in text.splitlines() if x.startswith(method + " "))
    return [c.split() for c in line.split("|")[1:]]


def test_the_quick_study_prints_each_method_s_mass_error_and_interscan_difference(quick):
    status, text, folder = quick
    assert status == 0
    assert (folder / "report" / "report.md").exists()
    assert f"report: {folder / 'report'} (report.md" in text
    results = read_results(folder)
    mass = results[results["method"] != "swcs"].copy()
    assert "(no mass, not shown: swcs)" in text
    header = next(x for x in text.splitlines() if "calcium_scoring" in x)
    assert header.index("calcium_scoring") < header.index("low_dose_chest")
    mass["err"] = 100 * (mass["mass_mg"] - mass["true_mass_mg"]) / mass["true_mass_mg"]
    for method in dict.fromkeys(mass["method"]):
        cells = _row(text, method)
        for block, protocol in zip(cells, ("calcium_scoring", "low_dose_chest")):
            sub = mass[(mass["method"] == method) & (mass["protocol"] == protocol)]
            for cell, d in zip(block[:2], (3.0, 5.0)):
                want = sub.loc[sub["true_diameter_mm"] == d, "err"].mean()
                assert float(cell) == pytest.approx(want, abs=0.051), (method, protocol, d)
            wide = sub[sub["true_diameter_mm"] >= 3].pivot_table(
                index="lesion", columns="repeat", values="mass_mg").clip(lower=0.0)
            a, b = wide[1], wide[2]
            keep = (a > 0) | (b > 0)
            rel = ((a - b).abs() / ((a + b) / 2) * 100)[keep].mean()
            assert float(block[2]) == pytest.approx(rel, abs=0.051), (method, protocol)


def _results(n_conditions=2, diameters=(1.0, 3.0, 5.0)):
    rows = []
    for c in range(n_conditions):
        for r in (1, 2):
            for i, d in enumerate(diameters):
                for method, gain in (("a", 1.0), ("b", 0.5)):
                    true = 10.0 * d
                    est = true * gain + (r - 1.5) * 2.0 - (12.0 if d < 2 else 0.0)
                    rows.append({"task_key": f"c{c}|r{r}", "condition": f"c{c}",
                                 "protocol": f"p{c}", "repeat": r, "phantom": "cci",
                                 "lesion": f"l{i}", "method": method, "mass_mg": est,
                                 "volume_mm3": np.nan, "true_mass_mg": true,
                                 "true_volume_mm3": d ** 3, "true_diameter_mm": d})
    return pd.DataFrame(rows)


def test_summary_table_against_hand_values():
    table = summary_table(_results())
    assert table.attrs["sizes"] == ["3 mm", "5 mm"]   # the 1 mm lesions are left out
    row = table[(table.method == "b") & (table.group == "p0")].iloc[0]
    # b: 0.5 x truth -+ 1 mg on the two repeats: mean error -50%; interscan 2 / mean
    assert row["3 mm"] == pytest.approx(-50.0) and row["5 mm"] == pytest.approx(-50.0)
    assert row["n 3 mm"] == 2
    assert row["interscan"] == pytest.approx(np.mean([2 / 15 * 100, 2 / 25 * 100]))
    text = format_summary(table)
    assert text.splitlines()[1].split() == ["method", "|", "err", "3", "mm", "err", "5", "mm",
                                           "interscan", "|", "err", "3", "mm", "err", "5",
                                           "mm", "interscan"]


def test_summary_pools_many_sizes_and_conditions_and_keeps_negative_estimates():
    res = _results(n_conditions=4, diameters=(1.0, 1.5, 2.0, 3.0, 4.0))
    table = summary_table(res)
    assert table.attrs["sizes"] == ["all"] and set(table.group) == {"all conditions"}
    a = table[table.method == "a"].iloc[0]
    sub = res[res.method == "a"]
    want = (100 * (sub.mass_mg - sub.true_mass_mg) / sub.true_mass_mg).mean()
    assert a["all"] == pytest.approx(want)          # the negative masses of the small lesions count
    assert (sub.mass_mg < 0).any()


def test_condition_labels_with_a_missing_value_show_a_dash():
    """A static insert has no heart rate (NaN): its label shows '-', it does not crash."""
    import numpy as np
    import pandas as pd

    from pvcalc.study._run_summary import _condition_label

    long = pd.DataFrame({"protocol": ["a", "a", "b"], "heart_rate_bpm": [np.nan, 60.0, 60.0]})
    labels, order = _condition_label(long, ["protocol", "heart_rate_bpm"])
    assert labels.tolist() == ["a, -", "a, 60.0", "b, 60.0"]
    assert order == ["a, -", "a, 60.0", "b, 60.0"]
