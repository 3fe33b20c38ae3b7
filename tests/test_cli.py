"""The pvcalc command: score, presets, simulate, demo, and its one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import pvcalc
from pvcalc.cli import main


@pytest.fixture
def small_scan():
    rng = np.random.default_rng(3)
    data = rng.normal(40, 10, (6, 48, 48)).astype(np.float32)
    data[2:4, 10:16, 10:16] = 450.0
    data[3, 30:33, 30:34] = 250.0
    return pvcalc.make_scan(data, (3.0, 0.5, 0.5))


def test_score_json_matches_the_library(tmp_path, small_scan, capsys):
    folder = tmp_path / "series"
    pvcalc.write_scan(small_scan, folder)
    assert main(["score", str(folder), "--format", "json", "--calibration", "0.8"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = pvcalc.score(pvcalc.read_scan(folder),
                            calibration=pvcalc.Calibration(c_ha_mg_cm3_per_hu=0.8))
    assert printed["total"]["agatston"] == pytest.approx(expected.total.agatston)
    assert printed["total"]["mass_mg"] == pytest.approx(expected.total.mass_mg)
    # 2 slices of a 3 x 3 mm square at weight 4 plus a 1.5 x 2 mm square at weight 2
    assert printed["total"]["agatston"] == pytest.approx(2 * 9 * 4 + 3 * 2)


def test_score_table_names_the_total_and_risk(tmp_path, small_scan, capsys):
    path = tmp_path / "scan.nii.gz"
    pvcalc.write_scan(small_scan, path)
    assert main(["score", str(path), "--lesions"]) == 0
    out = capsys.readouterr().out
    assert "Agatston score" in out and "risk category" in out and "11-100" in out
    assert "not computed: give --calibration" in out


def test_score_csv_has_one_row_per_lesion(tmp_path, small_scan, capsys):
    path = tmp_path / "scan.nii"
    pvcalc.write_scan(small_scan, path)
    assert main(["score", str(path), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("lesion,") and len(lines) == 1 + 3


@pytest.mark.parametrize("args, message", [
    (["score", "/no/such/path"], "no such file or folder"),
    (["score", "{tmp}", "--calibration", "abc"], "--calibration must be a number"),
    (["score", "{tmp}", "--preset", "nonsense"], "nonsense"),
    (["simulate", "nothing", "--out", "{tmp}/o"], "unknown phantom 'nothing'"),
])
def test_errors_are_one_line_and_exit_2(tmp_path, small_scan, capsys, args, message):
    pvcalc.write_scan(small_scan, tmp_path / "scan.nii.gz")
    args = [a.replace("{tmp}", str(tmp_path / "scan.nii.gz") if a == "{tmp}" else str(tmp_path))
            for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pvcalc: error:") and message in err
    assert len(err.splitlines()) == 1


def test_mixed_dicom_folder_is_a_clear_error_without_traceback(tmp_path, small_scan):
    pvcalc.write_scan(small_scan, tmp_path / "a")
    pvcalc.write_scan(small_scan + 1, tmp_path / "b")
    proc = subprocess.run([sys.executable, "-m", "pvcalc.cli", "score", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "2 series found" in proc.stderr and "--series" in proc.stderr


def test_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in pvcalc.scoring.PRESETS:
        assert out.count(f"{name} ") >= 1


def test_simulate_writes_scans_labels_truth_and_resumes(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "cci", "--repeats", "2", "--out", str(out)]) == 0
    scan = pvcalc.read_scan(out / "scan_002.nii.gz")
    truth = xr.open_dataset(out / "truth_002.nc")
    assert scan.attrs["kvp"] == 120
    np.testing.assert_allclose(truth["volume_mm3"].values[0], np.pi * 2.5 ** 2 * 5.0)
    labels = pvcalc.read_labels(out / "labels_002.nii.gz", like=scan)
    assert sorted(np.unique(labels.values)) == list(range(10))
    table = __import__("pandas").read_csv(out / "truth.csv")
    assert len(table) == 18 and set(table["repeat"]) == {1, 2}
    # a second call with more repeats keeps the first two untouched and adds the third
    before = (out / "scan_001.nii.gz").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["simulate", "cci", "--repeats", "3", "--out", str(out)]) == 0
    assert "already written, skipped" in capsys.readouterr().out
    assert (out / "scan_001.nii.gz").stat().st_mtime_ns == before
    assert len(__import__("pandas").read_csv(out / "truth.csv")) == 27


def test_simulate_replaces_the_remains_of_an_interrupted_repeat(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "cci", "--repeats", "2", "--format", "dicom", "--out", str(out)]) == 0
    complete = sorted(p.name for p in (out / "scan_002").iterdir())
    # an interruption after the DICOM series and before the truth of repeat 2
    (out / "truth_002.nc").unlink()
    for extra in list((out / "scan_002").iterdir())[:3]:
        extra.unlink()
    assert main(["simulate", "cci", "--repeats", "2", "--format", "dicom", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "scan_002").iterdir()) == complete
    table = __import__("pandas").read_csv(out / "truth.csv")
    assert sorted(table["repeat"].unique()) == [1, 2] and len(table) == 18


def test_simulated_dicom_series_scores_like_the_array(tmp_path):
    out = tmp_path / "sim"
    assert main(["simulate", "cci", "--format", "dicom", "--out", str(out)]) == 0
    scan = pvcalc.read_scan(out / "scan_001")
    labels = pvcalc.read_labels(out / "labels_001.nii.gz", like=scan)
    assert pvcalc.score(scan, labels=labels).total.agatston > 0


def test_demo_reports_truth_beside_clinical_scores(tmp_path, capsys):
    assert main(["demo", "--repeats", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("large_hd", "medium_md", "small_ld"):
        assert name in out
    summary = __import__("pandas").read_csv(tmp_path / "per_insert.csv")
    assert len(summary) == 9
    large = summary.set_index("insert").loc["large_hd"]
    assert large["true_volume_mm3"] == pytest.approx(np.pi * 2.5 ** 2 * 5, rel=1e-12)
    assert large["true_mass_mg"] == pytest.approx(0.8 * np.pi * 2.5 ** 2 * 5, rel=1e-12)
    # the 5 mm 800 mg/cm3 insert is found in every scan
    assert large["detected_share"] == 1.0
    assert "relative interscan difference" in out
    _check_report(tmp_path, summary)
    _check_methods_table(out, tmp_path, summary)


def _check_methods_table(out, folder, summary):
    """The every-method table (printed and in report.md) beside per_scan_methods.csv."""
    import pandas as pd

    from pvcalc.methods import METHODS

    with_mass = [name for name, spec in METHODS.items() if "mass_mg" in spec.defines]
    lines = out[out.index("Mass by every method"):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("insert "))
    assert max(len(line) for line in lines[start - 1:start + 14]) <= 100
    printed = {}
    for line in lines[start + 2:]:
        if line.startswith("-"):
            continue
        if not line.strip() or line.startswith("not in the table"):
            break
        name, *cells = line.rsplit(None, len(with_mass) + (0 if line.startswith("error") else 1))
        printed[name.strip()] = cells
    assert list(printed)[:9] == summary["insert"].tolist()
    assert list(printed)[9:] == ["total", "error %"]
    per_method = pd.read_csv(folder / "per_scan_methods.csv")
    assert list(per_method["method"].unique()) == list(METHODS)
    means = per_method.groupby(["insert", "method"])["mass_mg"].mean()
    for _, row in summary.iterrows():
        true, *masses = [float(c) for c in printed[row["insert"]]]
        assert true == pytest.approx(row["true_mass_mg"], abs=0.005 + 1e-9)
        # the clinical column is the clinical mass score of the table above
        assert masses[0] == pytest.approx(row["mass_score_mg_mean"], abs=0.005 + 1e-9)
        for method, value in zip(with_mass, masses):
            assert value == pytest.approx(means[row["insert"], method], abs=0.005 + 1e-9)
    # pvcalc.quantify's clinical rows are pvcalc.score's mass scores, scan by scan
    per_scan = pd.read_csv(folder / "per_scan.csv")
    clinical = per_method[per_method["method"] == "clinical"]
    np.testing.assert_allclose(clinical["mass_mg"], per_scan["mass_score_mg"], rtol=1e-12)
    total = [float(c) for c in printed["total"]]
    assert total[0] == pytest.approx(summary["true_mass_mg"].sum(), abs=0.005 + 1e-9)
    # report.md: the same table
    text = (folder / "report.md").read_text()
    header, rows = _report_rows(text, "## Every method")
    assert [c.strip() for c in header.strip("|").split("|")] == ["insert", "true mass (mg)",
                                                               *with_mass]
    _, clinical_rows = _report_rows(text, "## Per insert")
    mass_score = {r[0]: float(r[7].split()[0]) for r in clinical_rows}
    for r in rows[:9]:
        assert float(r[2]) == mass_score[r[0]]
        assert [float(c) for c in r[1:]] == pytest.approx([float(c) for c in printed[r[0]]],
                                                          abs=1e-9)


def _report_rows(text, section):
    """The body rows of the first Markdown table after heading ``section``, as lists of cells."""
    lines = text[text.index(section):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return lines[start], rows


def _check_report(folder, summary):
    """report.md holds the per-insert table of per_insert.csv (to its printed digits)."""
    import re

    from PIL import Image

    text = (folder / "report.md").read_text()
    assert text.startswith("# pvcalc demo report")
    for words in ("calcium_scoring", "120 kVp", "seed 0", "2 time(s)", "## Totals per scan",
                  "## Timing", "Simulation", "mass_vs_truth.png"):
        assert words in text, words
    header, rows = _report_rows(text, "## Per insert")
    assert len(rows) == 9 and "true mass (mg)" in header
    # cell -> CSV column(s) and the decimals the report prints
    spec = [("diameter_mm", 0), ("density_mg_cm3", 0), ("true_volume_mm3", 2),
            (("volume_score_mm3_mean", "volume_score_mm3_sd"), 1), ("volume_ratio", 2),
            ("true_mass_mg", 2), (("mass_score_mg_mean", "mass_score_mg_sd"), 2),
            ("mass_ratio", 2), (("agatston_mean", "agatston_sd"), 1), ("detected_share", None),
            ("real_agatston_mean", 1), ("real_mass_ratio", 2)]
    csv = summary.set_index("insert")
    for row in rows:
        expected = csv.loc[row[0]]
        for cell, (columns, digits) in zip(row[1:], spec):
            if digits is None:  # a share printed in %
                assert float(cell.rstrip("%")) == pytest.approx(100 * expected[columns], abs=0.5)
                continue
            numbers = [float(v) for v in re.findall(r"-?\d+\.?\d*", cell)]
            columns = columns if isinstance(columns, tuple) else (columns,)
            assert len(numbers) == len(columns), (row[0], cell)
            for number, column in zip(numbers, columns):
                assert number == pytest.approx(expected[column], abs=0.5 * 10 ** -digits + 1e-9)
    per_scan = __import__("pandas").read_csv(folder / "per_scan.csv")
    _, totals = _report_rows(text, "## Totals per scan")
    assert [r[0] for r in totals] == ["1", "2", "truth"]
    for r in totals[:2]:
        scan = per_scan[per_scan["repeat"] == int(r[0])]
        assert float(r[1]) == pytest.approx(scan["agatston"].sum(), abs=0.05)
        assert float(r[3]) == pytest.approx(scan["mass_score_mg"].sum(), abs=0.05)
    assert float(totals[2][3]) == pytest.approx(per_scan.loc[per_scan["repeat"] == 1,
                                                             "true_mass_mg"].sum(), abs=0.05)
    with Image.open(folder / "mass_vs_truth.png") as image:
        image.verify()
        assert image.format == "PNG" and min(image.size) > 300


def _modules_imported(*args):
    """Top-level modules a ``python -m pvcalc.cli ARGS`` process imports (``-X importtime``)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pvcalc.cli", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0]
             for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return names, proc.stdout


