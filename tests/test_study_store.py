"""The result store: a killed run resumes without losing or mixing in anything, damaged parts
are redone, another study or a second run in the same folder is refused."""

import io
import json
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from _study_specs import TINY

from pvcalc.study import load_spec, parse_spec, read_results, run_study


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(folder, results) of the tiny study run in one go."""
    out = tmp_path_factory.mktemp("finished") / "study"
    run_study(parse_spec(TINY), out, workers=1, batch_size=2, progress=False)
    return out, read_results(out)


def _copy(finished, tmp_path):
    out = tmp_path / "study"
    shutil.copytree(finished[0], out)
    return out


def _manifest(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _resume(out):
    log = io.StringIO()
    run = run_study(parse_spec(TINY), out, workers=1, batch_size=2, progress="lines",
                    stream=log)
    return run, log.getvalue()


def test_a_killed_run_resumes_and_loses_nothing(finished, tmp_path):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(TINY)
    out = tmp_path / "study"
    proc = subprocess.Popen([sys.executable, "-m", "pvcalc.cli", "study", "run", str(spec_file),
                             "--out", str(out), "--workers", "1", "--batch-size", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not (out / "results").is_dir() or not any((out / "results").iterdir()):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no part file appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be interrupted"
    listed = {k for e in _manifest(out) for k in e["tasks"]}
    assert len(listed) < 4
    run, _ = _resume(out)
    assert run.n_skipped == len(listed) and run.n_skipped + run.n_completed == 4
    pd.testing.assert_frame_equal(read_results(out), finished[1], check_exact=True)


def test_a_truncated_part_is_detected_and_its_tasks_redone(finished, tmp_path):
    out = _copy(finished, tmp_path)
    entry = _manifest(out)[0]
    part = out / entry["part"]
    part.write_bytes(part.read_bytes()[: entry["size"] // 2])
    with pytest.raises(ValueError, match="does not match the manifest"):
        read_results(out)
    run, log = _resume(out)
    assert f"{entry['part']} has {entry['size'] // 2} bytes, the manifest records" in log
    assert (run.n_skipped, run.n_completed) == (4 - len(entry["tasks"]), len(entry["tasks"]))
    pd.testing.assert_frame_equal(read_results(out), finished[1], check_exact=True)


def test_a_changed_byte_is_detected_by_its_hash(finished, tmp_path):
    out = _copy(finished, tmp_path)
    entry = _manifest(out)[1]
    data = bytearray((out / entry["part"]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / entry["part"]).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="size or SHA-256 changed"):
        read_results(out)
    run, log = _resume(out)
    assert f"the SHA-256 of {entry['part']} differs from the manifest" in log
    assert run.n_completed == len(entry["tasks"])
    pd.testing.assert_frame_equal(read_results(out), finished[1], check_exact=True)


def test_an_unlisted_part_and_a_torn_manifest_line_are_not_mixed_in(finished, tmp_path):
    out = _copy(finished, tmp_path)
    entry = _manifest(out)[0]
    stray = out / "results" / "part-00000000-00099.parquet"
    shutil.copy(out / entry["part"], stray)
    with open(out / "manifest.jsonl", "a") as fh:
        fh.write('{"part": "results/part-00000000-00099.parquet", "tasks": ["cci|')
    pd.testing.assert_frame_equal(read_results(out), finished[1], check_exact=True)
    run, log = _resume(out)
    assert run.n_completed == 0 and not stray.exists()
    assert "part-00000000-00099.parquet is not in the manifest" in log
    assert len(_manifest(out)) == 2          # every line parses again


def test_a_changed_spec_is_refused_and_force_starts_over(finished, tmp_path):
    out = _copy(finished, tmp_path)
    (out / "notes.txt").write_text("mine")
    changed = TINY.replace("repeats = 2", "repeats = 1").replace(
        '["calcium_scoring", "low_dose_chest"]', '"calcium_scoring"')
    with pytest.raises(ValueError) as info:
        run_study(parse_spec(changed), out, workers=1, progress=False)
    message = str(info.value)
    assert "holds a different study" in message and "--force" in message
    assert "spec.study.repeats 2 there, 1 here" in message
    assert "spec.grid.protocol ['calcium_scoring', 'low_dose_chest'] there" in message
    pd.testing.assert_frame_equal(read_results(out), finished[1], check_exact=True)
    run = run_study(parse_spec(changed), out, workers=1, progress=False, force=True)
    assert (run.n_tasks, run.n_completed) == (1, 1)
    assert (out / "notes.txt").read_text() == "mine"
    assert load_spec(out).repeats == 1 and read_results(out)["task_key"].nunique() == 1


def test_two_runs_into_one_folder_are_refused_by_the_lock(finished, tmp_path):
    out = _copy(finished, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import fcntl, os, sys, time\n"
                                f"fd = os.open({str(out / 'run.lock')!r}, os.O_RDWR)\n"
                                "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                                "print('locked', flush=True)\ntime.sleep(60)")],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(OSError, match="another pvcalc study run holds"):
            run_study(parse_spec(TINY), out, workers=1, progress=False, force=True)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    pd.testing.assert_frame_equal(read_results(out), finished[1], check_exact=True)


def test_links_out_of_the_folder_are_refused(finished, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.jsonl").write_text("precious\n")
    out = _copy(finished, tmp_path)
    shutil.rmtree(out / "results")
    (out / "results").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError, match="results is not a folder"):
        run_study(parse_spec(TINY), out, workers=1, progress=False)
    (out / "results").unlink()
    (out / "manifest.jsonl").unlink()
    (out / "manifest.jsonl").symlink_to(outside / "manifest.jsonl")
    with pytest.raises(OSError, match="manifest.jsonl is not a plain file"):
        run_study(parse_spec(TINY), out, workers=1, progress=False)
    assert sorted(p.name for p in outside.iterdir()) == ["manifest.jsonl"]
    assert (outside / "manifest.jsonl").read_text() == "precious\n"


def test_reading_a_folder_without_a_study(tmp_path):
    with pytest.raises(ValueError, match="holds no study"):
        read_results(tmp_path)


def _batch_frames():
    """Result tables of three tasks with the store's column types; the third has a column
    that is all missing (object) where the others hold strings, and one column fewer."""
    def frame(task, note):
        return pd.DataFrame({
            "task_key": pd.Series([task] * 2).array,
            "repeat": pd.array([1, 2], dtype="Int64"),
            "gated": pd.array([True, None], dtype="boolean"),
            "mass_mg": [1.5, float("nan")],
            "reason": pd.Series(note, dtype=object),
        })
    third = frame("c", [None, None]).drop(columns=["gated"])
    return [frame("a", ["", "no plateau"]), frame("b", ["x", ""]), third]


@pytest.mark.parametrize("which", [slice(0, 2), slice(0, 3)])
def test_a_batch_is_converted_as_each_table_would_be(which):
    """The one-conversion path (tables alike) and the fallback (tables differ) give the
    table that converting each result table and promoting the types gives."""
    import pyarrow as pa

    from pvcalc.study.store import _arrow_table

    frames = _batch_frames()[which]
    each = pa.concat_tables([pa.Table.from_pandas(f, preserve_index=False) for f in frames],
                            promote_options="permissive")
    batch = _arrow_table(frames)
    assert batch.schema.equals(each.schema, check_metadata=True)
    assert batch.combine_chunks().equals(each.combine_chunks())
    back = batch.to_pandas()
    assert list(back["task_key"]) == [f.task_key.iloc[0] for f in frames for _ in range(2)]
    assert back["repeat"].dtype == "Int64" and back["mass_mg"].isna().sum() == len(frames)
