"""The summary of a study report: sentences generated from its tables.

Every number in a sentence is read from a table of the report (formatted as
in the tables), and a difference between methods is called significant only
when its Holm-adjusted p-value is below :data:`ALPHA`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pvcalc.study._report_render import count, fmt, fmt_p, fmt_pct

__all__ = ["ALPHA", "summary_sentences"]

#: Significance level of the sentences about method comparisons.
ALPHA = 0.05
_WORDS = {"mass_mg": "mass", "volume_mm3": "volume", "agatston": "Agatston score"}
_UNITS = {"mass_mg": "mg", "volume_mm3": "mm³", "agatston": ""}
#: Most method pairs described in words (all are in the tables).
_MAX_PAIRS = 6
#: Most conditions whose method comparisons are described one by one; with more, each
#: pair's tests are counted over the conditions.
_MAX_GROUPS = 2


def _signed(value, unit=""):
    text = fmt(value)
    text = text if text.startswith("-") or text == "n/a" or text == "0" else "+" + text
    return f"{text} {unit}".strip()


def _value(value):
    """A condition value as text: 60 (not 60.0), n/a for a missing one."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _level_text(row, strata):
    """A condition as text: a name (protocol, phantom) as such, a number with its column."""
    return ", ".join(str(row[c]) if isinstance(row[c], str)
                     else f"{c.removeprefix('protocol_')} {_value(row[c])}"
                     for c in strata if c in row)


def _run_sentence(results, strata):
    scans = results["task_key"].nunique() if "task_key" in results else len(results)
    conditions = results["condition"].nunique() if "condition" in results else 1
    phantoms = ", ".join(dict.fromkeys(results["phantom"].astype(str))) \
        if "phantom" in results else "a phantom"
    if "phantom_name" in results and (results["phantom_name"] == "patients").any():
        phantoms = f"{results['phantom'].nunique()} virtual patients"
    methods = ", ".join(f"`{m}`" for m in dict.fromkeys(results["method"]))
    varied = "; ".join(f"{c}: {', '.join(_value(v) for v in pd.unique(results[c]))}"
                       for c in strata if c != "phantom" and c in results)
    return (f"{count(scans, 'simulated scan')} of {phantoms} in "
            f"{count(conditions, 'condition')}"
            + (f" ({varied})" if varied else "") + f", every lesion measured by {methods}.")


def _accuracy_sentences(acc):
    out = []
    for quantity in ("mass_mg", "volume_mm3"):
        unit = _UNITS[quantity]
        overall = acc[(acc["quantity"] == quantity) & (acc["stratum"] == "all")]
        if overall.empty:
            continue
        ranked = overall.sort_values(["rmse", "method"], kind="stable")
        word = _WORDS[quantity].capitalize()

        def describe(r, unit=unit):
            return (f"`{r['method']}` {fmt(r['rmse'])} {unit} (bias "
                    f"{_signed(r['bias'], unit)}, mean relative error "
                    f"{fmt_pct(r['relative_error_pct'])}, mean absolute relative error "
                    f"{fmt_pct(r['abs_relative_error_pct'])})")

        rows = ranked.to_dict("records")
        if len(rows) == 1:
            out.append(f"{word} against truth, all lesions: RMSE {describe(rows[0])}.")
        else:
            text = (f"{word} against truth, all lesions: smallest RMSE {describe(rows[0])}; "
                    f"largest {describe(rows[-1])}.")
            best_rel = min(rows, key=lambda r: (r["abs_relative_error_pct"], r["method"]))
            if best_rel["method"] != rows[0]["method"]:
                text += (f" The smallest mean absolute relative error is `{best_rel['method']}`'s "
                         f"({fmt_pct(best_rel['abs_relative_error_pct'])}).")
            out.append(text)
    return out