@pytest.mark.parametrize("args", [["--help"], ["simulate", "--help"], ["demo", "--help"],
                                  ["score", "--help"], ["quantify", "--help"], ["--version"]])
def test_help_does_not_import_the_numerical_stack(args):
    names, out = _modules_imported(*args)
    assert "argparse" in names  # the check sees imports at all
    assert not names & {"numpy", "numba", "xarray", "pandas", "scipy", "phantoms"}
    assert "pvcalc" in out


def test_protocol_and_phantom_lists_match_the_library():
    import phantoms
    from pvcalc.cli import PHANTOM_SUMMARIES, PROTOCOL_SUMMARIES
    from pvcalc.cli.simulate import PHANTOM_NAMES

    assert tuple(PROTOCOL_SUMMARIES) == tuple(phantoms.PROTOCOLS)
    for name, text in PROTOCOL_SUMMARIES.items():
        p = phantoms.PROTOCOLS[name]
        for fact in (f"{p.kvp:g} kVp", "ECG-gated" if p.gated else "non-gated",
                     f"{p.slice_thickness_mm:g} mm slices every {p.increment_mm:g} mm",
                     f"{p.kernel} kernel", f"noise SD {p.noise_sd_hu:g} HU"):
            assert fact in text, (name, fact)
    assert tuple(PHANTOM_SUMMARIES) == tuple(PHANTOM_NAMES)


