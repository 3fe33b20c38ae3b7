"""Study specs: every problem of a spec is reported at once, with its key path and a fix."""

import dataclasses

import pytest

import phantoms
from pvcalc.study import SpecError, StudySpec, parse_spec, read_spec
from pvcalc.study.spec import AXES
from pvcalc.study.tasks import AXIS_COLUMNS

BASE = """
[study]
name = "t"
seed = 5
repeats = 2

[[phantoms]]
name = "cci"

[grid]
protocol = ["calcium_scoring"]

[methods.clinical]
"""


def problems(text):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    return {p.path: p.message for p in info.value.problems}


def test_the_built_in_quick_study_is_valid_and_canonical():
    spec = read_spec("quick")
    assert isinstance(spec, StudySpec) and spec.repeats == 2
    assert list(spec.grid["protocol"]) == ["calcium_scoring", "low_dose_chest"]
    again = parse_spec(spec.to_dict())
    assert again == spec and again.digest == spec.digest
    assert again.to_dict() == spec.to_dict()


def test_the_canonical_form_ignores_key_order_and_spelling_of_numbers():
    a = parse_spec(BASE)
    text = BASE.replace('protocol = ["calcium_scoring"]',
                        'matrix = 128\nkvp = [100, 120]\nprotocol = "calcium_scoring"')
    b = parse_spec(text)
    c = parse_spec(BASE.replace('protocol = ["calcium_scoring"]',
                                'protocol = ["calcium_scoring"]\nkvp = [100.0, 120.0]\n'
                                'matrix = [128]'))
    assert b == c and b.digest == c.digest and a != b
    assert list(b.grid) == ["protocol", "kvp", "matrix"]     # canonical axis order


def test_every_problem_is_reported_at_once_with_a_suggestion():
    found = problems("""
[study]
name = ""
seed = -1
repeats = 1000
colour = "red"

[[phantoms]]
name = "cci"
extention_ring = true

[[phantoms]]
name = "motoin"

[grid]
protocol = ["calcium_scorin", "low_dose_chest"]
kvp = [120, 200]
hart_rate_bpm = [60]

[methods.adaptive_gron]
[methods.integrated]
alfa = 0.1

[calibration]
source = "rod"

[reprot]
""")
    expected = {
        "study.name": "non-empty string",
        "study.seed": "got an integer -1",
        "study.repeats": "from 1 to 999",
        "study.colour": "unknown key",
        "phantoms[0].extention_ring": "did you mean 'extension_ring'?",
        "phantoms[1].name": "did you mean 'motion'?",
        "grid.protocol[0]": "did you mean 'calcium_scoring'?",
        "grid.kvp[1]": "kvp must be in [70.0, 140.0] kV, got 200.0",
        "grid.hart_rate_bpm": "did you mean 'heart_rate_bpm'?",
        "methods.adaptive_gron": "did you mean 'adaptive_groen'?",
        "methods.integrated.alfa": "did you mean 'alpha'?",
        "calibration.source": "did you mean 'rods'?",
        "reprot": "did you mean 'report'?",
    }
    for path, text in expected.items():
        assert path in found, (path, found)
        assert text in found[path], (path, found[path])
    assert len(found) == len(expected), sorted(set(found) - set(expected))


def test_the_error_message_lists_every_problem_one_per_line():
    with pytest.raises(SpecError) as info:
        parse_spec(BASE.replace("seed = 5", "seed = 'x'").replace("name = \"cci\"",
                                                                  "name = \"ccj\""),
                   origin="mine.toml")
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid study spec mine.toml: 2 problems"
    assert lines[1].startswith("  study.seed: ") and lines[2].startswith("  phantoms[0].name: ")


def test_missing_sections_and_toml_syntax():
    found = problems('[study]\nname = "x"\nseed = 1\n')
    assert set(found) == {"phantoms", "grid", "methods"}
    found = problems("[study\nname = 1")
    assert list(found) == ["(toml)"] and "not valid TOML" in found["(toml)"]
    found = problems(BASE.replace("[[phantoms]]", "[phantoms]"))
    assert "double brackets" in found["phantoms"]


@pytest.mark.parametrize(("change", "path", "text"), [
    ('protocol = ["calcium_scoring"]\nbody = ["standard", "huge"]', "grid.body[1]",
     "'standard' (300 x 200 mm) or 'large'"),
    ('protocol = ["calcium_scoring"]\nvelocity_mm_s = [10]', "grid.velocity_mm_s",
     "no phantom of the study takes it"),
    ('protocol = ["calcium_scoring"]\npsf_fwhm_mm = 1.0\nmtf50_per_mm = 0.3',
     "grid.mtf50_per_mm", "both set the same protocol field"),
    ('protocol = ["calcium_scoring"]\nslice = [[3.0, 3.0]]\nincrement_mm = 1.5',
     "grid.increment_mm", "both set the same protocol field"),
    ('protocol = ["calcium_scoring"]\nmtf50_per_mm = [0.3, 0]', "grid.mtf50_per_mm[1]",
     "MTF50 > 0"),
    ('protocol = ["calcium_scoring"]\nkvp = [120, 120]', "grid.kvp[1]", "listed twice"),
    ('protocol = ["calcium_scoring"]\nmas = [-5]', "grid.mas", "mas must be"),
    ('protocol = ["calcium_scoring"]\nslice = [[3.0]]', "grid.slice",
     "pair [slice_thickness_mm, increment_mm]"),
    ('protocol = ["calcium_scoring"]\ngated = ["yes"]', "grid.gated", "true (ECG-gated)"),
    ('protocol = []', "grid.protocol", "non-empty array"),
    ('kvp = 120', "grid.protocol", "missing"),
])
def test_grid_problems(change, path, text):
    found = problems(BASE.replace('protocol = ["calcium_scoring"]', change))
    assert path in found and text in found[path], found


