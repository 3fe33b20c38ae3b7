"""The study runner: the same results in one process and on a cluster of worker processes,
failures recorded without stopping the study, and nothing written outside the output folder."""

import io
import math
import os
import tempfile

import pandas as pd
import pytest
from _study_specs import TINY

import pvcalc.calibration
from pvcalc.study import (
    expand,
    parse_spec,
    read_failures,
    read_results,
    read_scans,
    run_study,
)


@pytest.fixture(scope="module")
def spec():
    return parse_spec(TINY)


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "study"
    run = run_study(spec, out, workers=1, progress=False)
    assert (run.n_tasks, run.n_completed, run.n_failed) == (4, 4, 0)
    return read_results(out)


def _parquet(df):
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_results_hold_the_truth_and_the_canonical_order(spec, reference, tmp_path):
    assert len(reference) == 4 * 9 * 2
    assert list(reference.columns[:4]) == ["task_key", "condition", "repeat", "seed"]
    keys = [t.key for t in expand(spec)]
    assert reference["task_key"].drop_duplicates().tolist() == sorted(keys)
    first = reference[reference["task_key"] == min(keys)]
    assert first["method"].tolist() == ["clinical", "integrated"] * 9
    assert first["lesion_index"].tolist() == [i for i in range(9) for _ in range(2)]
    # the inserts are cylinders with diameter = length: V = pi d^3 / 4, m = density x V / 1000
    d = first["true_diameter_mm"].to_numpy()
    assert first["true_volume_mm3"].to_numpy() == pytest.approx(math.pi * d ** 3 / 4, rel=1e-12)
    assert first["true_mass_mg"].to_numpy() == pytest.approx(
        first["true_density_mg_cm3"].to_numpy() * math.pi * d ** 3 / 4000, rel=1e-12)
    assert set(first["true_diameter_mm"]) == {1.0, 3.0, 5.0}
    assert str(reference["repeat"].dtype) == "Int64" and str(reference["detected"].dtype) \
        == "boolean"
    assert set(reference["protocol"]) == {"calcium_scoring", "low_dose_chest"}
    assert (reference["protocol_matrix"] == 128).all()
    # every scan is calibrated on its own rods: c_HA differs between scans
    assert reference.groupby("task_key")["c_ha_mg_cm3_per_hu"].nunique().eq(1).all()
    assert reference["c_ha_mg_cm3_per_hu"].nunique() == 4


def test_in_process_and_two_worker_processes_give_the_same_bytes(spec, reference, tmp_path,
                                                                  monkeypatch):
    temp, cwd, parent = tmp_path / "temp", tmp_path / "cwd", tmp_path / "parent"
    for folder in (temp, cwd, parent):
        folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))      # the worker processes inherit it
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(cwd)
    out = parent / "study"
    run = run_study(spec, out, workers=2, batch_size=1, progress=False)
    assert (run.n_completed, run.n_failed) == (4, 0)
    got = read_results(out)
    pd.testing.assert_frame_equal(got, reference, check_exact=True)
    assert got.equals(reference) and _parquet(got) == _parquet(reference)
    assert len(list((out / "results").iterdir())) == 4          # batch_size=1: a part per task
    # nothing outside the output folder, and only the store's own files inside it
    assert list(temp.iterdir()) == [] and list(cwd.iterdir()) == []
    assert [p.name for p in parent.iterdir()] == ["study"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "results", "run.lock",
                                                     "spec.toml", "study.json"]


