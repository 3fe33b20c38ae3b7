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


def test_risk_tables_give_interscan_and_icc_of_patient_totals():
    from pvcalc.study import _report_tables as T

    # three patients; lesion rows of one method, repeats 1 and 2 (hand-made totals:
    # p0: 10 + 20 = 30 vs 40; p1: 100 vs 50; p2: 0 vs 0)
    rows = []
    for patient, lesions in {"p0": [(10.0, 10.0), (20.0, 30.0)], "p1": [(100.0, 50.0)],
                             "p2": [(0.0, 0.0)]}.items():
        for k, (a, b) in enumerate(lesions):
            for rep, value in ((1, a), (2, b)):
                rows.append({"task_key": f"{patient}|r{rep}", "condition": patient,
                             "repeat": rep, "phantom": patient, "lesion": f"l{k}",
                             "method": "clinical", "agatston": value, "volume_mm3": value,
                             "mass_mg": value, "true_volume_mm3": 1.0, "true_mass_mg": 1.0})
    long, strata = T.prepare(pd.DataFrame(rows))
    out = T.risk_tables(long, strata)
    inter = out["interscan"].iloc[0]
    expected = [100 * 10 / 35, 100 * 50 / 75]           # |A - B| / mean, p2 both zero
    assert inter["n_subjects"] == 2 and inter["n_both_zero"] == 1
    assert inter["mean_relative_difference_pct"] == pytest.approx(np.mean(expected))
    assert inter["median_relative_difference_pct"] == pytest.approx(np.median(expected))
    icc = out["icc"].set_index("type")
    assert set(icc.index) == {"ICC1", "ICC2", "ICC3"}
    # ICC(1) from the one-way ANOVA of the three subjects' totals, by hand
    x = np.array([[30.0, 40.0], [100.0, 50.0], [0.0, 0.0]])
    msb = 2 * np.var(x.mean(axis=1), ddof=1)
    msw = np.sum((x - x.mean(axis=1, keepdims=True)) ** 2) / 3
    assert icc.loc["ICC1", "icc"] == pytest.approx((msb - msw) / (msb + msw))


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
