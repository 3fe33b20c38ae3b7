"""Benchmark studies: a TOML spec, its tasks, a runner on dask.distributed and a result store.

A study answers "does method X give truer and more reproducible calcium scores
than clinical scoring, under these scan conditions?" with one command
(``pvcalc study run SPEC --out DIR``; ``docs/study.md`` is the guide):

- :mod:`pvcalc.study.spec`: :func:`read_spec` / :func:`parse_spec` turn a TOML
  spec into a frozen, validated :class:`StudySpec` (every problem reported at
  once, :class:`SpecError`).
- :mod:`pvcalc.study.tasks`: :func:`expand` makes the tasks (one simulated
  scan of one condition and repeat, quantified with every method), each with
  a stable key and seed; :func:`study_size` and :func:`estimate_runtime`.
- :mod:`pvcalc.study.runner`: :func:`run_study` runs the tasks on a dask
  cluster (local processes by default, or ``scheduler="tcp://..."``).
- :mod:`pvcalc.study.store`: the results as Parquet parts in the output folder,
  resumable; :func:`read_results`, :func:`read_scans`, :func:`read_failures` and
  :func:`load_spec` are the interface for reports.
- :mod:`pvcalc.study.report`: :func:`write_report` writes ``DIR/report/``
  (Markdown, self-contained HTML, every table as CSV, PNG figures).

Names are imported on first use, so that importing this package (the command
line does) does not load dask.
"""

_LAZY = {
    "SpecError": "pvcalc.study.spec", "SpecProblem": "pvcalc.study.spec",
    "StudySpec": "pvcalc.study.spec", "parse_spec": "pvcalc.study.spec",
    "read_spec": "pvcalc.study.spec", "builtin_specs": "pvcalc.study.spec",
    "Task": "pvcalc.study.tasks", "Condition": "pvcalc.study.tasks",
    "expand": "pvcalc.study.tasks", "study_size": "pvcalc.study.tasks",
    "estimate_runtime": "pvcalc.study.tasks",
    "run_study": "pvcalc.study.runner", "StudyRun": "pvcalc.study.runner",
    "read_results": "pvcalc.study.store", "read_failures": "pvcalc.study.store",
    "read_scans": "pvcalc.study.store",
    "load_spec": "pvcalc.study.store",
    "write_report": "pvcalc.study.report",
}

__all__ = list(_LAZY)


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pvcalc.study' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