def test_simulate_help_lists_protocols_and_phantoms(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = capsys.readouterr().out
    for name in ("calcium_scoring", "low_dose_chest", "thin_slice_cscT", "cci", "cci_large",
                 "motion", "patient"):
        assert f"\n  {name} " in out, name


def test_every_option_of_every_command_states_its_default(capsys):
    import argparse

    from pvcalc.cli import _build_parser

    parser = _build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {"demo", "score", "quantify", "presets", "simulate",
                                     "study", "locate", "twin"}
    for name, sub in commands.choices.items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            start = text.index(action.option_strings[-1] + " ", text.index("options:"))
            entry = text[start:start + 400]
            assert "(default: " in entry or "required" in entry, (name, action.dest)
    # the values argparse would use are the ones printed
    demo = " ".join(commands.choices["demo"].format_help().split())
    assert "(default: 3)" in demo and "(default: calcium_scoring)" in demo


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--protocol", "nonsense"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pvcalc: error:") and "nonsense" in err and "calcium_scoring" in err
    assert len(err.splitlines()) == 1


@pytest.fixture
def series_with_bad_manufacturer(tmp_path, small_scan):
    """A DICOM series whose Manufacturer (VR LO, at most 64 characters) has 80."""
    import warnings

    import pydicom

    folder = tmp_path / "series"
    pvcalc.write_scan(small_scan, folder)
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.Manufacturer = "M" * 80
            ds.save_as(path)
    return folder


