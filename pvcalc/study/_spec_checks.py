"""Validation of a study spec, section by section; every problem is collected.

:func:`check` takes the plain data of a TOML spec (``tomllib.loads``) and returns
the normalised sections, or raises :class:`pvcalc.study.spec.SpecError` listing
every problem with its key path, what was expected and a suggestion. Nothing in
a spec is executed: values are only compared, converted and passed to the
validating constructors of :mod:`phantoms` and :mod:`pvcalc.methods`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings

from pvcalc.study._spec_base import (
    Problems,
    _freeze,
    _got,
    _is_int,
    _is_number,
    _suggest,
    _table,
    _unknown_keys,
)
from pvcalc.study._spec_grid import (
    AXES,
    AXIS_PARAM,
    check_axis_use,
    check_grid,
    takes_axis,
)

__all__ = ["AXES", "PHANTOM_KINDS", "REPORT_FIGURES", "REPORT_FORMATS", "REPORT_STATISTICS",
           "SECTIONS", "SIMULATION_DEFAULTS", "build_phantom", "check", "phantom_builder_params"]

#: Top-level tables of a spec (the first four are required).
SECTIONS = ("study", "phantoms", "grid", "methods", "calibration", "simulation", "report")
_REQUIRED = ("study", "phantoms", "grid", "methods")
_STUDY_KEYS = ("name", "seed", "repeats", "description")
#: Named phantoms of a study: ``name`` of a ``[[phantoms]]`` entry -> builder.
PHANTOM_KINDS = ("cci", "motion", "patients")
#: Statistics and figures a report may ask for (pvcalc.stats names; figures are the
#: ``plot_*`` functions without the prefix), and those that need repeated scans.
REPORT_STATISTICS = ("accuracy", "interscan_difference", "repeatability", "icc",
                     "bland_altman", "weighted_kappa", "reclassification", "compare_methods")
REPORT_FIGURES = ("error_vs_size", "error_vs_condition", "bland_altman",
                  "interscan_difference", "transition_heatmap")
REPORT_FORMATS = ("markdown", "html")
_NEEDS_REPEATS = {"interscan_difference", "repeatability", "icc", "bland_altman",
                  "weighted_kappa", "reclassification", "transition_heatmap"}
_CALIBRATION_SOURCES = ("rods", "nominal", "fixed")
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")


def _simulation_defaults():
    from phantoms.simulate import simulate_repeat

    skip = {"phantom", "protocol", "seed", "index", "fraction_maps"}
    return {name: p.default for name, p in inspect.signature(simulate_repeat).parameters.items()
            if name not in skip and p.default is not inspect.Parameter.empty}


#: ``[simulation]`` keys with their defaults (keyword arguments of phantoms.simulate_repeat).
SIMULATION_DEFAULTS = _simulation_defaults()


# --- [study] ------------------------------------------------------------------------------

def _check_study(problems, table):
    _unknown_keys(problems, "study", table, _STUDY_KEYS)
    name = table.get("name")
    if not (isinstance(name, str) and name.strip()):
        problems.add("study.name", "expected a non-empty string naming the study, "
                     + ("missing" if name is None else _got(name)))
    seed = table.get("seed")
    if not (_is_int(seed) and 0 <= seed < 2**63):
        problems.add("study.seed", "expected the master seed, an integer from 0 to 2**63 - 1, "
                     + ("missing" if seed is None else _got(seed)))
    repeats = table.get("repeats", 2)
    if not (_is_int(repeats) and 1 <= repeats <= 999):
        problems.add("study.repeats", f"expected the number of scans per condition, an integer "
                     f"from 1 to 999 (2 = interscan pairs), {_got(repeats)}")
    description = table.get("description", "")
    if not isinstance(description, str):
        problems.add("study.description", f"expected a string, {_got(description)}")
    return {"name": name, "seed": seed, "repeats": repeats, "description": description}


# --- [[phantoms]] -------------------------------------------------------------------------

def phantom_builder_params(kind):
    """Parameter names a ``[[phantoms]]`` entry of ``kind`` may set (besides name, label)."""
    from phantoms.library import cci_phantom, motion_phantom, virtual_patient

    if kind == "patients":
        own = [p for p in inspect.signature(virtual_patient).parameters
               if p not in ("seed", "risk_category")]
        return ("n", "seed", "risk_categories", *own)
    builder = {"cci": cci_phantom, "motion": motion_phantom}[kind]
    return tuple(inspect.signature(builder).parameters)


def build_phantom(kind, params, *, patient=None):
    """The phantom of a ``[[phantoms]]`` entry (``patient``: index into the population)."""
    from phantoms.library import cci_phantom, lesion_population, motion_phantom

    kw = dict(params)
    if kind == "cci":
        return cci_phantom(**kw)
    if kind == "motion":
        return motion_phantom(**kw)
    n, seed = kw.pop("n"), kw.pop("seed")
    return lesion_population(n, seed=seed, **kw)[patient]


def _check_one_phantom(problems, path, entry, axes):
    kind = entry.get("name")
    if kind not in PHANTOM_KINDS:
        problems.add(f"{path}.name", f"expected one of {', '.join(PHANTOM_KINDS)}, "
                     + ("missing" if kind is None else _got(kind)) + _suggest(kind, PHANTOM_KINDS))
        return None
    valid = ("name", "label", *phantom_builder_params(kind))
    _unknown_keys(problems, path, entry, valid)
    params = {k: _freeze(v) for k, v in entry.items() if k in valid and k not in ("name", "label")}
    label = entry.get("label", kind)
    if not (isinstance(label, str) and _LABEL.fullmatch(label)):
        problems.add(f"{path}.label", "expected a label of letters, digits, '_', '.' or '-' "
                     f"(at most 40, starting with a letter), {_got(label)}")
    for axis, param in AXIS_PARAM.items():
        if axis in axes and param in params and takes_axis(kind, params, axis):
            problems.add(f"{path}.{param}", f"set here and by grid.{axis}; give it in one place "
                         f"(remove {param} here, or {axis} from [grid])")
    if kind == "patients" and not _check_population(problems, path, params):
        return None
    try:
        sample = build_phantom(kind, _population_sample(kind, params), patient=0)
    except (TypeError, ValueError) as exc:
        problems.add(path, f"the {kind} phantom cannot be built: {exc}")
        return None
    return {"name": kind, "label": label, "params": params, "has_rods": bool(sample.rods)}


def _check_population(problems, path, params):
    ok = True
    n, seed = params.get("n"), params.get("seed")
    if not (_is_int(n) and 1 <= n <= 10_000):
        problems.add(f"{path}.n", "expected the number of virtual patients, an integer from 1 "
                     "to 10000, " + ("missing" if n is None else _got(n)))
        ok = False
    if not (_is_int(seed) and 0 <= seed < 2**63):
        problems.add(f"{path}.seed", "expected the population's seed, a non-negative integer, "
                     + ("missing" if seed is None else _got(seed)))
        ok = False
    cats = params.get("risk_categories", "balanced")
    if not (cats == "balanced" or (isinstance(cats, tuple) and all(
            _is_int(c) and 0 <= c <= 4 for c in cats) and (not ok or len(cats) == n))):
        problems.add(f"{path}.risk_categories", "expected 'balanced' or one risk category "
                     f"(0-4) per patient ({n} of them), {_got(cats)}")
        ok = False
    return ok


def _population_sample(kind, params):
    """Parameters of the cheapest phantom that checks them (one patient of a population)."""
    if kind != "patients":
        return params
    cats = params.get("risk_categories", "balanced")
    return dict(params, n=1, risk_categories=cats if cats == "balanced" else cats[:1])


def _check_phantoms(problems, raw, axes):
    entries = raw.get("phantoms")
    if entries is None:
        problems.add("phantoms", "missing; add at least one [[phantoms]] table, e.g. "
                     "name = \"cci\"")
        return []
    if isinstance(entries, dict):
        entries = [entries]
        problems.add("phantoms", "expected an array of tables ([[phantoms]], double brackets), "
                     "got a single table ([phantoms])")
    if not isinstance(entries, list) or not entries:
        problems.add("phantoms", f"expected at least one [[phantoms]] table, {_got(entries)}")
        return []
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.add(f"phantoms[{i}]", f"expected a table, {_got(entry)}")
            continue
        checked = _check_one_phantom(problems, f"phantoms[{i}]", entry, axes)
        if checked is not None:
            out.append(checked)
    labels = [p["label"] for p in out]
    for label in sorted({x for x in labels if labels.count(x) > 1}):
        problems.add("phantoms", f"{labels.count(label)} phantoms are labelled {label!r}; give "
                     "each [[phantoms]] entry its own label = \"...\"")
    return out


# --- [methods], [calibration], [simulation], [report] -------------------------------------

def _check_methods(problems, table):
    from pvcalc.methods import METHODS

    if not table:
        problems.add("methods", "expected at least one method, e.g. [methods.clinical]; "
                     f"methods: {', '.join(METHODS)}")
    out = {}
    for name, params in table.items():
        path = f"methods.{name}"
        if name not in METHODS:
            problems.add(path, f"unknown method; expected one of {', '.join(METHODS)}"
                         + _suggest(name, METHODS))
            continue
        if not isinstance(params, dict):
            problems.add(path, f"expected a table of the method's parameters ([{path}], may "
                         f"be empty), {_got(params)}")
            continue
        params = {k: _freeze(v) for k, v in params.items()}
        fields = [f.name for f in dataclasses.fields(METHODS[name].params)]
        _unknown_keys(problems, path, params, fields)
        try:
            METHODS[name].make_params({k: v for k, v in params.items() if k in fields})
        except (TypeError, ValueError) as exc:
            problems.add(path, str(exc))
            continue
        out[name] = params
    return out


def _check_calibration(problems, table, phantoms):
    from pvcalc.calibration import PLAUSIBLE_C_HA, Calibration

    _unknown_keys(problems, "calibration", table,
                  ("source", "c_ha_mg_cm3_per_hu", "mass_reference_hu", "margin_mm"))
    c_ha = table.get("c_ha_mg_cm3_per_hu")
    source = table.get("source", "fixed" if c_ha is not None else "rods")
    if source not in _CALIBRATION_SOURCES:
        problems.add("calibration.source", f"expected one of {', '.join(_CALIBRATION_SOURCES)}, "
                     f"{_got(source)}" + _suggest(source, _CALIBRATION_SOURCES))
        return {"source": source}
    out = {"source": source}
    if source == "fixed":
        if not (_is_number(c_ha) and PLAUSIBLE_C_HA[0] <= c_ha <= PLAUSIBLE_C_HA[1]):
            problems.add("calibration.c_ha_mg_cm3_per_hu", "expected c_HA in mg HA cm^-3 HU^-1 "
                         f"within the plausible {PLAUSIBLE_C_HA[0]}-{PLAUSIBLE_C_HA[1]} (real "
                         "scanners: 0.71-0.91), " + ("missing" if c_ha is None else _got(c_ha)))
        ref = table.get("mass_reference_hu", 0.0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Calibration(float(c_ha) if _is_number(c_ha) else 1.0,
                            mass_reference_hu=ref if _is_number(ref) else float("nan"))
        except (TypeError, ValueError) as exc:
            problems.add("calibration.mass_reference_hu", str(exc))
        out.update(c_ha_mg_cm3_per_hu=c_ha, mass_reference_hu=ref)
    else:
        for key in ("c_ha_mg_cm3_per_hu", "mass_reference_hu"):
            if key in table:
                problems.add(f"calibration.{key}", f"only used with source = \"fixed\"; remove "
                             f"it or set source = \"fixed\" (source is {source!r})")
    if source == "rods":
        margin = table.get("margin_mm", 2.0)
        if not (_is_number(margin) and 0 <= margin < 5):
            problems.add("calibration.margin_mm", "expected the rod ROI margin in mm, 0 to 5 "
                         f"(the rods have a 5 mm radius), {_got(margin)}")
        out["margin_mm"] = margin
        for p in phantoms:
            if not p["has_rods"]:
                problems.add("calibration.source", f"\"rods\" needs calibration rods, but "
                             f"phantom {p['label']!r} has none; use source = \"nominal\" (the "
                             "simulator's HA factor at each kVp) or c_ha_mg_cm3_per_hu = 0.8")
    elif "margin_mm" in table:
        problems.add("calibration.margin_mm", f"only used with source = \"rods\" "
                     f"(source is {source!r}); remove it")
    return out


def _check_simulation(problems, table):
    from phantoms.simulate import _check_options, _check_repeat_options

    _unknown_keys(problems, "simulation", table, tuple(SIMULATION_DEFAULTS))
    out = {}
    for key, default in SIMULATION_DEFAULTS.items():
        value = _freeze(table.get(key, default))
        if isinstance(default, bool) and not isinstance(value, bool):
            problems.add(f"simulation.{key}", f"expected true or false, {_got(value)}")
        out[key] = value
    # the simulator's own checks (phantoms.simulate), so that the rules live in one place
    checks = ((("n_time_samples", "nsub"), _check_options),
              (("translation_sd_mm", "rotation_sd_deg", "gating_jitter_sd"),
               _check_repeat_options))
    for keys, check in checks:
        try:
            check(*(out[k] for k in keys))
        except (TypeError, ValueError) as exc:
            name = next((k for k in keys if str(exc).startswith(k)), keys[0])
            problems.add(f"simulation.{name}", str(exc))
    if isinstance(out["translation_sd_mm"], tuple):
        out["translation_sd_mm"] = tuple(float(v) for v in out["translation_sd_mm"])
    return out


def _check_report(problems, table, repeats):
    _unknown_keys(problems, "report", table, ("statistics", "figures", "formats"))
    single = isinstance(repeats, int) and repeats == 1
    out = {}
    for key, valid in (("statistics", REPORT_STATISTICS), ("figures", REPORT_FIGURES),
                       ("formats", REPORT_FORMATS)):
        default = [v for v in valid if not (single and v in _NEEDS_REPEATS)]
        values = table.get(key, default)
        if not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
            problems.add(f"report.{key}", f"expected an array of names from "
                         f"{', '.join(valid)}, {_got(values)}")
            continue
        for i, v in enumerate(values):
            if v not in valid:
                problems.add(f"report.{key}[{i}]", f"unknown; expected one of {', '.join(valid)}"
                             + _suggest(v, valid))
            elif single and v in _NEEDS_REPEATS:
                problems.add(f"report.{key}[{i}]", f"{v!r} compares repeated scans, but "
                             "study.repeats is 1; set repeats = 2 or more, or remove it")
            elif values.index(v) != i:
                problems.add(f"report.{key}[{i}]", f"{v!r} is listed twice")
        out[key] = tuple(values)
    return out


def check(raw):
    """Validate the plain data of a spec; return its normalised sections (or raise SpecError)."""
    from pvcalc.study.spec import SpecError, SpecProblem

    problems = Problems()
    if not isinstance(raw, dict):
        problems.add("(spec)", f"expected a table of sections, {_got(raw)}")
        raise SpecError([SpecProblem(p.path, p.message) for p in problems.items])
    for key in raw:
        if key not in SECTIONS:
            problems.add(key, f"unknown section; expected one of {', '.join(SECTIONS)}"
                         + _suggest(key, SECTIONS))
    for key in _REQUIRED:
        if key == "phantoms":
            continue
        _table(problems, raw, key, required=True)
    study = _check_study(problems, _table(problems, raw, "study", required=False))
    grid_table = raw.get("grid") if isinstance(raw.get("grid"), dict) else {}
    phantoms = _check_phantoms(problems, raw, set(grid_table))
    grid = check_grid(problems, grid_table) if "grid" in raw else {}
    check_axis_use(problems, grid, phantoms)
    methods = (_check_methods(problems, raw["methods"]) if isinstance(raw.get("methods"), dict)
               else {})
    calibration = _check_calibration(problems, _table(problems, raw, "calibration",
                                                      required=False), phantoms)
    simulation = _check_simulation(problems, _table(problems, raw, "simulation", required=False))
    report = _check_report(problems, _table(problems, raw, "report", required=False),
                           study["repeats"])
    if problems.items:
        raise SpecError([SpecProblem(p.path, p.message) for p in problems.items])
    for p in phantoms:
        del p["has_rods"]
    return {"study": study, "phantoms": phantoms, "grid": grid, "methods": methods,
            "calibration": calibration, "simulation": simulation, "report": report}
