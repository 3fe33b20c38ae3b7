"""Per-subject (per-patient) totals of a study report: the interscan statistics of each
patient's total on scan 1 vs scan 2 equal a hand computation, and the report shows them.

A tiny hand-made results frame of five virtual patients (one without lesions, known only
from the scans table), two methods and two repeats; every expected number below is typed
in or computed here from the raw lesion values, never read from the code under test.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from pvcalc.study import _report_subjects as P
from pvcalc.study import _report_tables as T
from pvcalc.study import parse_spec
from pvcalc.study._report_render import fmt, fmt_pct
from pvcalc.study.report import write_report

NAN = float("nan")
#: (method, quantity) -> patient -> [(repeat 1, repeat 2) per lesion]; p4 has no lesions.
LESIONS = {
    ("clinical", "agatston"): {"p0": [(10, 12), (20, 30)], "p1": [(100, 50)],
                               "p2": [(0, 0), (0, 0)], "p3": [(5, 0)]},
    ("clinical", "mass_mg"): {"p0": [(2, 3), (4, 4)], "p1": [(20, 10)],
                              "p2": [(0, 0), (0, 0)], "p3": [(1, 1)]},
    ("clinical", "volume_mm3"): {"p0": [(8, 8), (16, 24)], "p1": [(80, 40)],
                                 "p2": [(0, 0), (0, 0)], "p3": [(4, 0)]},
    # integrated: no Agatston score; p2's first scan sums to -2 (a total of 0), p3's
    # second scan has a mass the method could not measure
    ("integrated", "mass_mg"): {"p0": [(2.5, 3.5), (4, 3)], "p1": [(18, 12)],
                                "p2": [(-3, 2), (1, 2)], "p3": [(0.9, NAN)]},
    ("integrated", "volume_mm3"): {"p0": [(9, 9), (15, 20)], "p1": [(70, 50)],
                                   "p2": [(-5, 1), (2, 1)], "p3": [(3, 3)]},
}
#: The totals by hand (scan 1, scan 2), a total below 0 counted as 0, None: not measured.
TOTALS = {
    ("clinical", "agatston"): {"p0": (30, 42), "p1": (100, 50), "p2": (0, 0), "p3": (5, 0)},
    ("clinical", "mass_mg"): {"p0": (6, 7), "p1": (20, 10), "p2": (0, 0), "p3": (1, 1)},
    ("clinical", "volume_mm3"): {"p0": (24, 32), "p1": (80, 40), "p2": (0, 0), "p3": (4, 0)},
    ("integrated", "mass_mg"): {"p0": (6.5, 6.5), "p1": (18, 12), "p2": (0, 4), "p3": None},
    ("integrated", "volume_mm3"): {"p0": (24, 29), "p1": (70, 50), "p2": (0, 2),
                                   "p3": (3, 3)},
}


def _frame(protocol="chest", patients=("p0", "p1", "p2", "p3")):
    rows = []
    for method in ("clinical", "integrated"):
        for patient in patients:
            n = len(LESIONS[(method, "mass_mg")][patient])
            for k in range(n):
                for rep in (1, 2):
                    row = {"task_key": f"{patient}|{protocol}|r{rep}",
                           "condition": f"{patient}|{protocol}", "repeat": rep,
                           "phantom": patient, "phantom_name": "patients",
                           "patient_index": int(patient[1]), "protocol": protocol,
                           "lesion": f"l{k}", "method": method, "reason": None,
                           "true_volume_mm3": 10.0, "true_mass_mg": 2.0, "agatston": NAN}
                    for quantity in ("agatston", "mass_mg", "volume_mm3"):
                        if (method, quantity) in LESIONS:
                            row[quantity] = float(LESIONS[(method, quantity)][patient][k]
                                                  [rep - 1])
                    if np.isnan(row["mass_mg"]):
                        row["reason"] = "no plateau"
                    rows.append(row)
    return pd.DataFrame(rows)


def _scans(protocol="chest"):
    """The scans table: the four patients with lesions and p4 without any."""
    lesions = {"p0": 2, "p1": 1, "p2": 2, "p3": 1, "p4": 0}
    return pd.DataFrame([{"task_key": f"{p}|{protocol}|r{rep}", "condition": f"{p}|{protocol}",
                          "repeat": rep, "phantom": p, "protocol": protocol, "n_lesions": n}
                         for p, n in lesions.items() for rep in (1, 2)])


def _relative(a, b):
    return 100 * abs(a - b) / ((a + b) / 2)


def _expected(method, quantity):
    """Interscan summary and ICC(A,1) of the hand totals (p4: 0 on both scans)."""
    totals = {**TOTALS[(method, quantity)], "p4": (0, 0)}
    measured = [v for v in totals.values() if v is not None]
    d = np.array([_relative(a, b) for a, b in measured if a + b > 0])
    n = d.size
    half = st.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
    # ICC(A,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n), two-way ANOVA
    x = np.array(measured, float)
    ns, k = x.shape
    rows, cols, grand = x.mean(axis=1), x.mean(axis=0), x.mean()
    msr = k * np.var(rows, ddof=1)
    msc = ns * np.var(cols, ddof=1)
    mse = np.sum((x - rows[:, None] - cols[None, :] + grand) ** 2) / ((ns - 1) * (k - 1))
    icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / ns)
    return {"n_subjects": n, "n_both_zero": len(measured) - n,
            "n_not_measured": len(totals) - len(measured),
            "mean": d.mean(), "ci": (d.mean() - half, d.mean() + half),
            "median": np.median(d), "icc": icc, "n_icc": ns}


PAIRS = list(TOTALS)


def test_subject_tables_equal_the_hand_totals():
    long, strata = T.prepare(_frame())
    out = P.subject_tables(long, strata, _scans())
    assert strata == []          # a population: the patients are subjects, not a stratum
    totals = out["totals"]
    assert set(zip(totals["method"], totals["quantity"])) == set(PAIRS)   # no integrated Agatston
    for (method, quantity), by_patient in TOTALS.items():
        sub = totals[(totals.method == method) & (totals.quantity == quantity)]
        for patient, pair in {**by_patient, "p4": (0, 0)}.items():
            rows = sub[sub.phantom == patient].sort_values("repeat")
            if pair is None:
                assert rows["not_measured"].tolist() == [False, True]
                assert rows["total"].iloc[1] != rows["total"].iloc[1]     # NaN
                continue
            assert rows["total"].tolist() == pytest.approx(list(pair)), (method, quantity)
    clipped = totals[totals["clipped"]]
    assert sorted(zip(clipped.method, clipped.quantity, clipped.phantom, clipped.repeat)) == [
        ("integrated", "mass_mg", "p2", 1), ("integrated", "volume_mm3", "p2", 1)]
    inter = out["interscan"].set_index(["method", "quantity"])
    icc = out["icc"].set_index(["method", "quantity"])
    assert set(out["icc"]["type"]) == {"ICC2"}
    for pair in PAIRS:
        e = _expected(*pair)
        row = inter.loc[pair]
        assert (row["n_subjects"], row["n_both_zero"], row["n_not_measured"]) == (
            e["n_subjects"], e["n_both_zero"], e["n_not_measured"]), pair
        assert row["mean_relative_difference_pct"] == pytest.approx(e["mean"])
        assert (row["mean_ci_low"], row["mean_ci_high"]) == pytest.approx(e["ci"])
        assert row["median_relative_difference_pct"] == pytest.approx(e["median"])
        assert row["n_clipped"] == (1 if pair[0] == "integrated" else 0)
        assert row["repeats_compared"] == "1 vs 2"
        assert icc.loc[pair, "icc"] == pytest.approx(e["icc"])
        assert icc.loc[pair, "n_subjects"] == e["n_icc"]
        assert icc.loc[pair, "ci_low"] < icc.loc[pair, "icc"] < icc.loc[pair, "ci_high"]
    # the Agatston totals of clinical scoring: 33.3%, 66.7% and 200%, by hand
    assert inter.loc[("clinical", "agatston"), "mean_relative_difference_pct"] == \
        pytest.approx((100 * 12 / 36 + 100 * 50 / 75 + 200) / 3)


def test_subject_tables_stratify_by_condition_and_need_two_subjects():
    # protocol "b" holds one patient only: that group is left out
    frame = pd.concat([_frame("a"), _frame("b", patients=("p0",))], ignore_index=True)
    long, strata = T.prepare(frame)
    assert strata == ["protocol"]
    out = P.subject_tables(long, strata)
    assert set(out["interscan"]["protocol"]) == {"a"} == set(out["icc"]["protocol"])
    row = out["interscan"].set_index(["method", "quantity"]).loc[("clinical", "agatston")]
    assert (row["n_subjects"], row["n_both_zero"]) == (3, 1)   # no scans table: no p4
    one = P.subject_tables(long[long["repeat"] == 1], strata)
    assert all(t.empty for t in one.values())


def test_risk_tables_use_the_subject_totals():
    long, strata = T.prepare(_frame())
    risk = P.risk_tables(long, strata, _scans())
    totals = risk["totals"].set_index(["phantom", "repeat"])["total_agatston"]
    assert totals.to_dict() == {(p, r + 1): float(v) for p, pair in
                                {**TOTALS[("clinical", "agatston")], "p4": (0, 0)}.items()
                                for r, v in enumerate(pair)}
    assert set(risk) == {"totals", "kappa", "reclassification", "transitions"}
    assert risk["kappa"]["n_subjects"].tolist() == [5]


def _spec(statistics):
    spec = parse_spec('[study]\nname = "subjects"\nseed = 1\n\n[[phantoms]]\nname = "patients"\n'
                      'n = 5\nseed = 3\n\n[grid]\nprotocol = "screening_chest"\n\n'
                      '[methods.clinical]\n[methods.integrated]\n\n[calibration]\nsource = "nominal"\n')
    return dataclasses.replace(spec, report={"statistics": statistics, "figures": (),
                                             "formats": ("markdown",)})


def test_report_writes_the_subject_tables_and_section(tmp_path):
    spec = _spec(("interscan_difference", "icc", "weighted_kappa"))
    folder = write_report(tmp_path, results=_frame(), scans=_scans(), spec=spec)
    inter = pd.read_csv(folder / "subject_interscan.csv").set_index(["method", "quantity"])
    icc = pd.read_csv(folder / "subject_icc.csv").set_index(["method", "quantity"])
    for pair in PAIRS:
        e = _expected(*pair)
        assert inter.loc[pair, "mean_relative_difference_pct"] == pytest.approx(e["mean"])
        assert inter.loc[pair, "n_not_measured"] == e["n_not_measured"]
        assert icc.loc[pair, "icc"] == pytest.approx(e["icc"])
    md = (folder / "report.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    i = headings.index("## Per-subject totals")
    assert headings[i - 1] == "## Interscan reproducibility"
    assert headings[i + 1] == "## Risk categories"
    section = md.split("## Per-subject totals\n", 1)[1].split("\n## ", 1)[0]
    assert [h for h in section.splitlines() if h.startswith("### ")] == [
        "### Total Agatston score", "### Total mass", "### Total volume"]
    e = _expected("clinical", "agatston")
    assert (f"| clinical | 3 (2 / 0) | {fmt(e['mean'])} [{fmt(e['ci'][0])}, "
            f"{fmt(e['ci'][1])}] | {fmt(e['median'])} [n/a, n/a] | {fmt(e['icc'])} [") in section
    e = _expected("integrated", "mass_mg")
    assert f"| integrated | 3 (1 / 1) | {fmt(e['mean'])} [" in section
    assert "A subject is one phantom (virtual patient) in one condition" in section
    summary = md.split("## Summary\n", 1)[1].split("\n## ", 1)[0]
    e = _expected("clinical", "agatston")
    assert (f"each subject's total Agatston score, `clinical` (repeat 1 vs 2, subjects with "
            f"calcium on at least one scan): {fmt_pct(e['mean'])} [{fmt_pct(e['ci'][0])}, "
            f"{fmt_pct(e['ci'][1])}] over 3 subjects.") in summary


def test_report_follows_the_statistics_selection_and_explains_a_single_phantom(tmp_path):
    folder = write_report(tmp_path / "icc", results=_frame(), scans=_scans(),
                          spec=_spec(("icc",)))
    assert (folder / "subject_icc.csv").exists()
    assert not (folder / "subject_interscan.csv").exists()
    section = (folder / "report.md").read_text().split("## Per-subject totals\n", 1)[1]
    assert "| clinical | 5 | " in section.split("\n## ", 1)[0]       # subjects of the ICC
    folder = write_report(tmp_path / "none", results=_frame(), spec=_spec(("accuracy",)))
    assert "## Per-subject totals" not in (folder / "report.md").read_text()
    # one phantom (an insert phantom, say): one subject per condition, not computed
    single = _frame(patients=("p0",)).drop(columns=["phantom_name", "patient_index"])
    folder = write_report(tmp_path / "single", results=single, spec=_spec(("icc",)))
    text = (folder / "report.md").read_text()
    assert "## Per-subject totals\n\nNot computed: per-subject totals compare" in text
    assert not (folder / "subject_icc.csv").exists()