def test_a_joint_protocol_problem_names_the_combination():
    # pixel_mm 1.0 puts Nyquist at 0.5 cycles/mm: an NPS peak of 0.6 is fine with 0.5 mm pixels
    found = problems(BASE.replace('protocol = ["calcium_scoring"]',
                                  'protocol = "calcium_scoring"\npixel_mm = [0.5, 1.0]\n'
                                  'nps_peak_freq_per_mm = 0.6'))
    assert list(found) == ["grid"]
    assert "nps_peak_freq_per_mm = 0.6, pixel_mm = 1.0" in found["grid"]
    assert "Nyquist" in found["grid"]


def test_phantom_problems():
    found = problems(BASE + '[[phantoms]]\nname = "cci"\n')
    assert "2 phantoms are labelled 'cci'" in found["phantoms"]
    found = problems(BASE.replace('name = "cci"', 'name = "cci"\nextension_ring = true')
                     .replace('protocol = ["calcium_scoring"]',
                              'protocol = ["calcium_scoring"]\nbody = ["large"]'))
    assert "set here and by grid.body" in found["phantoms[0].extension_ring"]
    found = problems(BASE.replace('name = "cci"', 'name = "cci"\nlabel = "../x"'))
    assert "letters, digits" in found["phantoms[0].label"]
    found = problems(BASE.replace('name = "cci"', 'name = "motion"\nvelocities_mm_s = [900]'))
    assert "[0, 500] mm/s" in found["phantoms[0]"]
    found = problems(BASE.replace('name = "cci"', 'name = "patients"\nn = 0'))
    assert "phantoms[0].n" in found and "phantoms[0].seed" in found


def test_calibration_problems():
    motion = BASE.replace('name = "cci"', 'name = "motion"')
    found = problems(motion)    # rods by default, and the motion phantom has none
    assert "phantom 'motion' has none" in found["calibration.source"]
    assert 'source = "nominal"' in found["calibration.source"]
    found = problems(BASE + "[calibration]\nc_ha_mg_cm3_per_hu = 5.0\n")
    assert "plausible 0.3-2.0" in found["calibration.c_ha_mg_cm3_per_hu"]
    found = problems(BASE + "[calibration]\nsource = \"nominal\"\nmargin_mm = 1.0\n")
    assert "only used with source = \"rods\"" in found["calibration.margin_mm"]
    spec = parse_spec(motion + "[calibration]\nc_ha_mg_cm3_per_hu = 0.8\n")
    assert dict(spec.calibration) == {"source": "fixed", "c_ha_mg_cm3_per_hu": 0.8,
                                      "mass_reference_hu": 0.0}


def test_simulation_method_and_report_problems():
    found = problems(BASE + "[simulation]\nnsub = 99\nreposition = 1\nnoize = false\n"
                     "[report]\nfigures = [\"bland_altmann\"]\n")
    assert "nsub must be an integer in 1-16" in found["simulation.nsub"]
    assert "true or false" in found["simulation.reposition"]
    assert "did you mean 'noise'?" in found["simulation.noize"]
    assert "did you mean 'bland_altman'?" in found["report.figures[0]"]
    found = problems(BASE.replace("repeats = 2", "repeats = 1")
                     + "[report]\nstatistics = [\"accuracy\", \"icc\"]\n")
    assert "study.repeats is 1" in found["report.statistics[1]"]
    found = problems(BASE.replace("[methods.clinical]", "[methods.clinical]\npreset = \"nope\""))
    assert "unknown preset 'nope'" in found["methods.clinical"]


def test_a_spec_holds_no_paths_and_cannot_be_changed():
    found = problems(BASE.replace("seed = 5", "seed = 5\nout = \"/etc\""))
    assert "unknown key" in found["study.out"]
    spec = parse_spec(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 6
    with pytest.raises(TypeError):
        spec.grid["kvp"] = (100.0,)
    with pytest.raises(TypeError, match="TOML text"):
        parse_spec(42)
    with pytest.raises(ValueError, match="no built-in study of that name"):
        read_spec("no-such-study")


def test_every_protocol_field_is_a_grid_axis_with_a_result_column():
    fields = {f.name for f in dataclasses.fields(phantoms.Protocol)} - {"name"}
    assert fields <= set(AXES)
    assert set(AXIS_COLUMNS) == set(AXES)
    assert all(AXIS_COLUMNS[f] == (f"protocol_{f}",) for f in fields)
