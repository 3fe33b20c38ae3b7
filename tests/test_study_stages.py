"""Each task records the seconds of its stages, and the manifest keeps them per task."""

import json

import pytest

from pvcalc.study import expand, parse_spec, read_results, run_study
from pvcalc.study._execute import run_task
from tests._study_specs import TINY

STAGES = ["simulate", "calibrate", "rois", "quantify", "tabulate"]


def test_a_task_times_its_stages_in_order():
    spec = parse_spec(TINY)
    task = expand(spec)[0]
    outcome = run_task(task, dict(spec.methods), dict(spec.calibration), dict(spec.simulation))
    assert outcome.error == ""
    assert list(outcome.stages) == STAGES
    assert all(v >= 0 for v in outcome.stages.values())
    assert sum(outcome.stages.values()) <= outcome.seconds


def test_a_failed_task_keeps_the_stages_it_finished():
    spec = parse_spec(TINY.replace("[methods.integrated]", ""))
    task = expand(spec)[0]
    outcome = run_task(task, {"clinical": {"preset": "nonsense"}}, dict(spec.calibration),
                       dict(spec.simulation))
    assert "nonsense" in outcome.error
    assert list(outcome.stages) == ["simulate", "calibrate", "rois"]


def test_the_manifest_records_every_task_s_stages(tmp_path):
    spec = parse_spec(TINY)
    out = tmp_path / "study"
    run = run_study(spec, out, workers=1, batch_size=3, progress=False)
    assert run.n_completed == 4
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    stages = {k: v for e in entries for k, v in e["stages"].items()}
    assert sorted(stages) == sorted(t.key for t in expand(spec))
    for key, times in stages.items():
        assert sorted(times) == sorted(STAGES)   # the manifest sorts keys
        seconds = next(e["seconds"][key] for e in entries if key in e["seconds"])
        assert sum(times.values()) == pytest.approx(seconds, abs=0.01 + 0.05 * seconds)
    assert len(read_results(out)) == 4 * 9 * 2
