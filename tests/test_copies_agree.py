"""Where ``phantoms`` keeps its own copy of something ``pvcalc`` owns, the two agree.

``phantoms`` never imports ``pvcalc`` (the simulator must not depend on the code it
is used to test), so three things exist twice: the numba configuration, the
Agatston threshold and density weights behind the simulator's cheap score
estimate, and the Agatston risk categories of the virtual patients. Each test
compares the two sides on values, through public functions where there are any.
"""

import ast
import inspect
import sys
import textwrap

import numpy as np
import pytest
from numba.core import config

import phantoms._config as phantoms_config
import pvcalc
import pvcalc._numba_config as pvcalc_config
from phantoms._library_estimate import _agatston_weight
from phantoms.library import RISK_CATEGORY_BOUNDS, estimated_agatston, virtual_patient
from pvcalc.scoring import KVP_THRESHOLDS_HU, PRESETS, RISK_SCHEMES

# --- numba configuration ------------------------------------------------------------


def test_numba_flags_agree():
    assert phantoms_config.JIT == pvcalc_config.JIT
    assert phantoms_config.PARALLEL_JIT == pvcalc_config.PARALLEL_JIT


@pytest.mark.parametrize("numba_cache_dir", ["", "/some/numba/cache"])
def test_both_packages_cache_kernels_in_the_same_folder(monkeypatch, tmp_path, numba_cache_dir):
    monkeypatch.setattr(config, "CACHE_DIR", numba_cache_dir)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert phantoms_config.cache_dir() == pvcalc_config.cache_dir()
    expected = numba_cache_dir or str(tmp_path / "pvcalc" / "numba")
    if numba_cache_dir or sys.platform not in ("win32", "darwin"):
        assert str(pvcalc_config.cache_dir()) == expected
    assert phantoms_config._fallback_cache_dir() == pvcalc_config._fallback_cache_dir()


def _code_without_docstrings(obj):
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


@pytest.mark.parametrize("name", ["cache_dir", "_fallback_cache_dir", "_OutOfTreeLocator",
                                  "_register"])
def test_cache_locator_code_is_the_same(name):
    # the locator decides where compiled kernels go; a fix in one copy must reach the other
    assert _code_without_docstrings(getattr(phantoms_config, name)) == \
        _code_without_docstrings(getattr(pvcalc_config, name))


# --- Agatston threshold and density weights ------------------------------------------

def test_estimate_uses_the_standard_threshold_and_cutoffs_at_120_kvp():
    standard = PRESETS["standard"]
    default = inspect.signature(estimated_agatston).parameters["threshold_hu"].default
    assert default == standard.threshold_hu == KVP_THRESHOLDS_HU[120.0][0]
    assert standard.weight_cutoffs_inclusive and standard.threshold_inclusive
    # the estimate's weight steps (0 below the threshold, then 1, 2, 3, 4) sit at the
    # standard preset's threshold and cut-offs
    steps = [standard.threshold_hu, *standard.weight_cutoffs_hu]
    assert tuple(steps) == KVP_THRESHOLDS_HU[120.0]
    for w, hu in enumerate(steps, start=1):
        assert _agatston_weight(hu) == w
        assert _agatston_weight(float(np.nextafter(hu, -np.inf))) == w - 1


def test_estimated_weight_equals_the_weight_pvcalc_scores():
    # one 4 x 4 pixel square (4 mm2) per peak HU, on one 3 mm slice (slice factor 1),
    # far apart; pvcalc's weight of each square is its Agatston score / area
    peaks = np.unique(np.concatenate([
        np.linspace(100.0, 650.0, 56),
        [129.5, 199.99, 299.99, 399.99, 1500.0]]).astype(np.float32))
    n_side = int(np.ceil(np.sqrt(peaks.size)))
    a = np.zeros((1, 8 * n_side, 8 * n_side), dtype=np.float32)
    for i, hu in enumerate(peaks):
        r, c = divmod(i, n_side)
        a[0, 8 * r + 2:8 * r + 6, 8 * c + 2:8 * c + 6] = hu
    result = pvcalc.score(pvcalc.make_scan(a, (3.0, 1.0, 1.0)))
    scored = {float(row.peak_hu): row.agatston / row.area_mm2
              for row in result.lesions.itertuples()}
    for hu in peaks.astype(np.float64):
        assert _agatston_weight(hu) == scored.get(hu, 0.0), hu
    assert len(result.lesions) == len(scored) == int(np.sum(peaks >= 130.0))


# --- risk categories ------------------------------------------------------------------

def test_risk_category_bounds_match_the_standard_scheme():
    names, edges, rule = RISK_SCHEMES["standard"]
    assert len(RISK_CATEGORY_BOUNDS) == len(names)
    # phantoms' inclusive integer bounds (0, 1-10, 11-100, 101-400, > 400) read on the real
    # line are pvcalc's upper-inclusive bins: the upper bounds are the bin edges ...
    assert rule == "upper"
    assert tuple(hi for _, hi in RISK_CATEGORY_BOUNDS[:-1]) == edges
    assert RISK_CATEGORY_BOUNDS[-1][1] == np.inf
    # ... and the category labels are the bounds
    labels = ["0"] + [f"{lo:g}-{hi:g}" for lo, hi in RISK_CATEGORY_BOUNDS[1:-1]] \
        + [f">{RISK_CATEGORY_BOUNDS[-2][1]:g}"]
    assert labels == list(names)


@pytest.mark.parametrize("category", range(5))
def test_virtual_patients_land_in_pvcalcs_category(category):
    # a patient drawn for category k has an estimated total that pvcalc puts in category k
    patient = virtual_patient(category + 11, risk_category=category)
    total = float(np.sum(estimated_agatston(patient.lesions)))
    assert pvcalc.risk_category(total) == RISK_SCHEMES["standard"][0][category]
