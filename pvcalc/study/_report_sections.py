"""The sections of a study's report (private): each appends its blocks to the list.

A block is a tuple rendered by :mod:`pvcalc.study._report_render`: ``("h", level,
text)``, ``("p", text)``, ``("ul", items)``, ``("code", text)``, ``("table", frame,
caption)`` or ``("figure", name, png, caption)``. :func:`pvcalc.study.report.build_report`
calls the sections in the report's order with the tables of
:mod:`pvcalc.study._report_tables`.
"""

from __future__ import annotations

import pandas as pd

from pvcalc.study import _report_tables as T
from pvcalc.study._report_render import count, fmt, fmt_p, fmt_pct

__all__ = ["WORDS", "accuracy_section", "comparison_section", "failure_section",
           "interscan_section", "label", "risk_section", "run_section", "subject_section"]

WORDS = {"mass_mg": "mass", "volume_mm3": "volume", "agatston": "Agatston score"}


def label(column) -> str:
    """Words for a condition or stratum column (axis labels, table headers)."""
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


def run_section(blocks, spec, results, conditions, strata, n_failed):
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
        blocks.append(("p", "Conditions differ in: " + ", ".join(label(c) for c in strata)
                       + "."))
    if len(conditions):
        show = conditions.copy()
        blocks.append(("table", show.map(fmt).rename(columns=label),
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


def accuracy_section(blocks, acc, figure):
    blocks.append(("h", 2, "Accuracy against truth"))
    if acc.empty:
        blocks.append(("p", "No lesion has an estimate and a true value."))
        return
    for quantity in ("mass_mg", "volume_mm3"):
        sub = acc[(acc["quantity"] == quantity) & (acc["stratum"] == "all")]
        if sub.empty:
            continue
        u = T.QUANTITY_UNITS[quantity]
        blocks.append(("h", 3, f"{WORDS[quantity].capitalize()}, all lesions"))
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
            (f"Estimate against the true {WORDS[quantity]}; slope and r² of the least-squares "
            "line estimate = intercept + slope x truth.")))
    for stratum in [s for s in dict.fromkeys(acc["stratum"]) if s != "all"]:
        sub = acc[acc["stratum"] == stratum]
        wide = sub.pivot_table(index=["level", "method"], columns="quantity",
                               values=["relative_error_pct", "bias"], aggfunc="first",
                               sort=False)
        det = sub.drop_duplicates(["level", "method"]).set_index(["level", "method"])
        rows = []
        for (level, method) in det.index:
            row = {label(stratum): level, "method": method,
                   "lesion scans": fmt(det.loc[(level, method), "n_lesions"])}
            for q in ("mass_mg", "volume_mm3"):
                if ("bias", q) in wide.columns:
                    u = T.QUANTITY_UNITS[q]
                    row[f"{WORDS[q]} bias ({u})"] = fmt(wide.loc[(level, method), ("bias", q)])
                    row[f"{WORDS[q]} relative error (%)"] = fmt(
                        wide.loc[(level, method), ("relative_error_pct", q)])
            row["detection rate"] = fmt_pct(100 * det.loc[(level, method), "detection_rate"])
            rows.append(row)
        blocks.append(("h", 3, f"By {label(stratum)}"))
        blocks.append(("table", pd.DataFrame(rows), ("Mean over the lesions and scans of each "
                       "level; every statistic with its CI is in accuracy.csv.")))
    if figure is not None:
        blocks.append(("figure", "error_vs_true_mass.png", figure,
                       ("Relative mass error against the true mass, one panel per method "
                        "(one colour per level of the first condition column): points are "
                        "lesions in single scans, lines join the means per true mass; an "
                        "estimate of 0 is -100%, and negative estimates (below -100%) are "
                        "counted in the panel title.")))


def interscan_section(blocks, inter, icc, ba, strata, figures):
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
        cols += [(label(c), _column(c)) for c in keys]
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
        blocks.append(("h", 3, WORDS[quantity].capitalize()))
        blocks.append(("table", _present(sub, cols),
                       ("Repeat 1 vs 2 of each lesion; RC = repeatability coefficient "
                       "(2.77 within-subject SD, all repeats); ICC(A,1) = two-way random, "
                       "absolute agreement, single scan.")))
    for name, caption in figures:
        blocks.append(("figure", name[0], name[1], caption))


def subject_section(blocks, inter, icc, strata):
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
        cols = [("method", lambda r: r["method"])] + [(label(c), _column(c)) for c in on[2:]]
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
        blocks.append(("h", 3, f"Total {WORDS[quantity]}"))
        blocks.append(("table", _present(sub, cols), (
            f"A subject is one phantom (virtual patient) in one condition, and its total the "
            f"sum of its lesions' {WORDS[quantity]} on one scan (below 0 counted as 0, none "
            "if a lesion was not measured), repeat 1 vs 2.")))


def risk_section(blocks, kap, rec, figure, strata):
    blocks.append(("h", 2, "Risk categories"))
    if kap.empty and rec.empty:
        blocks.append(("p", ("Not computed: risk categories compare per-subject total Agatston "
                       "scores, which need a method that gives Agatston scores, two repeats "
                       "and at least two phantoms (patients) per condition group.")))
        return
    keys = [c for c in strata if c != "phantom"]
    merged = kap if rec.empty else rec if kap.empty else kap.merge(
        rec.drop(columns=["n_subjects"]), on=["method", *keys], suffixes=("", "_reclassified"))
    cols = [("method", lambda r: r["method"])] + [(label(c), _column(c)) for c in keys]
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


def comparison_section(blocks, comp, strata):
    blocks.append(("h", 2, "Method comparisons"))
    shown = False
    for name, what in (("accuracy", "absolute error against truth"),
                       ("interscan", "relative interscan difference (%)")):
        table = comp[name]
        if table.empty:
            continue
        shown = True
        cols = [("quantity", lambda r: WORDS[r["quantity"]])]
        cols += [(label(c), _column(c)) for c in strata if c in table]
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
            ("quantity", lambda r: WORDS[r["quantity"]]), ("term", lambda r: r["term"]),
            ("estimate [95% CI]", lambda r: _ci(r["estimate"], r["ci_low"], r["ci_high"])),
            ("p", lambda r: fmt_p(r["p_value"])), ("converged", lambda r: fmt(r["converged"]))]),
            ("REML fit of |estimate - truth| ~ method (statsmodels MixedLM); a method term is "
            "its mean difference from the reference method.")))
    if not shown:
        blocks.append(("p", ("Not computed: at least two methods measuring the same lesions "
                       "are needed.")))


def failure_section(blocks, failures):
    blocks.append(("h", 2, "Failures"))
    if failures.empty:
        blocks.append(("p", "No task failed."))
        return
    blocks.append(("table", _present(failures, [("task key", lambda r: f"`{r['task_key']}`"),
                                                ("error", lambda r: r["error"])]),
                   "Tasks that failed and have no results; rerunning the study retries them."))
