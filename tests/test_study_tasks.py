"""Study tasks: the grid's conditions, stable task keys and seeds independent of order."""

import hashlib
import json

import numpy as np
import pytest

import phantoms
from pvcalc.study import estimate_runtime, expand, parse_spec, study_size
from pvcalc.study.tasks import COST_MODEL

SPEC = """
[study]
name = "grid"
seed = 11
repeats = 2

[[phantoms]]
name = "cci"

[[phantoms]]
name = "motion"
velocities_mm_s = [0, 30]
profile = "cardiac"

[grid]
protocol = ["calcium_scoring", "low_dose_chest"]
body = ["standard", "large"]
heart_rate_bpm = [60, 90]
mas = [50, 200]
matrix = 64

[methods.clinical]
[methods.integrated]

[calibration]
c_ha_mg_cm3_per_hu = 0.8
"""


@pytest.fixture(scope="module")
def tasks():
    return expand(parse_spec(SPEC))


def _by_key(ts):
    return {t.key: t.seed for t in ts}


def test_the_grid_is_the_cartesian_product_where_the_phantom_takes_the_axis(tasks):
    # cci: 2 bodies x 2 protocols x 2 doses; motion also x 2 heart rates; x 2 repeats
    assert len(tasks) == (2 * 2 * 2 + 2 * 2 * 2 * 2) * 2
    cci = [t for t in tasks if t.condition.label.startswith("cci|")]
    assert len(cci) == 16 and all("heart_rate_bpm=" not in t.key for t in cci)
    motion = [t for t in tasks if t.condition.label.startswith("motion|")]
    assert {t.condition.phantom.heart_rate_bpm for t in motion} == {60.0, 90.0}
    assert {dict(t.condition.columns)["body"] for t in tasks} == {"standard", "large"}
    large = next(t for t in cci if dict(t.condition.columns)["body"] == "large")
    assert large.condition.phantom.body.extension_ring


def test_the_dose_sets_the_noise_of_the_body_scanned(tasks):
    for t in tasks:
        columns = dict(t.condition.columns)
        h, w = t.condition.phantom.body.outer_size_mm
        expected = phantoms.noise_sd_from_mas(columns["protocol_mas"], width_mm=w, height_mm=h,
                                              slice_thickness_mm=t.condition.protocol
                                              .slice_thickness_mm)
        assert t.condition.protocol.noise_sd_hu == expected == columns["protocol_noise_sd_hu"]
    # four times the mAs halves the noise (same body and slice), the large body adds noise
    sd = {(dict(t.condition.columns)["body"], dict(t.condition.columns)["protocol_mas"]):
          t.condition.protocol.noise_sd_hu for t in tasks
          if dict(t.condition.columns)["protocol"] == "calcium_scoring"}
    assert sd[("standard", 50.0)] == pytest.approx(2 * sd[("standard", 200.0)], rel=1e-12)
    assert sd[("large", 50.0)] > sd[("standard", 50.0)]


def test_mtf50_and_slice_pairs_set_the_protocol():
    spec = parse_spec(SPEC.replace("mas = [50, 200]", "mtf50_per_mm = [0.3, 0.4]\n"
                                   "slice = [[3.0, 3.0], [1.0, 0.5]]"))
    fwhm = {t.condition.protocol.psf_fwhm_mm for t in expand(spec)}
    # MTF50 = 0.4413 / FWHM for a Gaussian PSF (sqrt(ln 2 / 2) * 2 sqrt(2 ln 2) / pi)
    assert np.allclose(sorted(fwhm), [0.4413 / 0.4, 0.4413 / 0.3], rtol=1e-4)
    slices = {(t.condition.protocol.slice_thickness_mm, t.condition.protocol.increment_mm)
              for t in expand(spec)}
    assert slices == {(3.0, 3.0), (1.0, 0.5)}
    assert spec.condition_columns == ("phantom", "protocol", "body", "heart_rate_bpm",
                                      "protocol_slice_thickness_mm", "protocol_increment_mm",
                                      "protocol_mtf50_per_mm")


def test_keys_are_unique_readable_and_stable(tasks):
    keys = [t.key for t in tasks]
    assert len(set(keys)) == len(keys)
    assert keys == [t.key for t in expand(parse_spec(SPEC))]
    first = tasks[0].key.split("|")
    assert first[:2] == ["cci", "calcium_scoring"] and first[-2] == "r001"
    assert len(first[-1]) == 8 and int(first[-1], 16) >= 0
    assert {t.repeat for t in tasks} == {1, 2}


