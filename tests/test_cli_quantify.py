"""``pvcalc quantify``: the library's table on the command line, and its one-line errors."""

import io
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import phantoms
import pvcalc
from phantoms.truth import lesion_table
from pvcalc.cli import METHOD_NAMES, main
from pvcalc.methods import METHODS
from pvcalc.rois import truth_roi_labels

#: The nine inserts of the calcification-insert replica (phantoms.cci_phantom), in its
#: order: d = L = 5 / 3 / 1 mm (large / medium / small) at 800 / 400 / 200 mg HA/cm3.
INSERTS = tuple(f"{size}_{grade}" for grade in ("hd", "md", "ld")
                for size in ("large", "medium", "small"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The insert replica on a 176 x 176 matrix (86 mm field, all inserts and rods), as files."""
    folder = tmp_path_factory.mktemp("quantify")
    protocol = phantoms.get_protocol("calcium_scoring", matrix=176)
    scan, truth = phantoms.simulate(phantoms.cci_phantom(), protocol, seed=3)
    pvcalc.write_scan(scan, folder / "scan.nii.gz")
    rois = lesion_table(truth)[["lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm"]]
    rois.assign(radius_mm=5.0).to_csv(folder / "rois.csv", index=False)
    labels = truth_roi_labels(scan, truth)
    np.save(folder / "labels.npy", labels.values)
    mask = np.zeros(scan.shape, dtype=np.int32)
    mask[:, :, : scan.sizes["x"] // 2] = 1    # the half with the large_md insert (x < 0)
    np.save(folder / "mask.npy", mask)
    (folder / "cal.json").write_text(json.dumps({"c_ha_mg_cm3_per_hu": 0.79}))
    return folder


def _run(args):
    """Exit status, stdout and stderr of ``pvcalc ARGS`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = main(args)
    except SystemExit as exc:     # argparse's usage errors
        code = exc.code
    finally:
        sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


def _library(folder, lesions, **kwargs):
    scan = pvcalc.read_scan(folder / "scan.nii.gz")
    if lesions == "rois":
        lesions = pd.read_csv(folder / "rois.csv", dtype={"lesion": str})
    elif lesions == "labels":
        lesions = pvcalc.read_labels(folder / "labels.npy", like=scan)
    if "mask" in kwargs:
        kwargs["mask"] = pvcalc.read_labels(kwargs["mask"], like=scan)
    return pvcalc.quantify(scan, lesions, **kwargs)


def test_csv_of_an_roi_table_equals_the_library(files):
    code, out, err = _run(["quantify", str(files / "scan.nii.gz"), "--rois",
                           str(files / "rois.csv"), "--calibration", "0.8", "--format", "csv"])
    assert (code, err) == (0, "")
    expected = _library(files, "rois", calibration=pvcalc.Calibration(0.8))
    assert out == expected.to_csv(index=False)
    table = pd.read_csv(io.StringIO(out))
    assert len(table) == len(INSERTS) * len(METHODS)     # one row per lesion and method
    assert table["lesion"].unique().tolist() == list(INSERTS)
    assert table["method"].unique().tolist() == list(METHODS)


def test_csv_of_a_label_image_with_a_calibration_file_equals_the_library(files):
    code, out, _ = _run(["quantify", str(files / "scan.nii.gz"), "--labels",
                         str(files / "labels.npy"), "--methods", "clinical, integrated",
                         "--calibration", str(files / "cal.json"), "--format", "csv"])
    assert code == 0
    expected = _library(files, "labels", methods=["clinical", "integrated"],
                        calibration=pvcalc.Calibration(0.79))
    assert out == expected.to_csv(index=False)
    assert len(pd.read_csv(io.StringIO(out))) == 2 * len(INSERTS)


def test_candidates_inside_a_mask_equal_the_library(files):
    code, out, _ = _run(["quantify", str(files / "scan.nii.gz"), "--candidates", "--mask",
                         str(files / "mask.npy"), "--methods", "clinical", "--format", "csv"])
    assert code == 0
    expected = _library(files, "candidates", methods="clinical", mask=files / "mask.npy")
    assert out == expected.to_csv(index=False)
    # without the mask there are more candidates (the other inserts and the rods' edges)
    _, everywhere, _ = _run(["quantify", str(files / "scan.nii.gz"), "--candidates",
                             "--methods", "clinical", "--format", "csv"])
    assert 0 < len(expected) < len(pd.read_csv(io.StringIO(everywhere)))


def test_json_holds_the_library_values_with_null_for_nan(files):
    code, out, _ = _run(["quantify", str(files / "scan.nii.gz"), "--rois",
                         str(files / "rois.csv"), "--format", "json"])
    assert code == 0
    printed = json.loads(out)     # strict JSON: no NaN
    expected = _library(files, "rois")
    assert printed["c_ha_mg_cm3_per_hu"] is None
    assert printed["methods"] == list(METHODS)
    assert len(printed["results"]) == len(expected)
    for record, (_, row) in zip(printed["results"], expected.iterrows()):
        assert list(record) == list(expected.columns)
        for column, value in record.items():
            if pd.isna(row[column]):
                assert value is None, column
            elif isinstance(value, float):
                assert value == float(row[column]), column
            else:
                assert value == row[column], column
    # without a calibration no mass, and every empty mass says why
    masses = [r for r in printed["results"] if r["mass_mg"] is None]
    assert len(masses) == len(expected)
    assert all("no calibration" in r["reason"] for r in masses)


def test_table_without_calibration_says_why_masses_are_empty(files):
    code, out, _ = _run(["quantify", str(files / "scan.nii.gz"), "--rois",
                         str(files / "rois.csv"), "--methods", "clinical,adaptive_groen"])
    assert code == 0
    assert "mass calibration: none, so no masses (give --calibration C_HA" in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["lesion", "method",
                                                                           "volume_mm3"])
    rows = [line.split() for line in lines[start + 1:start + 1 + 2 * len(INSERTS)]]
    assert [r[:2] for r in rows] == [[name, m] for name in INSERTS
                                     for m in ("clinical", "adaptive_groen")]
    assert all(r[3] == "-" for r in rows)                      # no mass ...
    notes = {r[-1] for r in rows}
    assert notes == {"[1]"}                                    # ... and one note says why
    assert "[1] no calibration: the mass needs one; give --calibration C_HA or FILE.json" in out
    # the clinical volume of the 5 mm, 800 mg/cm3 insert: blur makes it larger than the truth
    large = next(r for r in rows if r[:2] == ["large_hd", "clinical"])
    assert float(large[2]) > math.pi * 2.5 ** 2 * 5


def test_table_with_calibration_prints_masses(files):
    code, out, _ = _run(["quantify", str(files / "scan.nii.gz"), "--rois",
                         str(files / "rois.csv"), "--methods", "clinical",
                         "--calibration", "0.8"])
    assert code == 0
    assert "c_HA = 0.8 mg HA cm^-3 HU^-1" in out and "lesions: 9 from the ROIs of" in out
    expected = _library(files, "rois", methods="clinical", calibration=pvcalc.Calibration(0.8))
    for _, row in expected.iterrows():
        assert f" {row['mass_mg']:.2f} " in out


def test_a_table_without_lesions_gives_no_rows(files):
    (files / "none.csv").write_text("lesion,centre_z_mm,centre_y_mm,centre_x_mm,radius_mm\n")
    args = ["quantify", str(files / "scan.nii.gz"), "--rois", str(files / "none.csv"),
            "--methods", "clinical,mesh"]
    code, out, _ = _run(args)
    assert code == 0 and "lesions: 0 from the ROIs of" in out and out.endswith("no lesions\n")
    code, out, _ = _run([*args, "--format", "json"])
    assert code == 0 and json.loads(out)["results"] == []
    assert json.loads(out)["methods"] == ["clinical", "mesh"]


@pytest.mark.parametrize("extra, message", [
    (["--rois", "{missing}"], "--rois {missing} lacks the column(s) centre_x_mm, radius_mm; "
                              "expected the columns lesion, centre_z_mm, centre_y_mm, "
                              "centre_x_mm, radius_mm (and optionally radius_z_mm)"),
    (["--rois", "{bad}"], "is not a readable CSV table"),
    (["--rois", "{empty}"], "is not a readable CSV table"),
    (["--rois", "{dir}/nothing.csv"], "--rois {dir}/nothing.csv: no such file"),
    (["--rois", "{rois}", "--methods", "adaptive_gron"],
     "unknown method 'adaptive_gron' (did you mean 'adaptive_groen'?)"),
    (["--rois", "{rois}", "--methods", "clinical,,mesh"], "--methods must be 'all' or method"),
    (["--rois", "{rois}", "--methods", "integrated"],
     "method 'integrated' needs a calibration (its results depend on c_HA)"),
    (["--rois", "{rois}", "--labels", "{labels}"],
     "argument --labels: not allowed with argument --rois"),
    (["--candidates", "--rois", "{rois}"], "not allowed with argument"),
    ([], "one of the arguments --rois --labels --candidates --phantom is required"),
    (["--labels", "{labels}", "--mask", "{labels}"], "--mask is only used with --candidates"),
    (["--rois", "{rois}", "--calibration", "-1"], "--calibration must be a positive, finite"),
])
def test_bad_input_is_one_error_line_and_exit_2(files, extra, message):
    (files / "missing.csv").write_text("lesion,centre_z_mm,centre_y_mm\na,0,0\n")
    (files / "bad.csv").write_text('lesion,centre_z_mm\n"a,0\n')
    (files / "empty.csv").write_text("")
    names = {"dir": str(files), "rois": str(files / "rois.csv"),
             "labels": str(files / "labels.npy"), "missing": str(files / "missing.csv"),
             "bad": str(files / "bad.csv"), "empty": str(files / "empty.csv")}
    args = [a.format(**names) for a in extra]
    code, out, err = _run(["quantify", str(files / "scan.nii.gz"), *args])
    assert code == 2 and out == ""
    assert err.startswith("pvcalc: error: ") and len(err.strip().splitlines()) == 1
    assert message.format(**names) in err


def test_errors_print_no_traceback(files):
    for extra in (["--rois", str(files / "rois.csv"), "--methods", "volume_fraction"],
                  ["--rois", str(files / "scan.nii.gz")]):
        proc = subprocess.run([sys.executable, "-m", "pvcalc.cli", "quantify",
                               str(files / "scan.nii.gz"), *extra],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert proc.stderr.startswith("pvcalc: error: ") and proc.stderr.count("\n") == 1


def test_the_help_lists_every_method():
    assert METHOD_NAMES == tuple(METHODS)
    code, out, _ = _run(["quantify", "--help"])
    assert code == 0
    text = " ".join(out.split())
    assert "methods (--methods): " + ", ".join(METHODS) in text
