"""The lung-screening population, the screening chest preset and the per-patient interscan
tables: each set from published numbers, checked against those numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import phantoms
from phantoms._library_screening import MAX_SCREENING_LESIONS, screening_burden
from phantoms.library import lesion_population, virtual_patient

# Published values, typed in from the papers (not read from the code under test).
JACOBS_2010_SHARE_WITH_CALCIUM = 0.758       # AJR 2010;194:1244, baseline Agatston > 0
TAKX_2014_AGATSTON_MEDIAN, TAKX_2014_AGATSTON_P75 = 39.6, 345.9   # PLoS ONE 2014;9:e91239
TAKX_2014_LESIONS_MEDIAN, TAKX_2014_LESIONS_P75 = 2, 4


def _draws(n=20000):
    u = (np.arange(n) + 0.5) / n                 # a uniform grid: quantiles without noise
    out = [screening_burden(float(x)) for x in u]
    return np.array([t for t, _ in out]), np.array([k for _, k in out])


def test_screening_burden_reproduces_the_published_quantiles():
    total, n = _draws()
    assert np.mean(total > 0) == pytest.approx(JACOBS_2010_SHARE_WITH_CALCIUM, abs=1e-3)
    assert np.median(total) == pytest.approx(TAKX_2014_AGATSTON_MEDIAN, rel=2e-3)
    assert np.percentile(total, 75) == pytest.approx(TAKX_2014_AGATSTON_P75, rel=2e-3)
    assert np.percentile(total, 25) < 0.5     # Takx et al.: 0 (Jacobs et al.: 24.2% zeros)
    assert np.median(n) == TAKX_2014_LESIONS_MEDIAN
    assert np.percentile(n, 75, method="lower") == TAKX_2014_LESIONS_P75
    assert np.percentile(n, 24, method="lower") == 0
    # no calcium <=> no lesion; more calcium never means fewer lesions (comonotone)
    assert np.array_equal(total == 0, n == 0)
    assert np.all(np.diff(n) >= 0) and np.all(np.diff(total) >= 0)
    assert n.max() == MAX_SCREENING_LESIONS


def test_screening_patients_follow_the_burden_and_are_reproducible():
    pop = lesion_population(12, seed=7, population="screening", motion=False)
    again = lesion_population(6, seed=7, population="screening", motion=False)
    assert [repr(p) for p in pop[:6]] == [repr(p) for p in again]    # i depends on (seed, i)
    children = np.random.SeedSequence(7).spawn(12)
    for p, child in zip(pop, children):
        u = np.random.default_rng(child).uniform()       # the first draw of the patient
        total, n = screening_burden(float(u))
        assert len(p.lesions) <= n and (len(p.lesions) == 0) == (n == 0)
        for les in p.lesions:
            assert 130.0 <= les.density_mg_cm3 <= 900.0
            assert 1.0 - 1e-9 <= les.shape.volume_mm3 <= 400.0 + 1e-6


def test_default_options_give_the_same_patients():
    for seed in (3, 8):
        plain = virtual_patient(seed, risk_category=3)
        explicit = virtual_patient(seed, risk_category=3, population="categories",
                                   motion_scale=1.0, density_range_mg_cm3=(130.0, 900.0),
                                   share_alpha=2.0)
        assert repr(plain) == repr(explicit)


def test_motion_scale_multiplies_the_speeds_and_keeps_the_lesions():
    one = virtual_patient(5, risk_category=4)
    two = virtual_patient(5, risk_category=4, motion_scale=2.0)
    zero = virtual_patient(5, risk_category=4, motion_scale=0.0)
    for a, b, c in zip(one.lesions, two.lesions, zero.lesions):
        assert repr(a.shape) == repr(b.shape) == repr(c.shape)
        assert b.motion.peak_velocity_mm_s == pytest.approx(2 * a.motion.peak_velocity_mm_s)
        assert not c.motion.moves


def test_density_range_and_share_alpha():
    low = virtual_patient(2, risk_category=3, density_range_mg_cm3=(150.0, 250.0))
    assert all(150.0 <= les.density_mg_cm3 <= 250.0 for les in low.lesions)

    def spread(alpha):        # mean coefficient of variation of the lesion volumes
        cv = []
        for seed in range(8):
            vol = [les.shape.volume_mm3 for les in virtual_patient(
                seed, risk_category=3, n_lesions=5, share_alpha=alpha,
                density_range_mg_cm3=(400.0, 401.0)).lesions]
            cv.append(np.std(vol) / np.mean(vol))
        return np.mean(cv)

    # Dirichlet(alpha) shares of n = 5 lesions (volume = share x constant at one density):
    # CV = sqrt((n - 1) / (n alpha + 1)), times about sqrt((n - 1) / n) for the population
    # SD of five values: 0.96 for alpha 0.5, 0.28 for alpha 8
    expected = {a: math.sqrt(4 / (5 * a + 1)) * math.sqrt(4 / 5) for a in (0.5, 8.0)}
    assert spread(0.5) == pytest.approx(expected[0.5], abs=0.3)
    assert spread(8.0) == pytest.approx(expected[8.0], abs=0.12)


@pytest.mark.parametrize("kwargs, text", [
    (dict(population="nelson"), "population must be one of"),
    (dict(population="screening", risk_category=2), "population='screening' draws"),
    (dict(population="screening", n_lesions=3), "leave both None"),
    (dict(motion_scale=-1.0), "motion_scale must be in"),
    (dict(density_range_mg_cm3=(1.0, 900.0)), "within 10-3000"),
    (dict(density_range_mg_cm3=(900.0, 130.0)), "density_range_mg_cm3 must be finite"),
    (dict(share_alpha=0.0), "share_alpha must be in"),
])
def test_population_option_errors(kwargs, text):
    with pytest.raises(ValueError, match=text):
        virtual_patient(1, **kwargs)


def test_screening_population_refuses_categories():
    with pytest.raises(ValueError, match="leave risk_categories at 'balanced'"):
        lesion_population(2, seed=1, population="screening", risk_categories=[1, 2])


def test_screening_chest_preset_has_the_cited_protocol():
    p = phantoms.get_protocol("screening_chest")
    assert p.kvp == 120.0 and not p.gated and p.kernel == "soft"
    assert p.collimation_mm == 16 * 0.75                      # Xu et al. 2006; Peters 2015
    assert p.pitch * p.collimation_mm == pytest.approx(15.0)  # 15 mm feed per rotation
    assert 350.0 / p.table_speed_mm_s == pytest.approx(12.0, abs=0.5)   # ~12 s breath hold
    assert p.temporal_resolution_ms == 1000.0 * p.rotation_time_s       # one rotation
    assert p.noise_sd_hu == pytest.approx(phantoms.noise_sd_from_mas(
        30.0, slice_thickness_mm=p.slice_thickness_mm), abs=0.05)
    assert (p.slice_thickness_mm, p.increment_mm) == (3.0, 1.5)


def test_subject_tables_give_interscan_and_icc_of_patient_totals():
    from pvcalc.study import _report_subjects as P
    from pvcalc.study import _report_tables as T

    # three patients; lesion rows of two methods, repeats 1 and 2 (hand-made totals of
    # clinical, the same for its three quantities: p0: 10 + 20 = 30 vs 40; p1: 100 vs 50;
    # p2: 0 vs 0). integrated (no Agatston score) has p1's mass not measured on scan 2 and
    # p2's total below 0 on scan 1 (-5, counted as 0, against 10)
    nan = float("nan")
    clinical = {"p0": [(10.0, 10.0), (20.0, 30.0)], "p1": [(100.0, 50.0)], "p2": [(0.0, 0.0)]}
    integrated = {"p0": [(10.0, 10.0), (20.0, 30.0)], "p1": [(100.0, 50.0)],
                  "p2": [(-5.0, 10.0)]}
    rows = []
    for method, patients in (("clinical", clinical), ("integrated", integrated)):
        for patient, lesions in patients.items():
            for k, (a, b) in enumerate(lesions):
                for rep, value in ((1, a), (2, b)):
                    mass = nan if (method, patient, rep) == ("integrated", "p1", 2) else value
                    rows.append({"task_key": f"{patient}|r{rep}", "condition": patient,
                                 "repeat": rep, "phantom": patient, "lesion": f"l{k}",
                                 "method": method, "volume_mm3": value, "mass_mg": mass,
                                 "agatston": value if method == "clinical" else nan,
                                 "reason": "no plateau" if mass != mass else None,
                                 "true_volume_mm3": 1.0, "true_mass_mg": 1.0})
    long, strata = T.prepare(pd.DataFrame(rows))
    out = P.subject_tables(long, strata)
    inter = out["interscan"].set_index(["method", "quantity"])
    icc = out["icc"].set_index(["method", "quantity"])
    assert set(out["icc"]["type"]) == {"ICC2"}
    x = np.array([[30.0, 40.0], [100.0, 50.0], [0.0, 0.0]])
    expected = {   # |A - B| / mean per subject with a total, both-zero ones left out
        ("clinical", "agatston"): ([100 * 10 / 35, 100 * 50 / 75], 1, 0, 0, x),
        ("clinical", "mass_mg"): ([100 * 10 / 35, 100 * 50 / 75], 1, 0, 0, x),
        ("clinical", "volume_mm3"): ([100 * 10 / 35, 100 * 50 / 75], 1, 0, 0, x),
        ("integrated", "mass_mg"): ([100 * 10 / 35, 200.0], 0, 1, 1,
                                    np.array([[30.0, 40.0], [0.0, 10.0]])),
        ("integrated", "volume_mm3"): ([100 * 10 / 35, 100 * 50 / 75, 200.0], 0, 0, 1,
                                       np.array([[30.0, 40.0], [100.0, 50.0], [0.0, 10.0]])),
    }
    assert set(inter.index) == set(expected)      # integrated gives no Agatston score
    for key, (d, both_zero, not_measured, clipped, totals) in expected.items():
        row = inter.loc[key]
        assert (row["n_subjects"], row["n_both_zero"]) == (len(d), both_zero), key
        assert (row["n_not_measured"], row["n_clipped"]) == (not_measured, clipped), key
        assert row["mean_relative_difference_pct"] == pytest.approx(np.mean(d))
        assert row["median_relative_difference_pct"] == pytest.approx(np.median(d))
        # ICC(A,1) from the two-way ANOVA of the subjects' totals, by hand
        n, k = totals.shape
        rm, cm = totals.mean(axis=1), totals.mean(axis=0)
        msr, msc = k * np.var(rm, ddof=1), n * np.var(cm, ddof=1)
        mse = np.sum((totals - rm[:, None] - cm[None, :] + totals.mean()) ** 2) / (n - 1)
        assert icc.loc[key, "icc"] == pytest.approx(
            (msr - mse) / (msr + mse + k * (msc - mse) / n)), key
    risk = P.risk_tables(long, strata)
    assert "interscan" not in risk and "icc" not in risk
    assert risk["totals"]["total_agatston"].tolist() == [30.0, 40.0, 100.0, 50.0, 0.0, 0.0]


def _sensitivity_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "validation" / "interscan_sensitivity.py"
    spec = importlib.util.spec_from_file_location("interscan_sensitivity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sensitivity_points_are_valid_specs_and_change_one_factor():
    from pvcalc.study import parse_spec

    script = _sensitivity_script()
    base = parse_spec(script.spec_text(0, 5))
    for i in (3, 10, 18, 20, 22):
        spec = parse_spec(script.spec_text(i, 5))
        changed = [section for section in ("grid", "simulation")
                   if getattr(spec, section) != getattr(base, section)]
        changed += ["phantoms"] if spec.phantoms[0].params != base.phantoms[0].params else []
        assert len(changed) == 1, (i, changed)


def test_sensitivity_summary_by_hand():
    script = _sensitivity_script()
    a = np.array([0.0, 0.0, 10.0, 100.0, 500.0])
    b = np.array([0.0, 5.0, 30.0, 100.0, 300.0])
    s = script.summary(a, b, n_boot=200)
    d = [200.0, 100.0, 0.0, 50.0]                       # |a - b| / mean, both-zero left out
    assert (s["n_pairs"], s["n_both_zero"], s["n_one_zero"]) == (4, 1, 1)
    assert s["mean_pct"] == pytest.approx(np.mean(d)) and s["median_pct"] == 75.0
    # Jacobs et al.'s categories 0 / 1-100 / 101-400 / > 400: patients 2 and 5 move
    assert s["reclassified_jacobs"] == pytest.approx(2 / 5)
    # the standard five (0 / 1-10 / 11-100 / 101-400 / > 400): patients 2, 3 and 5 move
    assert s["reclassified_standard"] == pytest.approx(3 / 5)
    same = pd.DataFrame({"a": a, "b": b})
    assert script.paired_change(same, same, n_boot=50) == (0.0, 0.0, 0.0)


def test_report_strata_label_lesions_without_the_descriptor():
    # patients mix tubes (with a radius) and ellipsoids (none): tertile labels and "n/a"
    from pvcalc.study._report_tables import _level_labels

    values = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, np.nan])
    labels = _level_labels(values, "mm")
    assert labels.iloc[-1] == "n/a" and labels.iloc[:-1].nunique() == 3
    assert labels.iloc[0] == labels.iloc[3] != labels.iloc[4]   # 1-4 | 5-7 | 8-10