def _stratum_sentences(acc):
    out = []
    mass = acc[acc["quantity"] == "mass_mg"]
    for method in dict.fromkeys(mass["method"]):
        sub = mass[mass["method"] == method]
        parts = []
        size = sub[sub["stratum"] == "size"]
        if not size.empty:
            parts.append("by true diameter " + ", ".join(
                f"{r['level']} {fmt_pct(r['relative_error_pct'])}"
                for r in size.to_dict("records")))
        lesions = sub[sub["stratum"] == "lesion"]
        if len(lesions) > 1:
            worst = max(lesions.to_dict("records"),
                        key=lambda r: (abs(r["relative_error_pct"]), r["level"]))
            within = int((lesions["relative_error_pct"].abs() <= 10).sum())
            parts.append(f"largest on {worst['level']} ({fmt_pct(worst['relative_error_pct'])},"
                         f" detected in {fmt(worst['detected'])} of "
                         f"{fmt(worst['n_lesions'])} scans); within ±10% on {within} of "
                         f"{len(lesions)} lesions")
        if parts:
            out.append(f"`{method}` mean relative mass error: " + "; ".join(parts) + ".")
    overall = acc[(acc["quantity"] == "mass_mg") & (acc["stratum"] == "all")]
    if not overall.empty:
        out.append("Detection rate (the method's own decision, all lesions): " + ", ".join(
            f"`{r['method']}` {fmt_pct(100 * r['detection_rate'])} ({fmt(r['detected'])} of "
            f"{fmt(r['n_lesions'])})" for r in overall.to_dict("records")) + ".")
        notes = [f"`{r['method']}` {fmt(r['n_clipped'])}" for r in overall.to_dict("records")
                 if r["n_clipped"] > 0]
        if notes:
            out.append("Negative mass estimates (used as they are; 0 in the relative interscan "
                       "difference): " + ", ".join(notes) + ".")
        missing = [f"`{r['method']}` {fmt(r['n_not_measured'])}"
                   for r in overall.to_dict("records") if r["n_not_measured"] > 0]
        if missing:
            out.append("Lesion scans a method could not measure (left out): "
                       + ", ".join(missing) + ".")
    return out


def _interscan_sentences(inter, strata):
    if inter.empty or "mean_relative_difference_pct" not in inter:
        return []
    keys = [c for c in strata if c in inter]
    out = []
    for quantity in ("mass_mg", "agatston"):
        sub = inter[inter["quantity"] == quantity]
        if sub.empty:
            continue
        per_method = []
        for method, rows in sub.groupby("method", sort=False):
            if keys and len(rows) > _MAX_GROUPS:   # many conditions: their range
                low, high = rows.loc[rows["mean_relative_difference_pct"].idxmin()], \
                    rows.loc[rows["mean_relative_difference_pct"].idxmax()]
                per_method.append(
                    f"`{method}` {fmt_pct(low['mean_relative_difference_pct'])} "
                    f"({_level_text(low, keys)}) to {fmt_pct(high['mean_relative_difference_pct'])}"
                    f" ({_level_text(high, keys)}) over {count(len(rows), 'condition')}")
                continue
            items = [f"{fmt_pct(r['mean_relative_difference_pct'])} (median "
                     f"{fmt_pct(r['median_relative_difference_pct'])}, {fmt(r['n_subjects'])} "
                     "lesions)" + (f" on {_level_text(r, keys)}" if keys else "")
                     for r in rows.to_dict("records")]
            per_method.append(f"`{method}` " + ", ".join(items))
        out.append(f"Mean relative interscan difference of the {_WORDS[quantity]} (repeat 1 vs "
                   "2, lesions with calcium on at least one scan): " + "; ".join(per_method)
                   + ".")
    return out


def _subject_sentences(inter, strata):
    """The per-subject mean interscan difference of clinical scoring's total Agatston score,
    per condition group (its range over the groups when there are many)."""
    if inter.empty or "mean_relative_difference_pct" not in inter:
        return []
    rows = inter[(inter["quantity"] == "agatston") & (inter["method"] == "clinical")]
    if rows.empty:
        return []
    keys = [c for c in strata if c in rows and c != "phantom"]
    if keys and len(rows) > _MAX_GROUPS:
        low = rows.loc[rows["mean_relative_difference_pct"].idxmin()]
        high = rows.loc[rows["mean_relative_difference_pct"].idxmax()]
        text = (f"{fmt_pct(low['mean_relative_difference_pct'])} ({_level_text(low, keys)}) to "
                f"{fmt_pct(high['mean_relative_difference_pct'])} ({_level_text(high, keys)}) "
                f"over {count(len(rows), 'condition')}")
    else:
        text = "; ".join(
            f"{fmt_pct(r['mean_relative_difference_pct'])} [{fmt_pct(r['mean_ci_low'])}, "
            f"{fmt_pct(r['mean_ci_high'])}] over {count(int(r['n_subjects']), 'subject')}"
            + (f" on {_level_text(r, keys)}" if keys else "") for r in rows.to_dict("records"))
    return ["Mean relative interscan difference of each subject's total Agatston score, "
            "`clinical` (repeat 1 vs 2, subjects with calcium on at least one scan): "
            + text + "."]


