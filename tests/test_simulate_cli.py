"""``pvcalc simulate``: the output folder contract (run.json, lock, verified repeats, --force).

Every run here uses the named phantom ``cci`` with the ``calcium_scoring`` preset
(11 slices of 512 x 512). Reference outputs are independent: a second,
uninterrupted run in another folder, or ``phantoms.simulate_repeat`` itself.
"""

import datetime
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pydicom
import pytest

import phantoms
import pvcalc
from pvcalc.cli import main

CLI = [sys.executable, "-m", "pvcalc.cli"]


def _tree(folder):
    """{relative path: bytes} of every file below ``folder`` (hidden ones included)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            else:
                with open(path, "rb") as fh:
                    out[rel] = fh.read()
    return out


def _copy(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _simulated(seed, index):
    scan, _ = phantoms.simulate_repeat(phantoms.cci_phantom(), phantoms.get_protocol(
        "calcium_scoring"), seed=seed, index=index)
    return scan


class _Lines:
    """Lines of a subprocess's stdout, read in a thread so that waiting can time out."""

    def __init__(self, proc):
        self.queue = queue.Queue()
        self.lines = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def wait_for(self, prefix, timeout=300):
        while True:
            line = self.queue.get(timeout=timeout)
            if line is None:
                return False
            self.lines.append(line)
            if line.startswith(prefix):
                return True


