"""Study specs: a TOML file parsed into a frozen, validated :class:`StudySpec`.

A spec is data only: nothing in it is executed, and it holds no path (the
runner writes only inside the output folder it is given). ``docs/study.md``
is the reference of every key; in short::

    [study]        name, seed (master seed), repeats (scans per condition), description
    [[phantoms]]   name = "cci" | "motion" | "patients", label, the phantom's parameters
    [grid]         protocol presets and protocol overrides; lists multiply (Cartesian)
    [methods]      method name -> table of its parameters (pvcalc.methods)
    [calibration]  source = "rods" | "nominal" | "fixed" (with c_ha_mg_cm3_per_hu)
    [simulation]   options of phantoms.simulate_repeat (reposition, noise, ...)
    [report]       statistics, figures and formats of the report

:func:`parse_spec` and :func:`read_spec` report every problem of a spec at once
(:class:`SpecError`, one :class:`SpecProblem` per offending key) before any
work starts. :meth:`StudySpec.to_dict` is the canonical form stored with the
results (``pvcalc.study.store.load_spec`` reads it back).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pvcalc.study import _spec_checks
from pvcalc.study._spec_checks import (
    REPORT_FIGURES,
    REPORT_FORMATS,
    REPORT_STATISTICS,
)
from pvcalc.study._spec_grid import AXES

__all__ = ["AXES", "REPORT_FIGURES", "REPORT_FORMATS", "REPORT_STATISTICS", "PhantomSpec",
           "SpecError", "SpecProblem", "StudySpec", "builtin_specs", "parse_spec", "read_spec"]


@dataclass(frozen=True)
class SpecProblem:
    """One problem of a spec: the key path (``grid.kvp[1]``) and what is wrong."""

    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}"


class SpecError(ValueError):
    """A spec with problems; ``problems`` lists every one (a list of :class:`SpecProblem`).

    Examples
    --------
    >>> try:
    ...     parse_spec('[study]\\nname = "x"\\nseed = 1\\n[grid]\\nprotocol = "calcium_scorin"')
    ... except SpecError as err:
    ...     print(*err.problems, sep="\\n")
    methods: missing; the spec needs a [methods] table
    phantoms: missing; add at least one [[phantoms]] table, e.g. name = "cci"
    grid.protocol: expected a protocol preset (calcium_scoring, low_dose_chest, thin_slice_cscT,
    screening_chest), got a string 'calcium_scorin'; did you mean 'calcium_scoring'?
    """

    def __init__(self, problems, origin=""):
        self.problems = list(problems)
        self.origin = origin
        super().__init__(self._text())

    def _text(self):
        n = len(self.problems)
        where = f" {self.origin}" if self.origin else ""
        head = f"invalid study spec{where}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])

    def __str__(self):
        return self._text()


def _frozen(mapping):
    return types.MappingProxyType(dict(mapping))


def _plain(value):
    """Tuples -> lists and mappings -> dicts, recursively (JSON- and TOML-shaped data)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class PhantomSpec:
    """One ``[[phantoms]]`` entry: the builder ``name``, its ``label`` and its ``params``."""

    name: str
    label: str
    params: Mapping

    def __hash__(self):
        return hash(json.dumps(_plain(dataclasses.asdict(self)), sort_keys=True))


@dataclass(frozen=True, eq=True)
class StudySpec:
    """A validated study spec (build it with :func:`parse_spec` or :func:`read_spec`).

    Attributes
    ----------
    name, description : str
        The study's name and what it asks.
    seed : int
        Master seed: every task's seed derives from it and the task's condition.
    repeats : int
        Scans per condition (2 = interscan pairs).
    phantoms : tuple of PhantomSpec
        The phantoms, in spec order.
    grid : mapping axis -> tuple of values
        The grid axes in :data:`AXES` order; conditions are their Cartesian product
        (phantom axes only for the phantoms that take them).
    methods : mapping name -> mapping of parameters
        The methods in spec order, with the parameters as given.
    calibration, simulation, report : mapping
        The other sections, defaults filled in.
    source : str
        The TOML text the spec was parsed from ("" for a mapping); not part of
        the spec's identity.
    """

    name: str
    seed: int
    repeats: int
    description: str
    phantoms: tuple
    grid: Mapping
    methods: Mapping
    calibration: Mapping
    simulation: Mapping
    report: Mapping
    source: str = field(default="", compare=False, repr=False)

    def __hash__(self):
        return hash(self.digest)

    def to_dict(self) -> dict:
        """The canonical spec: plain TOML-shaped data that :func:`parse_spec` accepts.

        Defaults are filled in, grid axes are in canonical order and arrays are
        lists; two specs asking for the same study have the same dict.
        """
        phantoms = [{"name": p.name, "label": p.label, **dict(sorted(p.params.items()))}
                    for p in self.phantoms]
        return _plain({"study": {"name": self.name, "seed": self.seed, "repeats": self.repeats,
                                 "description": self.description},
                       "phantoms": phantoms, "grid": dict(self.grid),
                       "methods": {k: dict(sorted(v.items())) for k, v in self.methods.items()},
                       "calibration": dict(self.calibration),
                       "simulation": dict(self.simulation), "report": dict(self.report)})

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical spec's JSON."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def method_params(self) -> dict:
        """Method name -> its params dataclass instance (:mod:`pvcalc.methods`)."""
        from pvcalc.methods import get_method

        return {name: get_method(name).make_params(dict(params))
                for name, params in self.methods.items()}

    @property
    def condition_columns(self) -> tuple:
        """Result columns that tell this study's conditions apart (see ``docs/study.md``).

        ``phantom``, then the columns of every grid axis with more than one
        value (``slice`` gives two; ``kernel_psf`` gives ``protocol_kernel``, and
        ``protocol_psf_fwhm_mm`` too when two pairs share a kernel label).
        """
        from pvcalc.study.tasks import AXIS_COLUMNS

        out = ["phantom"]
        for axis, values in self.grid.items():
            if len(values) > 1:
                columns = AXIS_COLUMNS[axis]
                if axis == "kernel_psf" and len({k for k, _ in values}) == len(values):
                    columns = columns[:1]    # distinct kernel labels name the pairs
                out += [c for c in columns if c not in out]
        return tuple(out)


