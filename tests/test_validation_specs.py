"""The validation studies' specs (validation/studies/*.toml) parse, check and have the size
their pages state; and the ``kernel_psf`` grid axis they use pairs a kernel label with its
PSF (so the kernel changes the blur and the noise texture, not only the label).

Nothing is simulated here: the sizes are counted by hand from each spec's grid.
"""

from pathlib import Path

import pytest

from pvcalc.study import SpecError, expand, parse_spec, read_spec, study_size

STUDIES = Path(__file__).resolve().parents[1] / "validation" / "studies"

#: Expected size of every checked-in spec, counted from its grid:
#: cci_static: 2 protocols x 2 bodies x 2 kernels = 8 conditions, 20 repeats, 9 inserts;
#: motion: cardiac 6 speeds x 3 heart rates x 2 gating + constant 6 speeds x 2 gating
#: = 48 conditions, 20 repeats, one insert each.
EXPECTED = {
    "cci_static": {"conditions": 8, "repeats": 20, "tasks": 160, "scan_lesions": 1440,
                   "methods": 9, "rows": 12960},
    "motion": {"conditions": 48, "repeats": 20, "tasks": 960, "scan_lesions": 960,
               "methods": 9, "rows": 8640},
}


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_spec_file_parses_and_checks(path):
    # every problem of a spec is reported at once by read_spec (a SpecError otherwise);
    # the sizes below expand only this file's studies (a population study expands slowly)
    spec = read_spec(path)
    assert spec.methods and spec.phantoms and spec.repeats >= 1


def test_the_studies_of_this_file_are_checked_in():
    assert set(EXPECTED) <= {p.stem for p in STUDIES.glob("*.toml")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spec_parses_and_has_the_stated_size(name):
    spec = read_spec(STUDIES / f"{name}.toml")
    assert spec.name == name
    size = study_size(spec)
    assert {k: size[k] for k in EXPECTED[name]} == EXPECTED[name]
    assert size["voxels"] > 0


def test_cci_static_conditions_pair_kernel_and_psf():
    spec = read_spec(STUDIES / "cci_static.toml")
    protocols = {t.condition.label: t.condition.protocol for t in expand(spec)}
    kernels = {(p.name, p.kernel, p.psf_fwhm_mm, p.noise_sd_hu) for p in protocols.values()}
    # each preset with both kernels, the noise SD the preset's own
    assert kernels == {("calcium_scoring", "soft", 1.3, 20.0), ("calcium_scoring", "sharp", 0.8, 20.0),
                       ("low_dose_chest", "soft", 1.3, 40.0), ("low_dose_chest", "sharp", 0.8, 40.0)}
    assert spec.condition_columns == ("phantom", "protocol", "body", "protocol_kernel")


def test_motion_spec_takes_heart_rate_only_for_the_cardiac_profile():
    spec = read_spec(STUDIES / "motion.toml")
    labels = {t.condition.label for t in expand(spec)}
    assert sum(label.startswith("cardiac|") for label in labels) == 36
    assert sum(label.startswith("constant|") for label in labels) == 12
    assert not any("heart_rate" in label for label in labels if label.startswith("constant|"))


# --- the kernel_psf axis ------------------------------------------------------------------

BASE = """
[study]
name = "kernels"
seed = 5
repeats = 1

[[phantoms]]
name = "cci"

[grid]
protocol = "calcium_scoring"
{grid}

[methods.clinical]
"""


def _problems(grid):
    with pytest.raises(SpecError) as err:
        parse_spec(BASE.format(grid=grid))
    return [str(p) for p in err.value.problems]


def test_kernel_psf_sets_label_psf_and_nps_peak_together():
    spec = parse_spec(BASE.format(grid='kernel_psf = [["soft", 1.3], ["sharp", 0.8]]'))
    tasks = expand(spec)
    got = [(t.condition.protocol.kernel, t.condition.protocol.psf_fwhm_mm,
            t.condition.protocol.nps_peak_per_mm) for t in tasks]
    # NPS peak of the ramp x Gaussian apodisation: 1 / (2 sqrt(2) pi sigma) = 0.2650 / FWHM
    assert [g[:2] for g in got] == [("soft", 1.3), ("sharp", 0.8)]
    assert [g[2] for g in got] == pytest.approx([0.26500 / 1.3, 0.26500 / 0.8], rel=1e-3)
    assert [t.key.split("|")[2] for t in tasks] == ["kernel_psf=soft_1.3", "kernel_psf=sharp_0.8"]
    columns = [dict(t.condition.columns) for t in tasks]
    assert [(c["protocol_kernel"], c["protocol_psf_fwhm_mm"]) for c in columns] == \
        [("soft", 1.3), ("sharp", 0.8)]
    # the canonical form reads back as the same spec
    assert parse_spec(spec.to_dict()).digest == spec.digest


def test_kernel_psf_single_pair_and_shared_labels():
    one = parse_spec(BASE.format(grid='kernel_psf = ["sharp", 0.8]'))
    assert dict(one.grid)["kernel_psf"] == (("sharp", 0.8),)
    assert one.condition_columns == ("phantom",)
    same = parse_spec(BASE.format(grid='kernel_psf = [["b30", 1.3], ["b30", 1.0]]'))
    # two pairs with one label: the PSF column tells them apart
    assert same.condition_columns == ("phantom", "protocol_kernel", "protocol_psf_fwhm_mm")


def test_kernel_psf_errors_name_the_value_and_the_fix():
    shape = _problems('kernel_psf = [["soft"], [1.3, 0.8], ["", 1.0]]')
    assert len(shape) == 3
    assert all(p.startswith("grid.kernel_psf[") and "expected a pair [kernel, psf_fwhm_mm]" in p
               for p in shape)
    (psf,) = _problems('kernel_psf = [["soft", 1.3], ["sharp", 9.0]]')
    assert psf.startswith("grid.kernel_psf[1]: psf_fwhm_mm must be in [0.1, 5.0] mm, got 9.0")
    both = _problems('kernel_psf = ["soft", 1.3]\nkernel = "x"\npsf_fwhm_mm = 1.0\n'
                     'mtf50_per_mm = 0.4')
    for field in ("kernel", "psf_fwhm_mm", "mtf50_per_mm"):
        assert any(p.startswith(f"grid.{field}: grid.kernel_psf and grid.{field} both set")
                   for p in both)
    (twice,) = _problems('kernel_psf = [["soft", 1.3], ["soft", 1.3]]')
    assert "listed twice" in twice
