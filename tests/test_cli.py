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