def test_a_failing_task_is_recorded_and_the_study_continues(spec, reference, tmp_path,
                                                            monkeypatch):
    real = pvcalc.calibration.rod_calibration

    def flaky(scan, phantom, **kw):
        if scan.attrs["protocol"] == "low_dose_chest" and scan.attrs["repeat"] == 1:
            raise RuntimeError("rod ROI lost in this scan")
        return real(scan, phantom, **kw)

    monkeypatch.setattr(pvcalc.calibration, "rod_calibration", flaky)
    out = tmp_path / "study"
    log = io.StringIO()
    run = run_study(spec, out, workers=1, progress="lines", stream=log)
    assert (run.n_completed, run.n_failed) == (3, 1)
    failed = next(t.key for t in expand(spec)
                  if t.key.startswith("cci|low_dose_chest|r002"))
    assert f"task {failed} failed: RuntimeError: rod ROI lost in this scan" in log.getvalue()
    failures = read_failures(out)
    assert failures["task_key"].tolist() == [failed]
    assert failures["error"].iloc[0] == "RuntimeError: rod ROI lost in this scan"
    assert "in flaky" in failures["traceback"].iloc[0]
    partial = read_results(out)
    expected = reference[reference["task_key"] != failed].reset_index(drop=True)
    pd.testing.assert_frame_equal(partial, expected, check_exact=True)
    assert len(read_scans(out)) == 3
    # fixed: a rerun runs only the failed task, and the study is then complete
    monkeypatch.setattr(pvcalc.calibration, "rod_calibration", real)
    again = run_study(spec, out, workers=1, progress=False)
    assert (again.n_skipped, again.n_completed, again.n_failed) == (3, 1, 0)
    assert read_failures(out).empty
    pd.testing.assert_frame_equal(read_results(out), reference, check_exact=True)


def test_an_existing_cluster_runs_the_same_study(spec, reference, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0",
                      scheduler_kwargs={"dashboard": False}) as cluster:
        run = run_study(spec, tmp_path / "study", scheduler=cluster.scheduler_address,
                        progress=False)
        assert len(cluster.workers) == 2        # the cluster's own workers did the work
    assert (run.n_completed, run.n_failed) == (4, 0)
    pd.testing.assert_frame_equal(read_results(tmp_path / "study"), reference, check_exact=True)


def test_a_study_without_work_left_starts_no_cluster(spec, reference, tmp_path):
    out = tmp_path / "study"
    run_study(spec, out, workers=1, progress=False)
    log = io.StringIO()
    again = run_study(spec, out, workers=1, progress="lines", stream=log)
    assert (again.n_skipped, again.n_completed) == (4, 0)
    assert "4 already complete, skipped" in log.getvalue()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "not both"),
    ({"scheduler": "localhost"}, "dask scheduler address"),
    ({"workers": 0}, "workers must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"progress": "fancy"}, "progress must be"),
])
def test_bad_arguments_are_refused_before_any_work(spec, tmp_path, kwargs, message):
    out = tmp_path / "study"
    with pytest.raises(ValueError, match=message):
        run_study(spec, out, **kwargs)
    assert not os.path.exists(out)


_WORKER_SETTINGS_SCRIPT = """
import json, os, sys, tempfile
from pathlib import Path
import numba            # imported by the main module before any worker starts, as the
import pvcalc           # pvcalc command and scripts do (spawn imports it again)
from pvcalc.study import runner

def settings(dask_worker):
    import os, numba
    return [numba.get_num_threads(), os.environ.get("MALLOC_MMAP_THRESHOLD_"),
            os.environ.get("MALLOC_TRIM_THRESHOLD_"), "profile" in dask_worker.periodic_callbacks]

if __name__ == "__main__":
    before = {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_",
                                             "MALLOC_TRIM_THRESHOLD_")}
    with runner._client(2, None, Path(tempfile.mkdtemp())) as client:
        workers = list(client.run(settings).values())
    after = {k: os.environ.get(k) for k in before}
    print(json.dumps({"workers": workers, "before": before, "after": after}))
"""


def test_local_workers_get_one_numba_thread_the_allocator_settings_and_no_profiler(tmp_path):
    """Set before the worker processes start, so a main module that imported numba does
    not leave them with numba's default thread count; this process's environment is left
    as it was."""
    import json
    import subprocess
    import sys

    script = tmp_path / "workers.py"
    script.write_text(_WORKER_SETTINGS_SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    env["NUMBA_NUM_THREADS"] = "2"       # the main process's own count
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    mib256 = str(256 * 2 ** 20)
    # one numba thread, the allocator thresholds, no statistical profiler
    assert out["workers"] == [[1, mib256, mib256, False], [1, mib256, mib256, False]]
    assert out["after"] == out["before"] == {"NUMBA_NUM_THREADS": "2",
                                             "MALLOC_MMAP_THRESHOLD_": None,
                                             "MALLOC_TRIM_THRESHOLD_": None}
