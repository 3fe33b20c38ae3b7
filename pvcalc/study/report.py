"""The report of a study: what was run, accuracy against truth, interscan reproducibility.

:func:`write_report` reads a study's results (:func:`pvcalc.study.read_results`),
computes its statistics with :mod:`pvcalc.stats` and writes ``DIR/report/``:

- ``report.md`` and a self-contained ``report.html`` (inline CSS, figures as
  base64 PNG, no external file);
- every table as CSV (``accuracy.csv``, ``lesions.csv``, ``interscan.csv``, ``icc.csv``,
  ``bland_altman.csv``, ``subject_interscan.csv``, ``subject_icc.csv``, ``risk_*.csv``,
  ``compare_*.csv``, ``conditions.csv``, ``failures.csv``) with full precision;
- the figures as PNG (``error_vs_true_mass.png``, ``bland_altman_mass.png``,
  ``interscan_difference_mass.png``, ``risk_transitions.png``, and
  ``mass_error_vs_<column>.png`` / ``volume_error_vs_<column>.png`` against a numeric
  condition column such as ``velocity_mm_s``).

The report opens with a summary in words generated from the tables. The same
results give the same bytes (tables are sorted, numbers formatted the same
way, PNGs carry no software tag or date). The conventions (negative
estimates, which repeats are paired, subjects) are listed in the
report and in :mod:`pvcalc.study._report_tables`; ``docs/study.md``, "Report",
is the guide.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from pvcalc.study import _report_lesions as L
from pvcalc.study import _report_sections as S
from pvcalc.study import _report_subjects as P
from pvcalc.study import _report_tables as T
from pvcalc.study._report_figures import (
    bland_altman_figure,
    error_figure,
    interscan_figure,
    transition_figure,
)
from pvcalc.study._report_render import (
    count,
    png_bytes,
    to_html,
    to_markdown,
)
from pvcalc.study._report_summary import summary_sentences
from pvcalc.study.spec import StudySpec

__all__ = ["REPORT_DIR", "write_report"]

#: Folder of the report inside the study's folder, and the names it may hold.
REPORT_DIR = "report"
_NAMES = r"report\.(md|html)|[a-z0-9_]+\.(csv|png)"
_ALL_STATISTICS = ("accuracy", "interscan_difference", "repeatability", "icc", "bland_altman",
                   "weighted_kappa", "reclassification", "compare_methods")
_ALL_FIGURES = ("error_vs_size", "error_vs_condition", "bland_altman", "interscan_difference",
                "transition_heatmap")
# --- the whole report ---------------------------------------------------------------------

def _inputs(folder, results, spec, failures, scans):
    from pvcalc.study import store

    stored = (folder / store.STUDY_FILE).exists()
    if spec is None and stored:
        spec = store.load_spec(folder)
    if results is None:
        if not stored:
            raise ValueError(f"{folder} holds no study ({store.STUDY_FILE} is missing) and no "
                             "results were given; run 'pvcalc study run SPEC --out DIR' first, "
                             "or pass results=")
        results = store.read_results(folder)
        if scans is None:
            scans = store.read_scans(folder)
    if failures is None:
        failures = store.read_failures(folder) if stored else pd.DataFrame(
            columns=["task_key", "error"])
    if not isinstance(failures, pd.DataFrame) or not {"task_key", "error"} <= set(failures):
        raise TypeError("failures must be a DataFrame with columns task_key and error "
                        "(pvcalc.study.read_failures)")
    T._require(results)
    if spec is not None and not isinstance(spec, StudySpec):
        raise TypeError(f"spec must be a pvcalc.study.StudySpec (pvcalc.study.load_spec), got "
                        f"{type(spec).__name__}")
    return results, spec, failures.sort_values("task_key", kind="stable"), scans


def build_report(results, *, spec=None, failures=None, scans=None):
    """(blocks, {csv name: DataFrame}, {png name: bytes}) of a report (nothing written)."""
    failures = pd.DataFrame(columns=["task_key", "error"]) if failures is None else failures
    chosen = spec.report if spec is not None else {}
    statistics = set(chosen.get("statistics", _ALL_STATISTICS))
    figures_wanted = set(chosen.get("figures", _ALL_FIGURES))
    title = f"Study report: {spec.name}" if spec is not None else "Study report"
    blocks = [("h", 1, title)]
    if spec is not None and spec.description:
        blocks.append(("p", spec.description))
    tables = {"failures": failures[["task_key", "error"]].reset_index(drop=True)}
    if results.empty:
        blocks.append(("h", 2, "Summary"))
        blocks.append(("ul", [f"The study has no result rows yet: "
                              f"{count(len(failures), 'task')} failed and none completed."
                              if len(failures) else
                              "The study has no result rows yet: no task has completed."]))
        S.failure_section(blocks, failures)
        return blocks, tables, {}
    long, strata = T.prepare(results, spec)
    conditions = T.condition_table(results, strata)
    tables["conditions"] = conditions
    levels = T.strata(long, strata)
    acc = T.accuracy_tables(long, levels) if "accuracy" in statistics else pd.DataFrame()
    lesions = L.lesion_table(long, strata) if "accuracy" in statistics else pd.DataFrame()
    inter = T.interscan_tables(long, strata)
    risk = P.risk_tables(long, strata, scans)
    subjects = P.subject_tables(long, strata, scans)
    for key, name in (("interscan", "interscan_difference"), ("icc", "icc")):
        if name not in statistics:
            subjects[key] = pd.DataFrame()
    comp = (T.comparison_tables(long, strata, inter["per_subject"])
            if "compare_methods" in statistics else
            {"accuracy": pd.DataFrame(), "interscan": pd.DataFrame(), "mixed": pd.DataFrame()})
    summary_table = inter["interscan"]
    drop = [] if "interscan_difference" in statistics else [
        c for c in summary_table.columns if "relative_difference" in c or "mean_ci" in c
        or "median_ci" in c or c in ("n_both_zero", "mean_abs_difference")]
    if "repeatability" not in statistics:
        drop += [c for c in summary_table.columns if "within_subject" in c
                 or "repeatability" in c]
    inter["interscan"] = summary_table.drop(columns=drop)
    if not {"interscan_difference", "repeatability", "icc", "bland_altman"} & statistics:
        inter["interscan"] = pd.DataFrame()
    for key in ("icc", "bland_altman"):
        if key not in statistics:
            inter[key] = pd.DataFrame()
    if "weighted_kappa" not in statistics:
        risk["kappa"] = pd.DataFrame()
    if "reclassification" not in statistics:
        risk["reclassification"] = pd.DataFrame()
    if not {"weighted_kappa", "reclassification"} & statistics:
        risk["totals"] = risk["transitions"] = pd.DataFrame()
    tables.update(accuracy=acc, lesions=lesions, interscan=inter["interscan"], icc=inter["icc"],
                  bland_altman=inter["bland_altman"], subject_interscan=subjects["interscan"],
                  subject_icc=subjects["icc"], risk_totals=risk["totals"],
                  risk_kappa=risk["kappa"], risk_reclassification=risk["reclassification"],
                  risk_transitions=risk["transitions"], compare_accuracy=comp["accuracy"],
                  compare_interscan=comp["interscan"], compare_mixed=comp["mixed"])
    images = {}

    def draw(name, wanted, make):
        if wanted not in figures_wanted:
            return None
        fig = make()
        if fig is None:
            return None
        images[name] = png_bytes(fig)
        return images[name]

    err_png = draw("error_vs_true_mass.png", "error_vs_size",
                   lambda: error_figure(long, strata)) if not acc.empty else None
    trend = L.trend_column(long, strata) if not lesions.empty else None
    trend_figs = []
    for quantity in ("mass_mg", "volume_mm3") if trend is not None else ():
        word = S.WORDS[quantity]
        name = f"{word}_error_vs_{trend}.png"
        png = draw(name, "error_vs_condition",
                   lambda q=quantity: L.trend_figure(long, strata, q, S.label))
        if png is not None:
            trend_figs.append((name, png, (
                f"Relative {word} error against {S.label(trend)}, one panel per method, one "
                "colour per combination of the other condition columns: mean over the "
                "lesion scans with its 95% CI (bars slightly offset along x to keep them "
                "apart).")))
    inter_figs = []
    ba_png = draw("bland_altman_mass.png", "bland_altman", lambda: bland_altman_figure(long))
    if ba_png is not None:
        inter_figs.append((("bland_altman_mass.png", ba_png), ("Bland-Altman plots of the mass, "
                           "repeat 1 vs 2, every lesion of every condition; solid line: bias, "
                           "dashed: limits of agreement, shaded: their 95% CIs.")))
    is_png = draw("interscan_difference_mass.png", "interscan_difference",
                  lambda: interscan_figure(inter["per_subject"], strata))
    if is_png is not None:
        inter_figs.append((("interscan_difference_mass.png", is_png),
                           ("Relative interscan difference of the mass per lesion, by method "
                           "(box: quartiles, line: median, triangle: mean), lesions scoring 0 "
                           "on both scans left out.")))
    risk_png = draw("risk_transitions.png", "transition_heatmap",
                    lambda: transition_figure(risk["transitions"],
                                              ["method", *[s for s in strata if s != "phantom"]])
                    ) if not risk["kappa"].empty else None
    blocks.append(("h", 2, "Summary"))
    blocks.append(("ul", summary_sentences(results, long, strata, tables, failures)))
    S.run_section(blocks, spec, results, conditions, strata, len(failures))
    if "accuracy" in statistics:
        S.accuracy_section(blocks, acc, err_png)
        blocks += L.lesion_blocks(lesions, strata, S.label, trend_figs)
    if {"interscan_difference", "repeatability", "icc", "bland_altman"} & statistics:
        S.interscan_section(blocks, inter["interscan"], inter["icc"], inter["bland_altman"],
                           strata, inter_figs)
    if {"interscan_difference", "icc"} & statistics:
        S.subject_section(blocks, subjects["interscan"], subjects["icc"], strata)
    if {"weighted_kappa", "reclassification"} & statistics:
        S.risk_section(blocks, risk["kappa"], risk["reclassification"], risk_png, strata)
    if "compare_methods" in statistics:
        S.comparison_section(blocks, comp, strata)
    S.failure_section(blocks, failures)
    written = sorted(n for n, t in tables.items() if not t.empty)
    blocks.append(("h", 2, "Files"))
    blocks.append(("p", "Every table with full precision and every column (glossary: "
                   "docs/stats.md): " + ", ".join(f"`{n}.csv`" for n in written)
                   + "; figures: " + (", ".join(f"`{n}`" for n in sorted(images)) or "none")
                   + "."))
    return blocks, tables, images


def write_report(out_dir, *, results=None, spec=None, failures=None, scans=None,
                 formats=None) -> Path:
    """Write the report of a study to ``out_dir/report/`` and return that folder.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The study's folder (``pvcalc study run SPEC --out DIR``).
    results : pandas.DataFrame, optional
        One row per scan x lesion x method, as :func:`pvcalc.study.read_results`
        returns (default: read from ``out_dir``).
    spec : StudySpec, optional
        Default: the study's stored spec (:func:`pvcalc.study.load_spec`), if any.
        Its ``[report]`` section chooses the statistics, figures and formats.
    failures : pandas.DataFrame, optional
        ``task_key`` and ``error`` of failed tasks (default: read from ``out_dir``).
    scans : pandas.DataFrame, optional
        One row per completed scan (:func:`pvcalc.study.read_scans`; default: read
        from ``out_dir`` with the results): scans without lesions count as a total
        of 0 in the per-subject totals and the risk categories.
    formats : sequence of {"markdown", "html"}, optional
        Which documents to write besides the CSV tables and PNG figures (default:
        the spec's ``report.formats``; both without a spec).

    Returns
    -------
    pathlib.Path
        ``out_dir/report``, holding ``report.md`` and/or ``report.html``, a CSV per
        non-empty table and a PNG per figure. An earlier report there is replaced
        (only files a report writes are removed; others make it refuse).

    Raises
    ------
    ValueError
        ``out_dir`` holds no study and no ``results`` were given, results lack
        the required columns, or an unknown format.
    """
    from pvcalc.study import _folders

    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise TypeError(f"out_dir must be a folder path, got {out_dir!r}")
    folder = Path(out_dir)
    results, spec, failures, scans = _inputs(folder, results, spec, failures, scans)
    folder.mkdir(parents=True, exist_ok=True)
    if formats is None:
        formats = tuple(spec.report.get("formats", ("markdown", "html"))) if spec is not None \
            else ("markdown", "html")
    bad = [f for f in formats if f not in ("markdown", "html")]
    if bad or isinstance(formats, str):
        raise ValueError(f"formats must be a list of 'markdown' and/or 'html', got {formats!r}")
    blocks, tables, images = build_report(results, spec=spec, failures=failures, scans=scans)
    import re

    with _folders.scratch(folder) as tmp:
        new = tmp / REPORT_DIR
        new.mkdir()
        for name, table in sorted(tables.items()):
            if not table.empty or name == "failures":
                (new / f"{name}.csv").write_bytes(
                    table.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        for name, data in sorted(images.items()):
            (new / name).write_bytes(data)
        if "markdown" in formats:
            (new / "report.md").write_bytes(to_markdown(blocks).encode("utf-8"))
        if "html" in formats:
            title = blocks[0][2]
            (new / "report.html").write_bytes(to_html(blocks, title=title).encode("utf-8"))
        _folders.records(tmp, [REPORT_DIR])   # flush every file to disk
        _folders.remove(folder, [REPORT_DIR], re.compile(_NAMES), owner="pvcalc study report")
        _folders.install(tmp, folder, [REPORT_DIR])
    return folder / REPORT_DIR
