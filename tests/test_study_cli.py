"""``pvcalc study check`` and ``pvcalc study run``: output, exit status and error lines."""

import pytest

from pvcalc.cli import main
from pvcalc.study import read_results

ONE = """
[study]
name = "one"
seed = 1
repeats = 1

[[phantoms]]
name = "cci"

[grid]
protocol = "calcium_scoring"
matrix = 96
pixel_mm = 0.9

[methods.clinical]
"""


def test_check_prints_the_size_and_an_estimate(capsys):
    assert main(["study", "check", "quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("study 'quick': spec is valid")
    # 2 protocols x 2 repeats of the nine inserts, eight methods
    assert "2 condition(s) x 2 repeat(s) = 4 scan(s) (tasks)" in out
    assert "36 scan-lesion(s) x 8 method(s) = 288 result row(s)" in out
    assert "estimated run time on" in out and "cost model" in out


def test_an_invalid_spec_prints_every_problem_one_per_line(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text(ONE.replace("seed = 1", "seed = -1").replace('"cci"', '"cii"')
                    .replace("[methods.clinical]", "[methods.clinicl]"))
    assert main(["study", "check", str(spec)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"pvcalc: error: invalid study spec {spec}: 3 problems"
    assert err[1].startswith("  study.seed: ")
    assert err[2].startswith("  phantoms[0].name: ") and "did you mean 'cci'?" in err[2]
    assert err[3].startswith("  methods.clinicl: ") and "did you mean 'clinical'?" in err[3]
    assert len(err) == 4
    assert main(["study", "run", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("args", "text"), [
    (["study", "check", "nothere.toml"], "no spec file 'nothere.toml'"),
    (["study", "run", "quick", "--out", "{out}", "--workers", "2", "--scheduler",
      "tcp://127.0.0.1:1"], "not both"),
    (["study", "run", "quick"], "the following arguments are required: --out"),
    (["study"], "the following arguments are required: ACTION"),
])
def test_errors_are_one_line(args, text, tmp_path, capsys):
    args = [a.replace("{out}", str(tmp_path / "o")) for a in args]
    try:
        status = main(args)
    except SystemExit as exit_:     # argument errors leave through argparse
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("pvcalc: error:") and len(err.strip().splitlines()) == 1
    assert text in err


def test_run_writes_the_study_and_refuses_another_one(tmp_path, capsys):
    spec = tmp_path / "one.toml"
    spec.write_text(ONE)
    out = tmp_path / "study"
    assert main(["study", "run", str(spec), "--out", str(out), "--workers", "1"]) == 0
    assert f"results: {out} (1 of 1 task(s) complete" in capsys.readouterr().out
    assert len(read_results(out)) == 9
    spec.write_text(ONE.replace("seed = 1", "seed = 2"))
    assert main(["study", "run", str(spec), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "holds a different study (spec.study.seed 1 there, 2 here)" in err
