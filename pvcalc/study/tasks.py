"""A study's tasks: one simulated scan of one condition and repeat, quantified by every method.

:func:`expand` turns a :class:`~pvcalc.study.spec.StudySpec` into its
:class:`Condition` s (phantom x grid point) and :class:`Task` s (condition x
repeat). Every task has

- a stable ``key``: the condition's label, the repeat and a short hash, e.g.
  ``cci|calcium_scoring|protocol_kvp=100|r002|3fa2c9d1``; the hash covers the
  condition's full definition (phantom parameters, every protocol field, dose),
  so two conditions never share a key;
- a ``seed``: the condition's seed, derived from the master seed and the
  condition's definition alone, ``SeedSequence([master_seed, h]).generate_state(1,
  uint64) >> 1`` with ``h`` the first 64 bits of the SHA-256 of the definition. Repeat
  ``r`` of the condition is ``phantoms.simulate_repeat(phantom, protocol,
  seed=seed, index=r - 1)``, i.e. scan ``r`` of ``phantoms.repeat(...,
  seed=seed)``; results therefore do not depend on task order, worker count or
  resumption, and adding a condition to a spec leaves the others' seeds alone.

:func:`study_size` counts conditions, scans and result rows;
:func:`estimate_runtime` gives a run-time estimate from a per-voxel cost model
(or from timing one task).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from pvcalc.study._spec_grid import (
    _PAIRED,
    AXES,
    BODY_SIZES,
    PHANTOM_AXES,
    protocol_overrides,
    takes_axis,
)

__all__ = ["AXIS_COLUMNS", "COST_MODEL", "Condition", "Task", "estimate_runtime", "expand",
           "study_size"]

_PROTOCOL_FIELDS = ("kvp", "pixel_mm", "matrix", "slice_thickness_mm", "increment_mm",
                    "slice_profile", "psf_fwhm_mm", "kernel", "noise_sd_hu",
                    "nps_peak_freq_per_mm", "temporal_resolution_ms", "gated", "gating_phase",
                    "rotation_time_s", "pitch", "collimation_mm")
#: Protocol fields recorded in a condition's definition only when set (not None), so the
#: digests and seeds of conditions that leave them unset stay as before they existed;
#: their result columns are always there (the HA factor used, and the NPS table as JSON
#: text or "").
_OPTIONAL_PROTOCOL_FIELDS = ("hu_per_mg_ha", "nps_radial")
#: Result columns of each grid axis.
AXIS_COLUMNS = {"protocol": ("protocol",), "body": ("body",),
                "heart_rate_bpm": ("heart_rate_bpm",), "velocity_mm_s": ("velocity_mm_s",),
                "slice": ("protocol_slice_thickness_mm", "protocol_increment_mm"),
                "kernel_psf": ("protocol_kernel", "protocol_psf_fwhm_mm"),
                "mtf50_per_mm": ("protocol_mtf50_per_mm",), "mas": ("protocol_mas",),
                **{f: (f"protocol_{f}",) for f in _PROTOCOL_FIELDS + _OPTIONAL_PROTOCOL_FIELDS}}

#: Cost model of one task (seconds), fitted to timings of CCI-replica tasks with all
#: methods on the 2-core development machine (``pvcalc study check SPEC --measure``
#: times a task of your own): ``overhead_s + voxels x (simulate + n_methods x method)``
#: per voxel, plus ``startup_s`` once per run (cluster start, imports, kernel cache).
COST_MODEL = {"overhead_s": 0.15, "simulate_s_per_voxel": 1.5e-7,
              "method_s_per_voxel": 4.0e-8, "startup_s": 8.0}


@dataclass(frozen=True)
class Condition:
    """One phantom under one grid point.

    Attributes
    ----------
    label : str
        Readable: phantom label, preset, then ``axis=value`` of every grid axis
        with more than one value.
    digest : str
        SHA-256 (hex) of the condition's definition (:attr:`definition`).
    seed : int
        Seed of the condition's series of repeats.
    phantom : phantoms.Phantom
    protocol : phantoms.Protocol
    columns : tuple of (str, value)
        The condition's columns in the results (``phantom``, ``protocol``,
        ``protocol_kvp``, ...; glossary in ``docs/study.md``).
    definition : str
        Canonical JSON of what defines the scan (phantom parameters, patient,
        every protocol field, dose).
    """

    label: str
    digest: str
    seed: int
    phantom: object
    protocol: object
    columns: tuple
    definition: str


@dataclass(frozen=True)
class Task:
    """One scan: repeat ``repeat`` (1-based) of ``condition``; ``key`` identifies it."""

    key: str
    condition: Condition
    repeat: int

    @property
    def seed(self) -> int:
        """Seed of the series (``phantoms.simulate_repeat(seed=..., index=repeat - 1)``)."""
        return self.condition.seed

    @property
    def index(self) -> int:
        """0-based repeat index (``phantoms.simulate_repeat(..., index=...)``)."""
        return self.repeat - 1

    @property
    def key_hash(self) -> str:
        """The short hash that ends :attr:`key`."""
        return self.key.rsplit("|", 1)[1]


def _sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def condition_seed(master_seed, digest) -> int:
    """The seed of a condition: from the master seed and the condition's digest.

    Examples
    --------
    >>> condition_seed(1, "0" * 64) == condition_seed(1, "0" * 64) != condition_seed(2, "0" * 64)
    True
    """
    ss = np.random.SeedSequence([int(master_seed), int(digest[:16], 16)])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _fmt(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):   # a pair: "3x1.5" (slice), "soft_1.3" (kernel_psf)
        return ("_" if any(isinstance(v, str) for v in value) else "x").join(
            _fmt(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _table(spec, table):
    """Label of an NPS table of the grid: its place in the axis, ``table2``."""
    return f"table{spec.grid['nps_radial'].index(table) + 1}"


def _phantom_variants(entry, grid):
    """[(axis values, builder parameters)] of one [[phantoms]] entry."""
    axes = [a for a in PHANTOM_AXES if a in grid and takes_axis(entry.name, entry.params, a)]
    for combo in itertools.product(*(grid[a] for a in axes)):
        params = dict(entry.params)
        values = dict(zip(axes, combo))
        for axis, v in values.items():
            if axis == "body":
                params["extension_ring"] = BODY_SIZES[v]
            elif axis == "heart_rate_bpm":
                params["heart_rate_bpm"] = v
            else:
                params["velocities_mm_s"] = (v,)
        yield values, params


def _phantoms(entry, params):
    """[(patient index or None, label, Phantom)] of one phantom variant."""
    from phantoms.library import cci_phantom, lesion_population, motion_phantom

    if entry.name == "cci":
        return [(None, entry.label, cci_phantom(**params))]
    if entry.name == "motion":
        return [(None, entry.label, motion_phantom(**params))]
    kw = dict(params)
    n, seed = kw.pop("n"), kw.pop("seed")
    width = max(3, len(str(n - 1)))
    return [(i, f"{entry.label}_{i:0{width}d}", p)
            for i, p in enumerate(lesion_population(n, seed=seed, **kw))]


def _protocols(grid, body):
    """[(axis values, preset, Protocol, mAs or None)] of every protocol grid point."""
    from phantoms import get_protocol, noise_sd_from_mas

    axes = [a for a in AXES if a in grid and a not in ("protocol", *PHANTOM_AXES)]
    height, width = body.outer_size_mm
    for preset in grid["protocol"]:
        for combo in itertools.product(*(grid[a] for a in axes)):
            values = dict(zip(axes, combo))
            protocol = get_protocol(preset, **protocol_overrides(values))
            mas = values.get("mas")
            if mas is not None:
                protocol = protocol.replace(noise_sd_hu=noise_sd_from_mas(
                    mas, slice_thickness_mm=protocol.slice_thickness_mm, width_mm=width,
                    height_mm=height))
            yield values, preset, protocol, mas


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _condition(spec, entry, patient, label, phantom, params, pvals, preset, protocol, mas,
               values):
    from phantoms.psf import MTF50_TIMES_FWHM

    fields = {f: getattr(protocol, f) for f in _PROTOCOL_FIELDS}
    fields.update({f: getattr(protocol, f) for f in _OPTIONAL_PROTOCOL_FIELDS
                   if getattr(protocol, f) is not None})
    definition = json.dumps({"phantom": {"name": entry.name, "patient": patient,
                                         "params": {k: _jsonable(v) for k, v in params.items()}},
                             "protocol": fields, "mas": mas}, sort_keys=True)
    digest = _sha(definition)
    hr = phantom.heart_rate_bpm
    columns = {"phantom": label, "phantom_name": entry.name, "patient_index": patient,
               "body": "large" if phantom.body.extension_ring else "standard",
               "heart_rate_bpm": float(hr) if hr is not None else math.nan,
               "velocity_mm_s": float(pvals.get("velocity_mm_s", math.nan)),
               "protocol": preset}
    for f, v in fields.items():
        columns[f"protocol_{f}"] = math.nan if v is None else v
    columns["protocol_hu_per_mg_ha"] = protocol.ha_hu_per_mg
    columns["protocol_nps_radial"] = protocol.as_attrs().get("nps_radial", "")
    columns["protocol_mtf50_per_mm"] = MTF50_TIMES_FWHM / protocol.psf_fwhm_mm
    columns["protocol_mas"] = math.nan if mas is None else float(mas)
    shown = {**pvals, **values}
    parts = [label, preset] + [f"{AXIS_COLUMNS[a][0] if a not in _PAIRED else a}="
                               f"{_table(spec, shown[a]) if a == 'nps_radial' else _fmt(shown[a])}"
                               for a in AXES if a in shown and len(spec.grid[a]) > 1]
    return Condition(label="|".join(parts), digest=digest,
                     seed=condition_seed(spec.seed, digest), phantom=phantom,
                     protocol=protocol, columns=tuple(columns.items()), definition=definition)


def conditions(spec) -> list:
    """Every :class:`Condition` of a spec, in spec order (phantoms, patients, grid)."""
    out = []
    for entry in spec.phantoms:
        for pvals, params in _phantom_variants(entry, spec.grid):
            for patient, label, phantom in _phantoms(entry, params):
                for values, preset, protocol, mas in _protocols(spec.grid, phantom.body):
                    out.append(_condition(spec, entry, patient, label, phantom, params, pvals,
                                          preset, protocol, mas, values))
    return out


def expand(spec) -> list:
    """The tasks of a study: every condition x repeat, in spec order.

    Parameters
    ----------
    spec : StudySpec

    Returns
    -------
    list of Task
        Keys are unique; a task's key and seed depend only on the master seed,
        its condition and its repeat.

    Examples
    --------
    >>> from pvcalc.study import parse_spec
    >>> spec = parse_spec('''
    ... [study]
    ... name = "two"
    ... seed = 7
    ... repeats = 2
    ... [[phantoms]]
    ... name = "cci"
    ... [grid]
    ... protocol = ["calcium_scoring", "low_dose_chest"]
    ... [methods.clinical]
    ... ''')
    >>> [t.key.rsplit("|", 1)[0] for t in expand(spec)]
    ['cci|calcium_scoring|r001', 'cci|calcium_scoring|r002',
     'cci|low_dose_chest|r001', 'cci|low_dose_chest|r002']
    """
    tasks = []
    for c in conditions(spec):
        for r in range(1, spec.repeats + 1):
            tasks.append(Task(key=f"{c.label}|r{r:03d}|{_sha(f'{c.digest}|{r}')[:8]}",
                              condition=c, repeat=r))
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):   # two [[phantoms]] entries that define the same scans
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"two tasks of the study are the same scan ({dup}); remove the "
                         "duplicate [[phantoms]] entry or grid value")
    return tasks


def _voxels(protocol, phantom):
    return protocol.matrix ** 2 * len(protocol.slice_positions_mm(phantom.z_extent_mm))


def study_size(spec, tasks=None) -> dict:
    """How big a study is.

    Returns
    -------
    dict
        ``conditions``, ``repeats``, ``tasks`` (= scans, conditions x repeats),
        ``scan_lesions`` (lesions summed over the scans), ``methods``, ``rows``
        (result rows, scan_lesions x methods) and ``voxels`` (summed over the scans).

    Examples
    --------
    >>> from pvcalc.study import parse_spec
    >>> spec = parse_spec('[study]\\nname = "s"\\nseed = 0\\n[[phantoms]]\\nname = "cci"\\n'
    ...                   '[grid]\\nprotocol = "calcium_scoring"\\n[methods.clinical]\\n'
    ...                   '[methods.integrated]\\n')
    >>> {k: v for k, v in study_size(spec).items() if k != "voxels"}
    {'conditions': 1, 'repeats': 2, 'tasks': 2, 'scan_lesions': 18, 'methods': 2, 'rows': 36}
    """
    tasks = expand(spec) if tasks is None else tasks
    lesions = sum(len(t.condition.phantom.lesions) for t in tasks)
    return {"conditions": len({t.condition.digest for t in tasks}), "repeats": spec.repeats,
            "tasks": len(tasks), "scan_lesions": lesions, "methods": len(spec.methods),
            "rows": lesions * len(spec.methods),
            "voxels": sum(_voxels(t.condition.protocol, t.condition.phantom) for t in tasks)}


def _model_seconds(task, n_methods):
    c = COST_MODEL
    return c["overhead_s"] + _voxels(task.condition.protocol, task.condition.phantom) * (
        c["simulate_s_per_voxel"] + n_methods * c["method_s_per_voxel"])


def estimate_runtime(spec, *, workers=None, measure=False, tasks=None) -> dict:
    """Estimated wall-clock time of a study on ``workers`` workers.

    Parameters
    ----------
    spec : StudySpec
    workers : int, optional
        Parallel workers (default: ``os.cpu_count()``).
    measure : bool, optional
        Time the first task (run twice in this process; the second run is
        timed, so kernel compilation is left out) and scale every task by the
        cost model's ratio, instead of the model's absolute numbers.

    Returns
    -------
    dict
        ``seconds`` (total), ``task_seconds`` (summed over the tasks),
        ``workers`` and ``basis`` ("model" or "measured").

    Notes
    -----
    Tasks are spread evenly: ``startup_s + task_seconds / workers``
    (:data:`COST_MODEL`). Expect the model to be within a factor of two on a
    machine like the one it was fitted on; it ignores motion (more time
    samples) and the method mix.
    """
    from pvcalc.study._execute import run_task

    tasks = expand(spec) if tasks is None else tasks
    workers = int(workers or os.cpu_count() or 1)
    n = len(spec.methods)
    model = [_model_seconds(t, n) for t in tasks]
    basis, scale = "model", 1.0
    if measure and tasks:
        args = (dict(spec.methods), dict(spec.calibration), dict(spec.simulation))
        run_task(tasks[0], *args)
        t0 = time.perf_counter()
        outcome = run_task(tasks[0], *args)
        if outcome.error:
            raise RuntimeError(f"the task timed for the estimate failed: {outcome.error}")
        scale = (time.perf_counter() - t0) / model[0]
        basis = "measured"
    total = scale * sum(model)
    return {"seconds": COST_MODEL["startup_s"] + total / workers, "task_seconds": total,
            "workers": workers, "basis": basis}
