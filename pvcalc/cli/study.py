"""``pvcalc study check SPEC``, ``run SPEC --out DIR`` and ``report DIR``: benchmark studies.

The work is done by :mod:`pvcalc.study`; this module parses nothing but the
arguments and prints. An invalid spec prints every problem, one per line
(``pvcalc: error:`` on the first), and exits with status 2.
"""

from __future__ import annotations

import contextlib
import signal
import sys

__all__ = ["add_arguments", "run"]

_SPEC_HELP = ("study spec: a TOML file, or the name of a built-in study ('quick'); "
              "docs/study.md describes every key")


def add_arguments(parser, *, common, formatter_class, positive_int):
    """The ``check``, ``run`` and ``report`` actions of ``pvcalc study`` (argparse only)."""
    actions = parser.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", parents=[common], formatter_class=formatter_class,
        help="validate a spec; print its size and a run-time estimate",
        description="Validate a study spec (every problem is listed) and print how many "
                    "scans and result rows it makes and about how long it runs.")
    check.add_argument("spec", metavar="SPEC", help=_SPEC_HELP)
    check.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="workers the estimate assumes (default: one per core)")
    check.add_argument("--measure", action="store_true",
                       help="time one task of the study for the estimate (default: the cost "
                            "model)")
    run_ = actions.add_parser(
        "run", parents=[common], formatter_class=formatter_class,
        help="run a study; results go to --out DIR as they complete",
        description="Run every task of a study not yet in DIR: results are written as they "
                    "complete, so a stopped run resumes where it stopped. Exit status 1 when "
                    "some tasks failed (they are recorded; a rerun retries them).")
    run_.add_argument("spec", metavar="SPEC", help=_SPEC_HELP)
    run_.add_argument("--out", required=True, metavar="DIR",
                      help="the study's folder (required; the same study resumes, a different "
                           "one is refused)")
    run_.add_argument("--workers", type=positive_int, default=None, metavar="N",
                      help="local worker processes (default: one per core; 1: one worker in "
                           "this process)")
    run_.add_argument("--scheduler", default=None, metavar="ADDRESS",
                      help="address of a running dask scheduler, e.g. tcp://10.0.0.5:8786 "
                           "(default: start a local cluster)")
    run_.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                      help="tasks per Parquet part file")
    run_.add_argument("--force", action="store_true",
                      help="start over when DIR holds another study (deletes only the files a "
                           "study writes)")
    run_.add_argument("--no-report", action="store_true",
                      help="do not write DIR/report/ at the end (pvcalc study report DIR does)")
    report = actions.add_parser(
        "report", parents=[common], formatter_class=formatter_class,
        help="write the report of a study's results to DIR/report/",
        description="Compute a study's statistics (accuracy against truth, interscan "
                    "reproducibility, method comparisons) from the results in DIR and write "
                    "DIR/report/: report.md and/or a self-contained report.html, every table "
                    "as CSV and the figures as PNG (docs/study.md, 'Report').")
    report.add_argument("out", metavar="DIR", help="the study's folder (pvcalc study run --out)")
    report.add_argument("--format", dest="formats", action="append", default=None,
                        choices=("markdown", "html"),
                        help="document to write; repeat for both (default: the spec's "
                             "report.formats)")


def _spec_error(err) -> int:
    print(f"pvcalc: error: {str(err).splitlines()[0]}", file=sys.stderr)
    for problem in err.problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def _duration(seconds) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {s:02d} s" if m else f"{s} s")


