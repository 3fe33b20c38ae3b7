"""What a worker does with one task: simulate the scan, calibrate, quantify, tabulate.

:func:`run_task` never raises for a problem of the task itself: a failure
(a simulation error, a calibration that cannot be made, a method failing
beyond what :func:`pvcalc.quantify` catches per lesion) comes back as a
:class:`TaskOutcome` with the error and a traceback summary, so the study
continues and the store records it.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["FIRST_COLUMNS", "TaskOutcome", "run_task"]

#: Columns every result row starts with (after them: the condition's columns, the
#: calibration, the lesion and its truth, then pvcalc.quantify's columns).
FIRST_COLUMNS = ("task_key", "condition", "repeat", "seed")
CALIBRATION_COLUMNS = ("calibration_source", "c_ha_mg_cm3_per_hu",
                       "calibration_mass_reference_hu")
#: Longest traceback summary kept (characters, the end of it).
TRACEBACK_CHARS = 4000


@dataclass
class TaskOutcome:
    """Result of one task: its rows, or the error that stopped it."""

    key: str
    table: pd.DataFrame | None
    error: str = ""
    traceback: str = ""
    seconds: float = 0.0
    #: Seconds of each stage that ran, in order: ``simulate``, ``calibrate``, ``rois``,
    #: ``quantify``, ``tabulate`` (the store records them in the manifest).
    stages: dict = field(default_factory=dict)


def run_task(task, methods, calibration, simulation) -> TaskOutcome:
    """Run one task (see :mod:`pvcalc.study.tasks`).

    Parameters
    ----------
    task : pvcalc.study.tasks.Task
    methods : dict
        Method name -> dict of parameters (``StudySpec.methods``).
    calibration : dict
        The spec's ``[calibration]`` section.
    simulation : dict
        Keyword arguments of :func:`phantoms.simulate_repeat` (``[simulation]``).

    Returns
    -------
    TaskOutcome
        ``table``: one row per lesion x method (columns in ``docs/study.md``);
        or ``error`` (``"TypeName: message"``) and ``traceback`` (its last
        frames), with ``table`` None.
    """
    t0 = time.perf_counter()
    stages = {}
    try:
        table = _results(task, methods, calibration, simulation, stages)
    except Exception as exc:  # noqa: BLE001  (one task's failure must not stop the study)
        text = "".join(traceback.format_exception(exc, limit=-8))
        return TaskOutcome(task.key, None, error=f"{type(exc).__name__}: {exc}",
                           traceback=text[-TRACEBACK_CHARS:], seconds=time.perf_counter() - t0,
                           stages=stages)
    return TaskOutcome(task.key, table, seconds=time.perf_counter() - t0, stages=stages)


class _Stages:
    """Adds the seconds since the last mark to ``stages[name]`` at each :meth:`mark`."""

    def __init__(self, stages):
        self.stages, self.last = stages, time.perf_counter()

    def mark(self, name):
        now = time.perf_counter()
        self.stages[name] = self.stages.get(name, 0.0) + now - self.last
        self.last = now


def _calibrate(scan, phantom, protocol, calibration):
    import pvcalc.calibration

    source = calibration["source"]
    if source == "rods":
        cal = pvcalc.calibration.rod_calibration(scan, phantom,
                                                 margin_mm=calibration["margin_mm"])
    elif source == "nominal":
        # the simulator's own HA factor: the protocol's hu_per_mg_ha or the kVp table's
        cal = pvcalc.calibration.Calibration(1.0 / protocol.ha_hu_per_mg)
    else:
        cal = pvcalc.calibration.Calibration(
            calibration["c_ha_mg_cm3_per_hu"],
            mass_reference_hu=calibration.get("mass_reference_hu", 0.0))
    return cal, {"calibration_source": source, "c_ha_mg_cm3_per_hu": cal.c_ha_mg_cm3_per_hu,
                 "calibration_mass_reference_hu": cal.mass_reference_hu}


def _constant(value, n):
    """A column of ``n`` copies of ``value`` with the store's dtype for its type."""
    if isinstance(value, (bool, np.bool_)):
        return pd.array([bool(value)] * n, dtype="boolean")
    if isinstance(value, (int, np.integer)):
        return pd.array([int(value)] * n, dtype="Int64")
    if value is None:
        return pd.array([pd.NA] * n, dtype="Int64")
    if isinstance(value, (float, np.floating)):
        return np.full(n, float(value))
    return pd.Series([str(value)] * n).array


def _truth_columns(truth_table):
    """lesion, lesion_index and every truth variable as ``true_<name>``, plus diameters."""
    out = {"lesion": truth_table["lesion"].astype(str).to_numpy(),
           "lesion_index": pd.array(truth_table["lesion_index"].to_numpy(), dtype="Int64")}
    for column in truth_table.columns:
        if column not in ("lesion", "lesion_index"):
            values = truth_table[column]
            if pd.api.types.is_integer_dtype(values):
                values = values.astype("Int64")
            out[f"true_{column}"] = values.array
    radius = truth_table["radius_mm"].to_numpy(dtype=float)
    out["true_diameter_mm"] = 2.0 * radius
    out["true_equivalent_diameter_mm"] = np.cbrt(6.0 * truth_table["volume_mm3"].to_numpy(
        dtype=float) / math.pi)
    return pd.DataFrame(out)


def _results(task, methods, calibration, simulation, stages=None):
    import phantoms
    import pvcalc.methods
    import pvcalc.rois

    clock = _Stages({} if stages is None else stages)
    condition = task.condition
    scan, truth = phantoms.simulate_repeat(condition.phantom, condition.protocol,
                                           seed=task.seed, index=task.index,
                                           fraction_maps=True, **simulation)
    clock.mark("simulate")
    cal, cal_columns = _calibrate(scan, condition.phantom, condition.protocol, calibration)
    clock.mark("calibrate")
    labels = pvcalc.rois.truth_roi_labels(scan, truth)
    clock.mark("rois")
    measured = pvcalc.methods.quantify(scan, labels, methods={k: dict(v) for k, v in
                                                              methods.items()},
                                       calibration=cal)
    clock.mark("quantify")
    del scan, labels
    lesions = _truth_columns(phantoms.truth.lesion_table(truth))
    position = {name: i for i, name in enumerate(lesions["lesion"])}
    missing = sorted(set(measured["lesion"]) - set(position))
    if missing:
        raise ValueError(f"quantify returned lesions {missing} that the truth does not have")
    rows = np.array([position[name] for name in measured["lesion"]], dtype=np.int64)
    n = len(measured)
    constants = {"task_key": task.key, "condition": condition.label, "repeat": task.repeat,
                 "seed": task.seed, **dict(condition.columns), **cal_columns}
    head = pd.DataFrame({k: _constant(v, n) for k, v in constants.items()})
    lesion_part = lesions.iloc[rows].reset_index(drop=True)
    rest = measured.drop(columns=["lesion"]).reset_index(drop=True)
    clash = (set(head) | set(lesion_part)) & set(rest)
    if clash:
        raise ValueError(f"method result columns {sorted(clash)} clash with the study's own "
                         "columns; rename the method's diagnostics")
    table = pd.concat([head, lesion_part, rest], axis=1)
    clock.mark("tabulate")
    return table