def _build(sections, source):
    study = sections["study"]
    phantoms = tuple(PhantomSpec(p["name"], p["label"], _frozen(sorted(p["params"].items())))
                     for p in sections["phantoms"])
    return StudySpec(name=study["name"], seed=study["seed"], repeats=study["repeats"],
                     description=study["description"], phantoms=phantoms,
                     grid=_frozen(sections["grid"]),
                     methods=_frozen({k: _frozen(v) for k, v in sections["methods"].items()}),
                     calibration=_frozen(sections["calibration"]),
                     simulation=_frozen(sections["simulation"]),
                     report=_frozen(sections["report"]), source=source)


def parse_spec(source, *, origin="") -> StudySpec:
    """Parse and validate a study spec.

    Parameters
    ----------
    source : str or mapping
        TOML text, or the same data as a mapping (e.g. :meth:`StudySpec.to_dict`).
    origin : str, optional
        Where the spec comes from (a file name), for the error message.

    Returns
    -------
    StudySpec

    Raises
    ------
    SpecError
        Listing every problem (key path, what was expected, a suggestion).
    TypeError
        ``source`` is neither a string nor a mapping.

    Examples
    --------
    >>> spec = parse_spec('''
    ... [study]
    ... name = "kvp"
    ... seed = 1
    ... [[phantoms]]
    ... name = "cci"
    ... [grid]
    ... protocol = "calcium_scoring"
    ... kvp = [100, 120]
    ... [methods.clinical]
    ... ''')
    >>> spec.repeats, dict(spec.grid), spec.condition_columns
    (2, {'protocol': ('calcium_scoring',), 'kvp': (100.0, 120.0)}, ('phantom', 'protocol_kvp'))
    """
    if isinstance(source, str):
        try:
            raw = tomllib.loads(source)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError([SpecProblem("(toml)", f"not valid TOML: {exc}")], origin) from None
        text = source
    elif isinstance(source, Mapping):
        raw, text = _plain(source), ""
    else:
        raise TypeError(f"source must be TOML text (str) or a mapping, got "
                        f"{type(source).__name__}; read a file with read_spec(path)")
    try:
        sections = _spec_checks.check(raw)
    except SpecError as err:
        raise SpecError(err.problems, origin) from None
    return _build(sections, text)


def builtin_specs() -> dict:
    """Name -> TOML text of the studies shipped with pvcalc (``pvcalc/data/studies``).

    Examples
    --------
    >>> "quick" in builtin_specs()
    True
    """
    folder = resources.files("pvcalc") / "data" / "studies"
    return {entry.name.removesuffix(".toml"): entry.read_text(encoding="utf-8")
            for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")}


def read_spec(path) -> StudySpec:
    """Read and validate a study spec file, or a built-in study by name (``"quick"``).

    Parameters
    ----------
    path : str or os.PathLike
        A TOML file; a name without a file of that name picks a built-in study
        (:func:`builtin_specs`).

    Raises
    ------
    SpecError
        Every problem of the spec.
    ValueError
        No such file and no built-in study of that name.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a spec file path or a built-in study name, got "
                        f"{type(path).__name__}")
    file = Path(path)
    if file.is_file():
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the spec file {file}: {exc}") from None
        return parse_spec(text, origin=str(file))
    builtin = builtin_specs()
    if str(path) in builtin:
        return parse_spec(builtin[str(path)], origin=f"{path} (built in)")
    raise ValueError(f"no spec file {str(path)!r}, and no built-in study of that name "
                     f"(built in: {', '.join(builtin)}); give the path of a TOML spec")