@pytest.fixture(scope="module")
def finished_nifti(tmp_path_factory):
    out = tmp_path_factory.mktemp("nifti") / "run"
    assert main(["simulate", "cci", "--repeats", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def finished_dicom(tmp_path_factory):
    out = tmp_path_factory.mktemp("dicom") / "run"
    assert main(["simulate", "cci", "--format", "dicom", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_bytes_of_an_uninterrupted_run(tmp_path):
    args = ["simulate", "cci", "--repeats", "4", "--format", "dicom", "--seed", "5"]
    out = tmp_path / "killed"
    proc = subprocess.Popen(CLI + args + ["--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lines = _Lines(proc)
    try:
        assert lines.wait_for("  scan_001:"), "".join(lines.lines)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be interrupted"
    resumed = subprocess.run(CLI + args + ["--out", str(out)], capture_output=True, text=True,
                             timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "scan_001: already written, skipped" in resumed.stdout
    reference = tmp_path / "reference"
    assert main(args + ["--out", str(reference)]) == 0
    got, want = _tree(out), _tree(reference)
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []


def test_resume_does_not_simulate_finished_repeats(tmp_path, finished_nifti, monkeypatch):
    out = _copy(finished_nifti, tmp_path / "run")
    simulated = []
    one, several = phantoms.simulate_repeat, phantoms.repeat

    def spy_one(*args, index, **kw):
        simulated.append(index)
        return one(*args, index=index, **kw)

    def spy_several(*args, n_repeats, **kw):
        simulated.extend(range(n_repeats))
        return several(*args, n_repeats=n_repeats, **kw)

    monkeypatch.setattr(phantoms, "simulate_repeat", spy_one)
    monkeypatch.setattr(phantoms, "repeat", spy_several)
    assert main(["simulate", "cci", "--repeats", "3", "--out", str(out)]) == 0
    assert simulated == [2]
    np.testing.assert_array_equal(pvcalc.read_scan(out / "scan_003.nii.gz").values,
                                  _simulated(0, 2).values)


@pytest.mark.parametrize("change, differs", [
    (["--seed", "8"], "seed"),
    (["--protocol", "low_dose_chest"], "protocol"),
    (["--format", "dicom"], "format"),
])
def test_a_different_run_into_a_finished_folder_is_refused(tmp_path, finished_nifti, capsys,
                                                            change, differs):
    out = _copy(finished_nifti, tmp_path / "run")
    before = _tree(out)
    capsys.readouterr()
    assert main(["simulate", "cci", "--repeats", "2", *change, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pvcalc: error:") and len(err.strip().splitlines()) == 1
    assert "differs" in err and differs in err and "--force" in err
    assert _tree(out) == before


def test_another_phantom_into_a_finished_folder_is_refused(tmp_path, finished_nifti, capsys):
    out = _copy(finished_nifti, tmp_path / "run")
    before = _tree(out)
    capsys.readouterr()
    assert main(["simulate", "motion", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "phantom" in err and "'cci'" in err and "'motion'" in err and "--force" in err
    assert _tree(out) == before


def test_a_protocol_with_the_same_name_but_other_fields_is_refused(tmp_path, finished_nifti):
    from pvcalc.cli.simulate import write_simulation

    out = _copy(finished_nifti, tmp_path / "run")
    before = _tree(out)
    quiet = phantoms.get_protocol("calcium_scoring", noise_sd_hu=0.0)
    assert quiet.name == "calcium_scoring"
    with pytest.raises(ValueError, match=r"protocol\.noise_sd_hu.*20.*0\.0.*--force"):
        write_simulation("cci", protocol=quiet, repeats=2, out=out, echo=lambda *a: None)
    assert _tree(out) == before


def test_a_run_of_another_pvcalc_version_is_refused(tmp_path, finished_nifti, monkeypatch,
                                                    capsys):
    out = _copy(finished_nifti, tmp_path / "run")
    before = _tree(out)
    monkeypatch.setattr(pvcalc, "__version__", "99.0")
    capsys.readouterr()
    assert main(["simulate", "cci", "--repeats", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pvcalc_version" in err and "99.0" in err
    assert _tree(out) == before


def test_force_replaces_the_run_and_keeps_foreign_files(tmp_path, finished_nifti):
    out = _copy(finished_nifti, tmp_path / "run")
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "scan_001.nii.gz").write_bytes(b"not a pvcalc output")
    old = (out / "scan_001.nii.gz").read_bytes()
    assert main(["simulate", "cci", "--seed", "1", "--force", "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "mine" / "scan_001.nii.gz").read_bytes() == b"not a pvcalc output"
    # repeat 2 belonged to the replaced run
    assert not any(p.name.startswith(("scan_002", "labels_002", "truth_002"))
                   for p in out.iterdir())
    assert (out / "scan_001.nii.gz").read_bytes() != old
    np.testing.assert_array_equal(pvcalc.read_scan(out / "scan_001.nii.gz").values,
                                  _simulated(1, 0).values)
    assert json.loads((out / "run.json").read_text())["spec"]["seed"] == 1
    table = __import__("pandas").read_csv(out / "truth.csv")
    assert set(table["repeat"]) == {1}


def test_two_runs_into_one_folder_at_once_one_is_refused(tmp_path, capsys):
    out = tmp_path / "shared"
    first = subprocess.Popen(CLI + ["simulate", "cci", "--repeats", "3", "--seed", "7",
                                    "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = _Lines(first)
    try:
        assert lines.wait_for("  scan_001:"), "".join(lines.lines)
        capsys.readouterr()
        # the first run is now between repeats 1 and 3 and holds the folder
        second = main(["simulate", "cci", "--repeats", "3", "--seed", "8", "--out", str(out)])
        err = capsys.readouterr().err
        assert first.wait(timeout=600) == 0
    finally:
        first.kill()
        first.wait()
    assert second == 2
    assert "another pvcalc simulate run holds" in err
    # the first run's outputs are complete: a rerun verifies every repeat and redoes none
    assert main(["simulate", "cci", "--repeats", "3", "--seed", "7", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("already written, skipped") == 3
    np.testing.assert_array_equal(pvcalc.read_scan(out / "scan_003.nii.gz").values,
                                  _simulated(7, 2).values)


def test_a_symlinked_nifti_scan_is_replaced_not_written_through(tmp_path, finished_nifti):
    out = _copy(finished_nifti, tmp_path / "run")
    outside = tmp_path / "outside.nii.gz"
    outside.write_bytes(b"precious")
    # the remains of an interrupted repeat 1 whose scan file is a link out of the folder
    (out / "truth_001.nc").unlink()
    (out / "scan_001.nii.gz").unlink()
    (out / "scan_001.nii.gz").symlink_to(outside)
    assert main(["simulate", "cci", "--repeats", "2", "--out", str(out)]) == 0
    assert outside.read_bytes() == b"precious"
    assert not (out / "scan_001.nii.gz").is_symlink()
    assert (out / "scan_001.nii.gz").read_bytes() == (finished_nifti / "scan_001.nii.gz").read_bytes()


def test_symlinked_temporary_names_are_not_followed(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("truth_001.nc.part", "truth.csv.part"):
        (outside / name).write_bytes(b"precious")
        (out / name).symlink_to(outside / name)
    assert main(["simulate", "cci", "--out", str(out)]) == 0
    assert _tree(outside) == {"truth_001.nc.part": b"precious", "truth.csv.part": b"precious"}
    for name in ("truth_001.nc", "truth.csv"):
        assert (out / name).is_file() and not (out / name).is_symlink()


def test_a_symlinked_dicom_folder_is_replaced_not_emptied(tmp_path, finished_dicom):
    out = _copy(finished_dicom, tmp_path / "run")
    outside = tmp_path / "outside"
    shutil.copytree(out / "scan_001", outside)
    (outside / "keep.txt").write_text("mine")
    before = _tree(outside)
    (out / "truth_001.nc").unlink()
    shutil.rmtree(out / "scan_001")
    (out / "scan_001").symlink_to(outside, target_is_directory=True)
    assert main(["simulate", "cci", "--format", "dicom", "--out", str(out)]) == 0
    assert _tree(outside) == before
    assert not (out / "scan_001").is_symlink()
    assert _tree(out / "scan_001") == _tree(finished_dicom / "scan_001")


def _exit_status(args):
    try:
        return main(args)
    except SystemExit as stop:  # argparse rejects some values itself
        return stop.code


@pytest.mark.parametrize("args, message", [
    (["simulate", "nothing"], "unknown phantom 'nothing'"),
    (["simulate", "cci", "--protocol", "no_such_protocol"], "no_such_protocol"),
    (["simulate", "cci", "--seed", "-1"], "seed must be a non-negative integer"),
])
def test_invalid_input_creates_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "a" / "b"
    assert _exit_status(args + ["--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_invalid_protocol_object_creates_nothing(tmp_path):
    from pvcalc.cli.simulate import write_simulation

    with pytest.raises(TypeError, match="protocol must be a preset name or a phantoms.Protocol"):
        write_simulation("cci", protocol=3, out=tmp_path / "o", echo=lambda *a: None)
    with pytest.raises(ValueError, match="repeats must be an integer from 1 to 999"):
        write_simulation("cci", repeats=1000, out=tmp_path / "o", echo=lambda *a: None)
    assert list(tmp_path.iterdir()) == []


def test_same_seed_dicom_runs_give_the_same_bytes(tmp_path, finished_dicom):
    out = tmp_path / "again"
    assert main(["simulate", "cci", "--format", "dicom", "--out", str(out)]) == 0
    got, want = _tree(out), _tree(finished_dicom)
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []
    ds = pydicom.dcmread(out / "scan_001" / "slice_00001.dcm")
    assert (ds.StudyDate, ds.StudyTime) == ("20000101", "000000")  # the documented default
    # another seed gives other UIDs
    other = tmp_path / "other"
    assert main(["simulate", "cci", "--format", "dicom", "--seed", "1", "--out", str(other)]) == 0
    assert pydicom.dcmread(other / "scan_001" / "slice_00001.dcm").SeriesInstanceUID \
        != ds.SeriesInstanceUID


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_finished_scan_is_detected_and_redone(tmp_path, finished_nifti, capsys, damage):
    out = _copy(finished_nifti, tmp_path / "run")
    path = out / "scan_002.nii.gz"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2:]
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["simulate", "cci", "--repeats", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "scan_001: already written, skipped" in printed
    assert "scan_002: already written, skipped" not in printed
    assert path.read_bytes() == (finished_nifti / "scan_002.nii.gz").read_bytes()


def test_write_scan_dicom_date_and_uids_are_parameters(tmp_path):
    scan = pvcalc.make_scan(np.full((2, 4, 4), 40.0), (3.0, 0.5, 0.5))
    when = datetime.datetime(2001, 2, 3, 4, 5, 6)
    a = pvcalc.write_scan(scan, tmp_path / "a", uid_seed="x", study_datetime=when)
    b = pvcalc.write_scan(scan, tmp_path / "b", uid_seed="x", study_datetime=when)
    assert _tree(a) == _tree(b)
    ds = pydicom.dcmread(os.path.join(a, "slice_00001.dcm"))
    assert (ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.ContentTime) == (
        "20010203", "040506", "20010203", "040506")
    # by default: the current date, as before
    before = datetime.date.today().strftime("%Y%m%d")
    c = pvcalc.write_scan(scan, tmp_path / "c")
    after = datetime.date.today().strftime("%Y%m%d")
    assert pydicom.dcmread(os.path.join(c, "slice_00001.dcm")).StudyDate in {before, after}
    with pytest.raises(TypeError, match="study_datetime"):
        pvcalc.write_scan(scan, tmp_path / "d", study_datetime="2001-02-03")
    with pytest.raises(ValueError, match="study_datetime"):
        pvcalc.write_scan(scan, tmp_path / "e.nii.gz", study_datetime=when)


def test_outputs_without_run_json_are_refused_unless_forced(tmp_path, finished_nifti, capsys):
    out = _copy(finished_nifti, tmp_path / "run")
    (out / "run.json").unlink()
    before = _tree(out)
    capsys.readouterr()
    assert main(["simulate", "cci", "--repeats", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no run.json" in err and "--force" in err
    assert _tree(out) == before


def test_a_symlinked_lock_file_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    (out / "run.lock").symlink_to(outside)
    assert main(["simulate", "cci", "--out", str(out)]) == 2
    assert "run.lock is a symbolic link" in capsys.readouterr().err
    assert outside.read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["run.lock"]