def test_seeds_follow_the_documented_formula(tasks):
    for t in tasks[:6]:
        digest = hashlib.sha256(t.condition.definition.encode()).hexdigest()
        ss = np.random.SeedSequence([11, int(digest[:16], 16)])
        assert t.seed == int(ss.generate_state(1, np.uint64)[0]) >> 1
        assert t.condition.digest == digest
        assert json.loads(t.condition.definition)["protocol"]["kvp"] == 120.0
    # the repeats of a condition share its seed; conditions have their own
    by_condition = {}
    for t in tasks:
        by_condition.setdefault(t.condition.digest, set()).add(t.seed)
    assert all(len(s) == 1 for s in by_condition.values())
    assert len({next(iter(s)) for s in by_condition.values()}) == len(by_condition)


def test_keys_and_seeds_do_not_depend_on_order_or_on_other_conditions(tasks):
    reordered = SPEC.replace('protocol = ["calcium_scoring", "low_dose_chest"]',
                             'protocol = ["low_dose_chest", "calcium_scoring"]') \
        .replace('body = ["standard", "large"]', 'body = ["large", "standard"]')
    # the motion phantom first, then the insert
    head, rest = reordered.split("[[phantoms]]\nname = \"cci\"\n", 1)
    swapped = head + rest.replace("[grid]", "[[phantoms]]\nname = \"cci\"\n\n[grid]", 1)
    other = expand(parse_spec(swapped))
    assert [t.key for t in other] != [t.key for t in tasks]
    assert _by_key(other) == _by_key(tasks)
    # more doses: the existing conditions keep their keys and seeds
    more = expand(parse_spec(SPEC.replace("mas = [50, 200]", "mas = [50, 100, 200]")))
    kept = {k: s for k, s in _by_key(more).items() if "protocol_mas=100|" not in k}
    assert kept == _by_key(tasks)
    # another master seed: other seeds, same keys
    reseeded = expand(parse_spec(SPEC.replace("seed = 11", "seed = 12")))
    assert [t.key for t in reseeded] == [t.key for t in tasks]
    assert not set(_by_key(reseeded).values()) & set(_by_key(tasks).values())


def test_study_size_counts_scans_lesions_and_rows(tasks):
    size = study_size(parse_spec(SPEC), tasks)
    # cci: 9 inserts in 16 scans; motion: 2 inserts in 32 scans; 2 methods each
    assert size["tasks"] == 48 and size["conditions"] == 24 and size["repeats"] == 2
    assert size["scan_lesions"] == 16 * 9 + 32 * 2
    assert size["rows"] == size["scan_lesions"] * 2 and size["methods"] == 2
    # cci (physical geometry): 66 mm at 3 / 0.625 mm; motion: 33 mm
    slices = {("cci", "calcium_scoring"): 22, ("cci", "low_dose_chest"): 105,
              ("motion", "calcium_scoring"): 11, ("motion", "low_dose_chest"): 52}
    assert size["voxels"] == sum(
        64 * 64 * slices[dict(t.condition.columns)["phantom_name"],
                         dict(t.condition.columns)["protocol"]] for t in tasks)


def test_patients_are_the_population_of_the_spec():
    spec = parse_spec(SPEC.replace('name = "cci"', 'name = "patients"\nn = 2\nseed = 4\n'
                                   'motion = false'))
    patients = {t.condition.columns[0][1]: t.condition.phantom for t in expand(spec)
                if t.condition.label.startswith("patients")}
    population = phantoms.library.lesion_population(2, seed=4, motion=False)
    assert sorted(patients) == ["patients_000", "patients_001"]
    for i, name in enumerate(sorted(patients)):
        got = [(les.name, les.density_mg_cm3) for les in patients[name].lesions]
        assert got == [(les.name, les.density_mg_cm3) for les in population[i].lesions]


def test_the_runtime_estimate_follows_the_cost_model(tasks):
    spec = parse_spec(SPEC)
    one = estimate_runtime(spec, workers=1, tasks=tasks)
    two = estimate_runtime(spec, workers=2, tasks=tasks)
    assert one["basis"] == "model" and one["task_seconds"] == two["task_seconds"]
    assert two["seconds"] - COST_MODEL["startup_s"] == pytest.approx(
        (one["seconds"] - COST_MODEL["startup_s"]) / 2)
    small = parse_spec(SPEC.replace("repeats = 2", "repeats = 1").replace(
        'protocol = ["calcium_scoring", "low_dose_chest"]', 'protocol = "calcium_scoring"'))
    measured = estimate_runtime(small, workers=1, measure=True)
    assert measured["basis"] == "measured" and measured["task_seconds"] > 0