def test_warnings_print_one_line_each_before_the_error(series_with_bad_manufacturer):
    proc = subprocess.run([sys.executable, "-m", "pvcalc.cli", "score",
                           str(series_with_bad_manufacturer), "--preset", "nonsense"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    # six files with the same bad value: one warning line, then the one-line error
    assert lines == ["pvcalc: warning: The value length (80) exceeds the maximum length of 64 "
                     "allowed for VR LO.", lines[-1]]
    assert lines[-1].startswith("pvcalc: error: unknown preset 'nonsense'")


def test_verbose_shows_warnings_in_full(series_with_bad_manufacturer, capsys):
    assert main(["score", str(series_with_bad_manufacturer), "--verbose"]) == 0
    err = capsys.readouterr().err
    assert err.count("pvcalc: warning:") == 1
    assert "UserWarning: The value length (80) exceeds" in err and ".py:" in err


def test_the_package_still_exposes_every_public_name():
    # pvcalc/__init__.py imports its names on first use, so that `pvcalc --help` is fast
    code = ("import sys, pvcalc; assert 'numpy' not in sys.modules; "
            "names = getattr(pvcalc, '__all__', None) or [n for n in dir(pvcalc) "
            "if not n.startswith('_')]; [getattr(pvcalc, n) for n in names]; "
            "from pvcalc import score, read_scan, Calibration, stats; print(len(names))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 12