def _check(args) -> int:
    from pvcalc.study import estimate_runtime, expand, read_spec, study_size

    spec = read_spec(args.spec)
    tasks = expand(spec)
    size = study_size(spec, tasks)
    estimate = estimate_runtime(spec, workers=args.workers, measure=args.measure, tasks=tasks)
    print(f"study {spec.name!r}: spec is valid" + (f" ({spec.description})"
                                                   if spec.description else ""))
    print(f"  phantoms: {', '.join(p.label for p in spec.phantoms)}")
    grid = "; ".join(f"{axis} = {', '.join(str(v) for v in values)}"
                     for axis, values in spec.grid.items())
    print(f"  grid: {grid}")
    print(f"  methods: {', '.join(spec.methods)}")
    print(f"  calibration: {spec.calibration['source']}")
    print(f"  {size['conditions']} condition(s) x {size['repeats']} repeat(s) = {size['tasks']} "
          f"scan(s) (tasks); {size['scan_lesions']} scan-lesion(s) x {size['methods']} "
          f"method(s) = {size['rows']} result row(s); {size['voxels'] / 1e6:.1f} M voxels")
    basis = ("one task timed here" if estimate["basis"] == "measured"
             else "cost model; --measure times one task")
    print(f"  estimated run time on {estimate['workers']} worker(s): about "
          f"{_duration(estimate['seconds'])} ({basis})")
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops the run like Ctrl-C: the completed tasks are written first."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:       # not the main thread: leave the signal alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args) -> int:
    from pvcalc.study import read_spec, run_study

    spec = read_spec(args.spec)
    with _sigterm_as_interrupt():
        result = run_study(spec, args.out, workers=args.workers, scheduler=args.scheduler,
                           batch_size=args.batch_size, force=args.force)
    print(f"results: {result.out_dir} ({result.n_skipped + result.n_completed} of "
          f"{result.n_tasks} task(s) complete; read them with "
          f"pvcalc.study.read_results({str(result.out_dir)!r}))")
    _print_summary(result.out_dir, spec)
    if not args.no_report:
        from pvcalc.study.report import write_report

        folder = write_report(result.out_dir, spec=spec)
        document = next((folder / n for n in ("report.md", "report.html")
                         if (folder / n).exists()), folder)
        print(f"report: {folder} ({document.name}: every statistic with its confidence "
              "interval, the figures, each table as CSV)" if document != folder
              else f"report: {folder}")
    else:
        print(f"no report written (--no-report); pvcalc study report {result.out_dir} "
              "writes it")
    if result.n_failed:
        print(f"pvcalc: {result.n_failed} task(s) failed; their errors: "
              f"pvcalc.study.read_failures({str(result.out_dir)!r}); running the same command "
              "again retries them", file=sys.stderr)
        return 1
    return 0


def _print_summary(out_dir, spec):
    """The short mass table of the study's results (pvcalc.study._run_summary)."""
    from pvcalc.methods import METHODS
    from pvcalc.study import read_results
    from pvcalc.study._run_summary import format_summary, summary_table

    results = read_results(out_dir)
    if results.empty:
        return
    table = summary_table(results, spec)
    methods = list(dict.fromkeys(results["method"]))
    shown = set(table["method"]) if not table.empty else set()
    no_mass = [m for m in methods if m not in shown and (
        m not in METHODS or "mass_mg" not in METHODS[m].defines)]
    sizes = table.attrs.get("sizes", ["all"]) if not table.empty else ["all"]
    which = ("every lesion" if sizes == ["all"] else
             "the " + " and ".join(s.replace(" mm", "") for s in sizes) + " mm lesions")
    print(f"\nmass by method, {which}: err = mean relative mass error, 100 (estimate - "
          "truth) / truth, %;\ninterscan = mean relative interscan difference of the mass, "
          "|A - B| / ((A + B) / 2), %, repeat 1 vs 2")
    print(format_summary(table, no_mass=no_mass) + "\n")


def _report(args) -> int:
    from pvcalc.study.report import write_report

    print(f"report: {write_report(args.out, formats=args.formats)}")
    return 0


def run(args) -> int:
    """``pvcalc study check|run|report``."""
    from pvcalc.study import SpecError

    try:
        return {"check": _check, "run": _run, "report": _report}[args.study_command](args)
    except SpecError as err:
        if args.debug:
            raise
        return _spec_error(err)
