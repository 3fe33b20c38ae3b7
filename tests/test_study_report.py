"""The study report: its tables equal independent pandas / scipy computations on the results,
its summary states the tables' numbers, its files are self-contained and byte-stable.

One tiny stored study (the CCI replica on two protocols, 2 repeats, clinical and
integrated, 256 x 256 pixels) is run once through the command line, which writes the
report at the end; ``pvcalc study report DIR`` writes it again and must give the same bytes.
"""

import base64
import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from pvcalc.cli import main
from pvcalc.study import load_spec, read_results
from pvcalc.study._folders import FolderError
from pvcalc.study._report_render import fmt, fmt_p, fmt_pct
from pvcalc.study.report import write_report

SPEC = """
[study]
name = "tiny"
description = "CCI replica, two protocols, clinical vs integrated"
seed = 11
repeats = 2

[[phantoms]]
name = "cci"

[grid]
protocol = ["calcium_scoring", "low_dose_chest"]
matrix = 256
pixel_mm = 0.49

[methods.clinical]
[methods.integrated]

[report]
formats = ["markdown", "html"]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """(folder, results, bytes of every report file written by `study run`)."""
    root = tmp_path_factory.mktemp("report")
    spec = root / "tiny.toml"
    spec.write_text(SPEC)
    out = root / "tiny"
    assert main(["study", "run", str(spec), "--out", str(out), "--workers", "1"]) == 0
    first = {p.name: p.read_bytes() for p in sorted((out / "report").iterdir())}
    return out, read_results(out), first


def _csv(out, name):
    return pd.read_csv(out / "report" / f"{name}.csv")


def _summary(out):
    text = (out / "report" / "report.md").read_text()
    block = text.split("## Summary\n", 1)[1].split("\n## ", 1)[0]
    return [line[2:] for line in block.splitlines() if line.startswith("- ")]


def _mass(results):
    """Per result row: the mass estimate (unclipped: an estimate < 0 stays) and the truth."""
    d = results.copy()
    d["est"] = d["mass_mg"].astype(float)
    d["true"] = d["true_mass_mg"].astype(float)
    return d


def test_files_exist_and_html_is_self_contained(study):
    _, _, first = study
    names = set(first)
    assert {"report.md", "report.html", "accuracy.csv", "interscan.csv", "icc.csv",
            "bland_altman.csv", "compare_accuracy.csv", "conditions.csv",
            "failures.csv"} <= names
    pngs = sorted(n for n in names if n.endswith(".png"))
    assert pngs == ["bland_altman_mass.png", "error_vs_true_mass.png",
                    "interscan_difference_mass.png"]
    html = first["report.html"].decode()
    assert 'src="http' not in html and 'href="http' not in html and "<link" not in html
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(first[p] for p in pngs)
    md = first["report.md"].decode()
    assert all(f"]({p})" in md for p in pngs)
    assert "```toml" in md and 'name = "tiny"' in md        # the spec as given


def test_report_command_rewrites_the_same_bytes(study, capsys):
    out, _, first = study
    assert main(["study", "report", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'report'}"
    again = {p.name: p.read_bytes() for p in sorted((out / "report").iterdir())}
    assert again.keys() == first.keys()
    for name in first:
        assert again[name] == first[name], name


def test_accuracy_equals_pandas(study):
    out, results, _ = study
    acc = _csv(out, "accuracy")
    d = _mass(results)
    groups = [((m, "all"), s) for m, s in d.groupby("method")]
    groups += [((m, p), s) for (m, p), s in d.groupby(["method", "protocol"])]
    for (method, level), sub in groups:
        row = acc[(acc.quantity == "mass_mg") & (acc.method == method) & (acc.level == level)]
        assert len(row) == 1
        row = row.iloc[0]
        err = sub["est"] - sub["true"]
        assert row["n_lesions"] == len(sub)
        assert row["bias"] == pytest.approx(err.mean(), rel=1e-12, abs=1e-12)
        assert row["rmse"] == pytest.approx(np.sqrt((err ** 2).mean()), rel=1e-12)
        assert row["relative_error_pct"] == pytest.approx((100 * err / sub["true"]).mean(),
                                                          rel=1e-12)
        assert row["detection_rate"] == pytest.approx(sub["detected"].astype(bool).mean())
        assert row["n_clipped"] == int((sub["mass_mg"] < 0).sum())


def test_a_negative_estimate_enters_accuracy_as_it_is_and_interscan_as_zero(study, tmp_path):
    """An unclipped integrated mass below 0: accuracy uses it, the relative difference 0."""
    out, results, _ = study
    res = results.copy()
    first = res.index[(res.method == "integrated") & (res.repeat == 1)
                      & (res.protocol == "calcium_scoring")][0]
    res.loc[first, "mass_mg"] = -0.25
    lesion = res.loc[first, "lesion"]
    folder = write_report(tmp_path / "negative", results=res, spec=load_spec(out))
    acc = pd.read_csv(folder / "accuracy.csv")
    d = _mass(res)
    sub = d[(d.method == "integrated") & (d.protocol == "calcium_scoring")]
    row = acc[(acc.quantity == "mass_mg") & (acc.method == "integrated")
              & (acc.level == "calcium_scoring")].iloc[0]
    assert row["n_clipped"] == 1
    assert row["bias"] == pytest.approx((sub["est"] - sub["true"]).mean(), rel=1e-12)
    assert row["bias"] < (sub["est"].clip(lower=0) - sub["true"]).mean()
    per = d[(d.method == "integrated") & (d.protocol == "calcium_scoring")
            & (d.lesion == lesion)].set_index("repeat")["est"]
    a, b = max(per[1], 0.0), per[2]
    inter = pd.read_csv(folder / "interscan.csv")
    mean = inter[(inter.quantity == "mass_mg") & (inter.method == "integrated")
                 & (inter.protocol == "calcium_scoring")]["mean_relative_difference_pct"]
    w = d[(d.method == "integrated") & (d.protocol == "calcium_scoring")].pivot_table(
        index="lesion", columns="repeat", values="est").clip(lower=0.0)
    rel = (w[1] - w[2]).abs() / ((w[1] + w[2]) / 2) * 100
    assert rel[lesion] == pytest.approx(abs(a - b) / ((a + b) / 2) * 100) and a == 0.0
    assert float(mean.iloc[0]) == pytest.approx(rel[(w[1] > 0) | (w[2] > 0)].mean(), rel=1e-12)


def test_interscan_equals_pandas(study):
    out, results, _ = study
    inter = _csv(out, "interscan")
    ba = _csv(out, "bland_altman")
    d = _mass(results)
    wide = d.pivot_table(index=["method", "protocol", "lesion"], columns="repeat",
                         values="est").reset_index()
    for (method, protocol), sub in wide.groupby(["method", "protocol"]):
        a, b = sub[1].to_numpy(), sub[2].to_numpy()
        # the relative difference counts an estimate below 0 as 0; the rest use it as it is
        ac, bc = np.clip(a, 0.0, None), np.clip(b, 0.0, None)
        both_zero = (ac == 0) & (bc == 0)
        with np.errstate(invalid="ignore"):          # 0 / 0 for the both-zero pairs
            rel = np.abs(ac - bc) / ((ac + bc) / 2) * 100
        key = (inter.quantity == "mass_mg") & (inter.method == method) & \
              (inter.protocol == protocol)
        row = inter[key].iloc[0]
        assert row["n_subjects"] == (~both_zero).sum()
        assert row["n_both_zero"] == both_zero.sum()
        assert row["mean_relative_difference_pct"] == pytest.approx(rel[~both_zero].mean(),
                                                                    rel=1e-12)
        assert row["median_relative_difference_pct"] == pytest.approx(
            np.median(rel[~both_zero]), rel=1e-12)
        # two repeats: within-subject variance = sum(d^2) / (2 n); RC = 1.96 sqrt(2) s_w
        s_w = np.sqrt(((a - b) ** 2).sum() / (2 * a.size))
        assert row["within_subject_sd"] == pytest.approx(s_w, rel=1e-12)
        assert row["repeatability_coefficient"] == pytest.approx(
            st.norm.ppf(0.975) * np.sqrt(2) * s_w, rel=1e-12)
        brow = ba[(ba.quantity == "mass_mg") & (ba.method == method)
                  & (ba.protocol == protocol)].iloc[0]
        assert brow["bias"] == pytest.approx((a - b).mean(), rel=1e-10, abs=1e-12)
        assert brow["loa_high"] == pytest.approx(
            (a - b).mean() + st.norm.ppf(0.975) * (a - b).std(ddof=1), rel=1e-10)


def test_method_comparison_equals_scipy(study):
    out, results, _ = study
    comp = _csv(out, "compare_accuracy")
    d = _mass(results)
    d["abs_error"] = (d["est"] - d["true"]).abs()
    for protocol, sub in d.groupby("protocol"):
        w = sub.pivot_table(index=["task_key", "lesion"], columns="method", values="abs_error")
        row = comp[(comp.quantity == "mass_mg") & (comp.protocol == protocol)].iloc[0]
        assert (row["method_a"], row["method_b"]) == ("clinical", "integrated")
        t = st.ttest_rel(w["clinical"], w["integrated"])
        assert row["t_p_value"] == pytest.approx(t.pvalue, rel=1e-10)
        assert row["t_p_value_holm"] == pytest.approx(t.pvalue, rel=1e-10)  # one pair
        assert row["mean_difference"] == pytest.approx(
            (w["clinical"] - w["integrated"]).mean(), rel=1e-12)


def test_summary_states_the_tables_numbers(study):
    out, _, _ = study
    lines = _summary(out)
    acc = _csv(out, "accuracy")
    overall = acc[(acc.quantity == "mass_mg") & (acc.stratum == "all")].sort_values("rmse")
    mass = next(line for line in lines if line.startswith("Mass against truth"))
    best, worst = overall.iloc[0], overall.iloc[-1]
    assert f"smallest RMSE `{best.method}` {fmt(best.rmse)} mg" in mass
    assert f"largest `{worst.method}` {fmt(worst.rmse)} mg" in mass
    assert fmt_pct(best.abs_relative_error_pct) in mass
    detection = next(line for line in lines if line.startswith("Detection rate"))
    for r in overall.itertuples():
        assert f"`{r.method}` {fmt_pct(100 * r.detection_rate)}" in detection
    inter = _csv(out, "interscan")
    text = next(line for line in lines if "interscan difference of the mass" in line)
    for r in inter[inter.quantity == "mass_mg"].itertuples():
        assert f"{fmt_pct(r.mean_relative_difference_pct)} (median" in text
    comp = _csv(out, "compare_accuracy")
    for r in comp[comp.quantity == "mass_mg"].itertuples():
        line = next(x for x in lines if x.startswith(f"Absolute mass error on {r.protocol}"))
        assert f"p = {fmt_p(r.t_p_value_holm)}" in line
        assert ("not significant" in line) == (r.t_p_value_holm >= 0.05)
    assert lines[-1] == "No task failed."


def test_risk_categories_of_a_population(study, tmp_path):
    """Six 'patients' made from the stored scans (Agatston scaled per patient): kappa and
    reclassification equal a hand computation on the per-patient totals."""
    out, results, _ = study
    factors = [0.0, 0.03, 0.2, 1.0, 3.0, 9.0]
    parts = []
    for k, f in enumerate(factors):
        p = results.copy()
        p["phantom"] = f"patients_{k:03d}"
        p["phantom_name"] = "patients"
        p["patient_index"] = k
        p["condition"] = p["phantom"] + "|" + p["protocol"]
        p["task_key"] = p["condition"] + "|r" + p["repeat"].astype(str)
        p["agatston"] = p["agatston"] * f
        parts.append(p)
    population = pd.concat(parts, ignore_index=True)
    spec = load_spec(out)
    spec = dataclasses.replace(spec, report={
        "statistics": ("weighted_kappa", "reclassification"),
        "figures": ("transition_heatmap",), "formats": ("markdown",)})
    folder = write_report(tmp_path, results=population, spec=spec)
    assert {p.name for p in folder.iterdir()} >= {"risk_kappa.csv", "risk_transitions.png",
                                                 "report.md"}
    assert not (folder / "report.html").exists() and not (folder / "accuracy.csv").exists()
    kap = pd.read_csv(folder / "risk_kappa.csv")
    rec = pd.read_csv(folder / "risk_reclassification.csv")
    labels = ["0", "1-10", "11-100", "101-400", ">400"]
    clinical = population[population.method == "clinical"]
    totals = clinical.groupby(["protocol", "phantom", "repeat"])["agatston"].sum()
    cats = pd.cut(totals, [-np.inf, 0, 10, 100, 400, np.inf], labels=labels).unstack("repeat")
    for protocol, sub in cats.groupby(level="protocol"):
        i = sub[1].cat.codes.to_numpy()
        j = sub[2].cat.codes.to_numpy()
        table = np.zeros((5, 5))
        np.add.at(table, (i, j), 1)
        p = table / table.sum()
        w = 1 - np.abs(np.subtract.outer(np.arange(5), np.arange(5))) / 4
        po = (w * p).sum()
        pe = (w * np.outer(p.sum(1), p.sum(0))).sum()
        row = kap[(kap.method == "clinical") & (kap.protocol == protocol)].iloc[0]
        assert row["kappa"] == pytest.approx((po - pe) / (1 - pe), rel=1e-10)
        rrow = rec[(rec.method == "clinical") & (rec.protocol == protocol)].iloc[0]
        assert rrow["n_reclassified"] == int((i != j).sum())
    lines = _summary(tmp_path)
    assert any(line.startswith("Risk category of the total Agatston score, `clinical`")
               for line in lines)


def test_empty_or_failed_only_results_give_a_clear_report(tmp_path):
    failures = pd.DataFrame({"task_key": ["cci|calcium_scoring|r001|0badc0de"],
                             "error": ["ValueError: calibration rods not found"]})
    folder = write_report(tmp_path, results=pd.DataFrame(), failures=failures)
    md = (folder / "report.md").read_text()
    assert "The study has no result rows yet: 1 task failed and none completed." in md
    # in a Markdown table cell "|" is written "\\|"
    assert ("| `cci\\|calcium_scoring\\|r001\\|0badc0de` | ValueError: calibration rods not "
            "found |") in md
    assert pd.read_csv(folder / "failures.csv").equals(failures)


def test_bad_input_is_refused_clearly(study, tmp_path):
    _, results, _ = study
    with pytest.raises(ValueError, match="holds no study"):
        write_report(tmp_path / "none")
    assert not (tmp_path / "none").exists()
    with pytest.raises(TypeError, match="results must be a pandas DataFrame"):
        write_report(tmp_path, results=results.to_dict())
    with pytest.raises(ValueError, match=r"lack the columns \['true_mass_mg'\]"):
        write_report(tmp_path, results=results.drop(columns=["true_mass_mg"]))
    with pytest.raises(ValueError, match="formats must be"):
        write_report(tmp_path, results=results, formats=["pdf"])
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "my notes.txt").write_text("keep me")
    with pytest.raises(FolderError, match="did not write"):
        write_report(tmp_path, results=results.iloc[:0])
    assert (tmp_path / "report" / "my notes.txt").read_text() == "keep me"