def _comparison_sentences(table, what, strata, unit):
    if table.empty:
        return []
    keys = [c for c in strata if c in table]
    rows = table[table["quantity"] == "mass_mg"].to_dict("records")
    methods = {m for r in rows for m in (r["method_a"], r["method_b"])}
    if len(rows) > _MAX_PAIRS and "clinical" in methods:
        rows = [r for r in rows if "clinical" in (r["method_a"], r["method_b"])]
    if keys and table.groupby(keys, dropna=False).ngroups > _MAX_GROUPS:
        return _comparison_counts(rows, what, table.groupby(keys, dropna=False).ngroups)
    out = []
    for r in rows[:_MAX_PAIRS]:
        p = r["t_p_value_holm"]
        where = f" on {_level_text(r, keys)}" if keys else ""
        if pd.isna(p):
            verdict = "no test possible (identical values)"
        elif p < ALPHA:
            smaller = r["method_a"] if r["mean_difference"] < 0 else r["method_b"]
            verdict = f"`{smaller}` smaller, significant at the {ALPHA} level"
        else:
            verdict = f"not significant at the {ALPHA} level"
        out.append(f"{what}{where}, `{r['method_a']}` vs `{r['method_b']}`: mean "
                   f"{fmt(r['mean_a'])} vs {fmt(r['mean_b'])} {unit}, difference "
                   f"{_signed(r['mean_difference'], unit)} [{fmt(r['ci_low'])}, "
                   f"{fmt(r['ci_high'])}]"
                   f", paired t p = {fmt_p(p)} (Holm, {fmt(r['n_subjects'])} pairs): "
                   f"{verdict}.")
    if len(table[table["quantity"] == "mass_mg"]) > len(out):
        out.append(f"{what}: the other method pairs are in the comparison tables.")
    return out


def _comparison_counts(rows, what, n_groups):
    """One sentence per method pair: in how many conditions each method was significantly
    smaller (Holm-adjusted paired t test), for a study of many conditions."""
    pairs = {}
    for r in rows:
        pairs.setdefault((r["method_a"], r["method_b"]), []).append(r)
    out = []
    for (a, b), tests in list(pairs.items())[:_MAX_PAIRS]:
        p = [t["t_p_value_holm"] for t in tests]
        a_smaller = sum(1 for t, q in zip(tests, p) if q < ALPHA and t["mean_difference"] < 0)
        b_smaller = sum(1 for t, q in zip(tests, p) if q < ALPHA and t["mean_difference"] > 0)
        out.append(f"{what}, `{a}` vs `{b}` in {count(len(tests), 'condition')} (paired t, "
                   f"Holm, p < {ALPHA}): `{a}` significantly smaller in {a_smaller}, `{b}` in "
                   f"{b_smaller}, no significant difference in {len(tests) - a_smaller - b_smaller}.")
    if out:
        out.append(f"{what}: the tests per condition ({count(n_groups, 'condition')}) and of "
                   "the other method pairs are in the comparison tables.")
    return out


def _risk_sentences(kappa, reclass, strata):
    if kappa.empty:
        return []
    keys = [c for c in strata if c in kappa and c != "phantom"]
    rec = reclass.set_index(["method", *keys]) if not reclass.empty else None
    out = []
    for r in kappa.to_dict("records"):
        key = tuple(r[c] for c in ["method", *keys])
        text = (f"Risk category of the total Agatston score, `{r['method']}`"
                + (f" on {_level_text(r, keys)}" if keys else "")
                + f": linearly weighted kappa {fmt(r['kappa'])} [{fmt(r['ci_low'])}, "
                f"{fmt(r['ci_high'])}] over {fmt(r['n_subjects'])} subjects")
        if rec is not None and key in rec.index:
            row = rec.loc[key]
            text += (f"; {fmt_pct(100 * row['reclassified_share'])} reclassified "
                     f"({fmt(int(row['n_reclassified']))} of {fmt(int(row['n_subjects']))})")
        out.append(text + ".")
    return out


def summary_sentences(results, long, strata, tables, failures):
    """The summary bullets of a report, from its tables."""
    out = [_run_sentence(results, strata)]
    silent = [m for m in dict.fromkeys(results["method"]) if m not in set(long["method"])]
    if silent:
        out.append(", ".join(f"`{m}`" for m in silent) + " reported no volume, mass or "
                   "Agatston score (only its own columns in the results), so no statistic "
                   "here describes it.")
    acc = tables.get("accuracy", pd.DataFrame())
    if not acc.empty:
        out += _accuracy_sentences(acc) + _stratum_sentences(acc)
    out += _interscan_sentences(tables.get("interscan", pd.DataFrame()), strata)
    out += _subject_sentences(tables.get("subject_interscan", pd.DataFrame()), strata)
    out += _risk_sentences(tables.get("risk_kappa", pd.DataFrame()),
                           tables.get("risk_reclassification", pd.DataFrame()), strata)
    out += _comparison_sentences(tables.get("compare_accuracy", pd.DataFrame()),
                                 "Absolute mass error", strata, "mg")
    out += _comparison_sentences(tables.get("compare_interscan", pd.DataFrame()),
                                 "Relative interscan mass difference", strata, "%")
    if len(failures):
        out.append(f"{count(len(failures), 'task')} failed; missing from every statistic "
                   "(see Failures).")
    else:
        out.append("No task failed.")
    return out
