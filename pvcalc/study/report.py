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
from pvcalc.study import _report_tables as T
from pvcalc.study._report_figures import (
    bland_altman_figure,
    error_figure,
    interscan_figure,
    transition_figure,
)
from pvcalc.study._report_render import (
    count,
    fmt,
    fmt_p,
    fmt_pct,
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
_WORDS = {"mass_mg": "mass", "volume_mm3": "volume", "agatston": "Agatston score"}


def _label(column) -> str:
    from pvcalc.stats._plots import _axis_label

    named = {"protocol": "protocol", "body": "body size", "phantom": "phantom",
             "protocol_kvp": "tube voltage (kV)", "protocol_gated": "ECG-gated",
             "velocity_mm_s": "velocity (mm/s)", "heart_rate_bpm": "heart rate (beats/min)",
             "lesion": "lesion", "size": "true diameter", "density": "true density",
             "motion": "true peak velocity", "all": "all lesions",
             "protocol_noise_sd_hu": "noise SD (HU)", "n_scans": "scans",
             "n_lesions": "lesions"}
    return named.get(column, _axis_label(str(column).removeprefix("protocol_")))


def _ci(value, low, high, f=fmt):
    return f"{f(value)} [{f(low)}, {f(high)}]"


def _column(name):
    """A formatter of one column of a row (for :func:`_present`)."""
    return lambda row: fmt(row[name])


def _present(frame, columns):
    """A frame of formatted strings: ``columns`` = [(header, function of a row)]."""
    return pd.DataFrame({head: [fn(r) for r in frame.to_dict("records")]
                         for head, fn in columns})


# --- sections -----------------------------------------------------------------------------

def _run_section(blocks, spec, results, conditions, strata, n_failed):
    blocks.append(("h", 2, "What was run"))
    n_scans = results["task_key"].nunique() if "task_key" in results else 0
    methods = list(dict.fromkeys(results["method"])) if len(results) else []
    text = (f"{count(n_scans, 'simulated scan')} in {count(len(conditions), 'condition')}, "
            f"every lesion measured by {count(len(methods), 'method')} "
            f"({', '.join(f'`{m}`' for m in methods)}); {count(len(results), 'result row')}, "
            f"{count(n_failed, 'failed task')}.")
    if spec is not None:
        text = (f"Study `{spec.name}` (seed {spec.seed}, {count(spec.repeats, 'repeat')} per "
                f"condition, calibration: {spec.calibration.get('source')}). " + text)
    blocks.append(("p", text))
    if strata:
        blocks.append(("p", "Conditions differ in: " + ", ".join(_label(c) for c in strata)
                       + "."))
    if len(conditions):
        show = conditions.copy()
        blocks.append(("table", show.map(fmt).rename(columns=_label),
                       ("One row per condition (a phantom under one grid point) with its scans "
                       "(repeats) and lesions.")))
    if spec is not None:
        blocks.append(("h", 3, "Spec"))
        if spec.source:
            blocks.append(("code", spec.source))
        else:
            blocks.append(("code", _as_toml(spec.to_dict())))
    blocks.append(("h", 3, "Conventions"))
    blocks.append(("ul", [
        ("Estimates below 0 (the integrated methods do not clip noise) are used as they are, "
        "except in the relative interscan difference, which counts them as 0 (no calcium "
        "found); `n_clipped` in the tables counts them."),
        ("Rows a method could not measure (a `reason` in the results) are counted as `not "
        "measured` and left out; quantities a method does not define are left out."),
        "Detection rate: share of the method's own `detected` decisions, Wilson 95% CI.",
        ("Relative error = 100 (estimate - truth) / truth; bias = mean(estimate - truth); "
        "RMSE = sqrt(mean((estimate - truth)^2)); CIs are 95%."),
        ("Interscan statistics pair repeat 1 with repeat 2 of the same lesion in the same "
        "condition; relative difference = |A - B| / ((A + B) / 2) x 100; lesions scoring 0 "
        "on both scans are left out of the mean and median (counted as both zero). "
        "Repeatability (RC = 2.77 within-subject SD) and ICC use every repeat."),
        "Bland-Altman: differences repeat 1 - repeat 2, limits bias -/+ 1.96 SD (ddof = 1).",
        ("Per-subject totals: per phantom (patient) and scan, the sum of its lesions' "
        "values, a total below 0 counted as 0 and none for a scan with a lesion not "
        "measured; repeat 1 vs 2, subjects with a total of 0 on both scans left out of the "
        "mean and median relative difference."),
        ("Risk categories: per phantom (patient) and scan, the total Agatston score of its "
        "lesions, standard scheme 0, 1-10, 11-100, 101-400, >400."),
        ("Method comparisons: paired t and Wilcoxon signed-rank tests on the absolute error "
        "(or interscan difference) of the same lesion and scan, Holm-adjusted over the pairs "
        "of methods; a mixed model with the lesion as random effect."),
    ]))


def _as_toml(data) -> str:
    import json

    lines = []
    for section, body in data.items():
        items = body if isinstance(body, list) else [body]
        for item in items:
            lines.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            for key, value in item.items():
                lines.append(f"{key} = {json.dumps(value)}")
            lines.append("")
    return "\n".join(lines)


def _accuracy_section(blocks, acc, figure):
    blocks.append(("h", 2, "Accuracy against truth"))
    if acc.empty:
        blocks.append(("p", "No lesion has an estimate and a true value."))
        return
    for quantity in ("mass_mg", "volume_mm3"):
        sub = acc[(acc["quantity"] == quantity) & (acc["stratum"] == "all")]
        if sub.empty:
            continue
        u = T.QUANTITY_UNITS[quantity]
        blocks.append(("h", 3, f"{_WORDS[quantity].capitalize()}, all lesions"))
        blocks.append(("table", _present(sub, [
            ("method", lambda r: r["method"]), ("lesion scans", lambda r: fmt(r["n_lesions"])),
            ("not measured", lambda r: fmt(r["n_not_measured"])),
            ("clipped", lambda r: fmt(r["n_clipped"])),
            (f"bias ({u}) [95% CI]", lambda r: _ci(r["bias"], r["bias_ci_low"],
                                                   r["bias_ci_high"])),
            ("mean relative error (%)", lambda r: fmt(r["relative_error_pct"])),
            ("mean abs. relative error (%)", lambda r: fmt(r["abs_relative_error_pct"])),
            (f"RMSE ({u})", lambda r: fmt(r["rmse"])), ("slope", lambda r: fmt(r["slope"])),
            ("r²", lambda r: fmt(r["r2"])),
            ("detection rate", lambda r: fmt_pct(100 * r["detection_rate"]))]),
            (f"Estimate against the true {_WORDS[quantity]}; slope and r² of the least-squares "
            "line estimate = intercept + slope x truth.")))
    for stratum in [s for s in dict.fromkeys(acc["stratum"]) if s != "all"]:
        sub = acc[acc["stratum"] == stratum]
        wide = sub.pivot_table(index=["level", "method"], columns="quantity",
                               values=["relative_error_pct", "bias"], aggfunc="first",
                               sort=False)
        det = sub.drop_duplicates(["level", "method"]).set_index(["level", "method"])
        rows = []
        for (level, method) in det.index:
            row = {_label(stratum): level, "method": method,
                   "lesion scans": fmt(det.loc[(level, method), "n_lesions"])}
            for q in ("mass_mg", "volume_mm3"):
                if ("bias", q) in wide.columns:
                    u = T.QUANTITY_UNITS[q]
                    row[f"{_WORDS[q]} bias ({u})"] = fmt(wide.loc[(level, method), ("bias", q)])
                    row[f"{_WORDS[q]} relative error (%)"] = fmt(
                        wide.loc[(level, method), ("relative_error_pct", q)])
            row["detection rate"] = fmt_pct(100 * det.loc[(level, method), "detection_rate"])
            rows.append(row)
        blocks.append(("h", 3, f"By {_label(stratum)}"))
        blocks.append(("table", pd.DataFrame(rows), ("Mean over the lesions and scans of each "
                       "level; every statistic with its CI is in accuracy.csv.")))
    if figure is not None:
        blocks.append(("figure", "error_vs_true_mass.png", figure,
                       ("Relative mass error against the true mass, one panel per method "
                        "(one colour per level of the first condition column): points are "
                        "lesions in single scans, lines join the means per true mass; an "
                        "estimate of 0 is -100%, and negative estimates (below -100%) are "
                        "counted in the panel title.")))


def _interscan_section(blocks, inter, icc, ba, strata, figures):
    blocks.append(("h", 2, "Interscan reproducibility"))
    if inter.empty:
        blocks.append(("p", ("Not computed: the results hold fewer than two repeats of a "
                       "condition, or fewer than two lesions measured on both.")))
        return
    keys = list(strata)
    icc2 = icc[icc["type"] == "ICC2"] if not icc.empty else icc
    merged = inter.copy()
    if not icc2.empty:
        merged = merged.merge(icc2[["quantity", "method", *keys, "icc", "ci_low", "ci_high"]],
                              on=["quantity", "method", *keys], how="left")
    if not ba.empty:
        merged = merged.merge(ba[["quantity", "method", *keys, "bias", "loa_low", "loa_high"]],
                              on=["quantity", "method", *keys], how="left")
    for quantity in ("mass_mg", "volume_mm3", "agatston"):
        sub = merged[merged["quantity"] == quantity]
        if sub.empty:
            continue
        u = T.QUANTITY_UNITS[quantity] or "Agatston"
        cols = [("method", lambda r: r["method"])]
        cols += [(_label(c), _column(c)) for c in keys]
        if "n_both_zero" in sub:
            cols.append(("pairs (both zero)", lambda r: f"{fmt(r['n_subjects'])} "
                                                        f"({fmt(r['n_both_zero'])})"))
        if "mean_relative_difference_pct" in sub:
            cols += [("mean rel. difference (%) [95% CI]",
                      lambda r: _ci(r["mean_relative_difference_pct"], r["mean_ci_low"],
                                    r["mean_ci_high"])),
                     ("median rel. difference (%)",
                      lambda r: fmt(r["median_relative_difference_pct"]))]
        if "repeatability_coefficient" in sub:
            cols.append((f"RC ({u})", lambda r: fmt(r["repeatability_coefficient"])))
        if "icc" in sub:
            cols.append(("ICC(A,1) [95% CI]", lambda r: _ci(r["icc"], r["ci_low"],
                                                            r["ci_high"])))
        if "loa_low" in sub:
            cols.append((f"Bland-Altman bias [limits] ({u})",
                         lambda r: _ci(r["bias"], r["loa_low"], r["loa_high"])))
        blocks.append(("h", 3, _WORDS[quantity].capitalize()))
        blocks.append(("table", _present(sub, cols),
                       ("Repeat 1 vs 2 of each lesion; RC = repeatability coefficient "
                       "(2.77 within-subject SD, all repeats); ICC(A,1) = two-way random, "
                       "absolute agreement, single scan.")))
    for name, caption in figures:
        blocks.append(("figure", name[0], name[1], caption))


def _subject_section(blocks, inter, icc, strata):
    blocks.append(("h", 2, "Per-subject totals"))
    if inter.empty and icc.empty:
        blocks.append(("p", ("Not computed: per-subject totals compare the sum over the "
                       "lesions of each phantom (patient) on repeat 1 and 2, which needs two "
                       "repeats and at least two phantoms (patients) per condition group.")))
        return
    on = ["quantity", "method", *[c for c in strata if c != "phantom"]]
    merged = inter if not inter.empty else icc[[*on, "n_subjects"]]
    if not icc.empty:
        merged = merged.merge(icc[[*on, "icc", "ci_low", "ci_high"]], on=on, how="left")
    for quantity in T.SUBJECT_QUANTITIES:
        sub = merged[merged["quantity"] == quantity]
        if sub.empty:
            continue
        cols = [("method", lambda r: r["method"])] + [(_label(c), _column(c)) for c in on[2:]]
        if "n_both_zero" in sub:
            cols += [("subjects (both zero / not measured)",
                      lambda r: f"{fmt(r['n_subjects'])} ({fmt(r['n_both_zero'])} / "
                                f"{fmt(r['n_not_measured'])})"),
                     ("mean rel. difference (%) [95% CI]",
                      lambda r: _ci(r["mean_relative_difference_pct"], r["mean_ci_low"],
                                    r["mean_ci_high"])),
                     ("median rel. difference (%) [95% CI]",
                      lambda r: _ci(r["median_relative_difference_pct"], r["median_ci_low"],
                                    r["median_ci_high"]))]
        else:
            cols.append(("subjects", lambda r: fmt(r["n_subjects"])))
        if "icc" in sub:
            cols.append(("ICC(A,1) [95% CI]", lambda r: _ci(r["icc"], r["ci_low"],
                                                            r["ci_high"])))
        blocks.append(("h", 3, f"Total {_WORDS[quantity]}"))
        blocks.append(("table", _present(sub, cols), (
            f"A subject is one phantom (virtual patient) in one condition, and its total the "
            f"sum of its lesions' {_WORDS[quantity]} on one scan (below 0 counted as 0, none "
            "if a lesion was not measured), repeat 1 vs 2.")))


def _risk_section(blocks, kap, rec, figure, strata):
    blocks.append(("h", 2, "Risk categories"))
    if kap.empty and rec.empty:
        blocks.append(("p", ("Not computed: risk categories compare per-subject total Agatston "
                       "scores, which need a method that gives Agatston scores, two repeats "
                       "and at least two phantoms (patients) per condition group.")))
        return
    keys = [c for c in strata if c != "phantom"]
    merged = kap if rec.empty else rec if kap.empty else kap.merge(
        rec.drop(columns=["n_subjects"]), on=["method", *keys], suffixes=("", "_reclassified"))
    cols = [("method", lambda r: r["method"])] + [(_label(c), _column(c)) for c in keys]
    cols.append(("subjects", lambda r: fmt(r["n_subjects"])))
    if not kap.empty:
        cols.append(("weighted kappa (linear) [95% CI]", lambda r: _ci(r["kappa"], r["ci_low"],
                                                                       r["ci_high"])))
    if not rec.empty:
        cols.append(("reclassified", lambda r: f"{fmt_pct(100 * r['reclassified_share'])} "
                                               f"({fmt(int(r['n_reclassified']))})"))
    blocks.append(("table", _present(merged, cols),
                   "Risk category of each subject's total Agatston score, repeat 1 vs 2."))
    if figure is not None:
        blocks.append(("figure", "risk_transitions.png", figure,
                       "Subjects by risk category on scan 1 (rows) and scan 2 (columns)."))


def _comparison_section(blocks, comp, strata):
    blocks.append(("h", 2, "Method comparisons"))
    shown = False
    for name, what in (("accuracy", "absolute error against truth"),
                       ("interscan", "relative interscan difference (%)")):
        table = comp[name]
        if table.empty:
            continue
        shown = True
        cols = [("quantity", lambda r: _WORDS[r["quantity"]])]
        cols += [(_label(c), _column(c)) for c in strata if c in table]
        cols += [("A vs B", lambda r: f"{r['method_a']} vs {r['method_b']}"),
                 ("pairs", lambda r: fmt(r["n_subjects"])),
                 ("mean A", lambda r: fmt(r["mean_a"])), ("mean B", lambda r: fmt(r["mean_b"])),
                 ("A - B [95% CI]", lambda r: _ci(r["mean_difference"], r["ci_low"],
                                                   r["ci_high"])),
                 ("paired t p (Holm)", lambda r: fmt_p(r["t_p_value_holm"])),
                 ("Wilcoxon p (Holm)", lambda r: fmt_p(r["wilcoxon_p_value_holm"]))]
        blocks.append(("h", 3, f"Paired tests of the {what}"))
        blocks.append(("table", _present(table, cols), ("Units: those of the quantity (mg, mm³) "
                       "for errors, % for interscan differences.")))
    mixed = comp["mixed"]
    if not mixed.empty:
        shown = True
        blocks.append(("h", 3, "Mixed model of the absolute error (lesion as random effect)"))
        blocks.append(("table", _present(mixed, [
            ("quantity", lambda r: _WORDS[r["quantity"]]), ("term", lambda r: r["term"]),
            ("estimate [95% CI]", lambda r: _ci(r["estimate"], r["ci_low"], r["ci_high"])),
            ("p", lambda r: fmt_p(r["p_value"])), ("converged", lambda r: fmt(r["converged"]))]),
            ("REML fit of |estimate - truth| ~ method (statsmodels MixedLM); a method term is "
            "its mean difference from the reference method.")))
    if not shown:
        blocks.append(("p", ("Not computed: at least two methods measuring the same lesions "
                       "are needed.")))


def _failure_section(blocks, failures):
    blocks.append(("h", 2, "Failures"))
    if failures.empty:
        blocks.append(("p", "No task failed."))
        return
    blocks.append(("table", _present(failures, [("task key", lambda r: f"`{r['task_key']}`"),
                                                ("error", lambda r: r["error"])]),
                   "Tasks that failed and have no results; rerunning the study retries them."))


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
        _failure_section(blocks, failures)
        return blocks, tables, {}
    long, strata = T.prepare(results, spec)
    conditions = T.condition_table(results, strata)
    tables["conditions"] = conditions
    levels = T.strata(long, strata)
    acc = T.accuracy_tables(long, levels) if "accuracy" in statistics else pd.DataFrame()
    lesions = L.lesion_table(long, strata) if "accuracy" in statistics else pd.DataFrame()
    inter = T.interscan_tables(long, strata)
    risk = T.risk_tables(long, strata, scans)
    subjects = T.subject_tables(long, strata, scans)
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
        word = _WORDS[quantity]
        name = f"{word}_error_vs_{trend}.png"
        png = draw(name, "error_vs_condition",
                   lambda q=quantity: L.trend_figure(long, strata, q, _label))
        if png is not None:
            trend_figs.append((name, png, (
                f"Relative {word} error against {_label(trend)}, one panel per method, one "
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
    _run_section(blocks, spec, results, conditions, strata, len(failures))
    if "accuracy" in statistics:
        _accuracy_section(blocks, acc, err_png)
        blocks += L.lesion_blocks(lesions, strata, _label, trend_figs)
    if {"interscan_difference", "repeatability", "icc", "bland_altman"} & statistics:
        _interscan_section(blocks, inter["interscan"], inter["icc"], inter["bland_altman"],
                           strata, inter_figs)
    if {"interscan_difference", "icc"} & statistics:
        _subject_section(blocks, subjects["interscan"], subjects["icc"], strata)
    if {"weighted_kappa", "reclassification"} & statistics:
        _risk_section(blocks, risk["kappa"], risk["reclassification"], risk_png, strata)
    if "compare_methods" in statistics:
        _comparison_section(blocks, comp, strata)
    _failure_section(blocks, failures)
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
