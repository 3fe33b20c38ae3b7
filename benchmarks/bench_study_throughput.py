"""Study throughput: 10,000 lesion-scans x every method through the study runner.

Run: ``python benchmarks/bench_study_throughput.py`` (``--quick``: 504 lesion-scans,
what ``run_all.py --quick`` runs; ``--lesion-scans N`` for another size; ``--workers N``).

The study: the calcification-insert replica (nine inserts, ``phantoms.cci_phantom()``,
with its calibration rods) on the calcium-scoring protocol at 100 and 120 kVp, on a
256 x 256 matrix of 0.49 mm pixels (a 125 mm field of view holding the insert and the
rods, as the built-in ``quick`` study), every registered method
(``pvcalc.methods.METHODS``), mass calibrated on each scan's rods. One lesion-scan =
one insert in one simulated scan, so a task (one repeated scan,
``phantoms.simulate_repeat``) is nine lesion-scans; 2 conditions x 556 repeats =
10,008 lesion-scans.

1. ``pvcalc.study.run_study(spec, DIR, workers=2)``: the wall time from the call to its
   return (local cluster start, every task, Parquet parts, manifest), the throughput in
   lesion-scans per second, and where the time goes: each task's stage times from the
   manifest (``simulate``, ``calibrate``, ``rois``, ``quantify``, ``tabulate``, summed
   over tasks and divided by the workers), the store's writes (timed in this process,
   where they run) and the rest (cluster start, task transfer, waiting).
2. The same tasks in a plain serial loop in this process, no dask and no store:
   ``simulate_repeat`` -> ``rod_calibration`` -> ``truth_roi_labels`` ->
   ``pvcalc.quantify`` -> a list of tables, concatenated at the end. The ratio of the two
   wall times is the runner's parallel speed-up (at most the number of workers).

Both runs compute the same rows: the benchmark checks that the masses agree. CPU
seconds are printed beside the wall times: with Linux's autogroup scheduling
(``/proc/sys/kernel/sched_autogroup_enabled``) the processes of one terminal session
share one session's share of a busy machine, so worker processes only beat the serial
loop on otherwise idle cores; compare wall times from idle runs.
Numba kernels compile (or load their cache) in a warm-up task before any timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import phantoms
import pvcalc
from pvcalc.calibration import rod_calibration
from pvcalc.methods import METHODS
from pvcalc.rois import truth_roi_labels
from pvcalc.study import expand, parse_spec, read_results, run_study
from pvcalc.study import store as study_store
from pvcalc.study._execute import run_task

#: Target: the full study in at most this many seconds on 2 cores.
TARGET_S = 120.0
LESION_SCANS = 10_000
QUICK_LESION_SCANS = 500
KVPS = (100, 120)
N_INSERTS = 9
STAGES = ("simulate", "calibrate", "rois", "quantify", "tabulate")


def make_spec(lesion_scans, without=()):
    """The study spec: enough repeats of 2 conditions x 9 inserts for ``lesion_scans``."""
    repeats = -(-lesion_scans // (N_INSERTS * len(KVPS)))
    unknown = sorted(set(without) - set(METHODS))
    if unknown:
        raise SystemExit(f"--without: unknown method(s) {unknown}; valid: {list(METHODS)}")
    methods = "\n".join(f"[methods.{name}]" for name in METHODS if name not in without)
    text = f"""
[study]
name = "throughput"
seed = 20261201
repeats = {repeats}

[[phantoms]]
name = "cci"

[grid]
protocol = "calcium_scoring"
kvp = [{", ".join(str(k) for k in KVPS)}]
matrix = 256
pixel_mm = 0.49

{methods}

[calibration]
source = "rods"
"""
    return parse_spec(text)


def serial_loop(tasks, methods):
    """simulate -> calibrate -> ROIs -> quantify -> collect, one task after the other."""
    tables = []
    for task in tasks:
        c = task.condition
        scan, truth = phantoms.simulate_repeat(c.phantom, c.protocol, seed=task.seed,
                                               index=task.index, fraction_maps=True)
        cal = rod_calibration(scan, c.phantom)
        table = pvcalc.quantify(scan, truth_roi_labels(scan, truth), methods=methods,
                                calibration=cal)
        table.insert(0, "task_key", task.key)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def method_times(tasks, methods, n_scans):
    """Seconds per lesion-scan of each method's ``compute`` on the regions of ``n_scans`` scans.

    The regions are built as :func:`pvcalc.quantify` builds them; each method pays for
    the shared per-region caches it uses (``noise_inflation``, a scan-level score).
    """
    from pvcalc.methods import RegionParams, ScanContext, build_regions

    total = dict.fromkeys(methods, 0.0)
    n = 0
    for task in tasks[:n_scans]:
        c = task.condition
        scan, truth = phantoms.simulate_repeat(c.phantom, c.protocol, seed=task.seed,
                                               index=task.index, fraction_maps=True)
        cal = rod_calibration(scan, c.phantom)
        labels = truth_roi_labels(scan, truth)
        names = dict(labels.attrs["label_names"])
        ctx = ScanContext(scan=scan, labels=np.asarray(labels.values, dtype=np.int32),
                          label_names=names, finite=True)
        regions = [r for r in build_regions(ctx, sorted(names), RegionParams()) if not r.reason]
        n += len(regions)
        for name, params in methods.items():
            spec = METHODS[name]
            p = spec.make_params(params or None)
            ctx.cache.clear()
            for r in regions:
                r.__dict__.pop("noise_inflation", None)
            t0 = time.perf_counter()
            for r in regions:
                spec.compute(r, p, cal)
            total[name] += time.perf_counter() - t0
    return {k: v / max(n, 1) for k, v in total.items()}


def timed_store_writes():
    """Wrap Store.write to time it (it runs in this process); returns the list of seconds."""
    seconds = []
    original = study_store.Store.write

    def write(self, outcomes):
        t0 = time.perf_counter()
        try:
            return original(self, outcomes)
        finally:
            seconds.append(time.perf_counter() - t0)

    study_store.Store.write = write
    return seconds, lambda: setattr(study_store.Store, "write", original)


def manifest_stages(folder):
    """Per task: its seconds and stage seconds, from the manifest."""
    rows = []
    for line in (folder / study_store.MANIFEST_FILE).read_text().splitlines():
        entry = json.loads(line)
        for key, seconds in entry["seconds"].items():
            rows.append({"task_key": key, "seconds": seconds,
                         **entry.get("stages", {}).get(key, {})})
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_LESION_SCANS} lesion-scans instead of {LESION_SCANS}")
    ap.add_argument("--lesion-scans", type=int, default=None, metavar="N")
    ap.add_argument("--workers", type=int, default=2, metavar="N")
    ap.add_argument("--without", action="append", default=[], metavar="METHOD",
                    help="leave a method out (repeat for several), to see its share")
    args = ap.parse_args(argv)
    n_target = args.lesion_scans or (QUICK_LESION_SCANS if args.quick else LESION_SCANS)
    spec = make_spec(n_target, without=args.without)
    tasks = expand(spec)
    n_lesion_scans = len(tasks) * N_INSERTS
    methods = {name: dict(p) for name, p in spec.methods.items()}
    warnings.simplefilter("ignore")          # e.g. a calibration-range notice per scan
    run_task(tasks[0], dict(spec.methods), dict(spec.calibration), dict(spec.simulation))
    try:
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    c = tasks[0].condition
    n_slices = len(c.protocol.slice_positions_mm(c.phantom.z_extent_mm))
    w = args.workers
    print(f"study: {len(tasks)} tasks (scans of {n_slices} x {c.protocol.matrix}^2 "
          f"voxels) x {N_INSERTS} inserts = {n_lesion_scans} lesion-scans x {len(methods)} "
          f"methods ({', '.join(methods)}); {w} workers on {os.cpu_count()} cores; "
          f"load average before: {load}", flush=True)

    root = tempfile.mkdtemp(prefix="pvcalc-throughput-")
    try:
        folder = Path(root) / "study"
        writes, restore = timed_store_writes()
        t0, cpu0, times0 = time.perf_counter(), time.process_time(), os.times()
        try:
            run = run_study(spec, folder, workers=w, progress=False)
        finally:
            restore()
        wall = time.perf_counter() - t0
        cpu_main = time.process_time() - cpu0
        times1 = os.times()     # the worker processes have ended: their CPU is counted
        cpu_workers = (times1.children_user - times0.children_user
                       + times1.children_system - times0.children_system)
        if run.n_failed:
            raise SystemExit(f"{run.n_failed} task(s) failed: "
                             f"{pvcalc.study.read_failures(folder)['error'].iloc[0]}")
        stages = manifest_stages(folder)
        results = read_results(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    busy = stages[list(STAGES)].sum()
    task_total = float(stages["seconds"].sum())
    store_s = float(np.sum(writes))
    full = n_lesion_scans >= LESION_SCANS
    verdict = ("reduced size" if not full else
               f"target <= {TARGET_S:g} s: {'meets' if wall <= TARGET_S else 'misses'}")
    print(f"\nrun_study: {wall:.1f} s wall for {n_lesion_scans} lesion-scans = "
          f"{n_lesion_scans / wall:.0f} lesion-scans/s ({verdict})")
    print(f"  task time summed over tasks {task_total:.1f} s (mean "
          f"{1e3 * task_total / len(tasks):.1f} ms per task, "
          f"{1e3 * task_total / n_lesion_scans:.2f} ms per lesion-scan); per worker "
          f"{task_total / w:.1f} s:")
    for name in STAGES:
        print(f"    {name:10s} {busy[name] / w:7.1f} s per worker  "
              f"{100 * busy[name] / task_total:5.1f}% of task time  "
              f"{1e3 * busy[name] / n_lesion_scans:6.2f} ms per lesion-scan")
    # the store writes run in this process while the workers compute: they overlap the
    # tasks rather than add to them
    other = wall - task_total / w
    print(f"  store writes (this process, {len(writes)} parts, while the workers compute) "
          f"{store_s:.2f} s; wall time beyond a worker's task time (cluster start, "
          f"transfer, waiting) {other:.1f} s")
    print(f"  CPU: worker processes {cpu_workers:.1f} s ({cpu_workers / w:.1f} s per core: the "
          f"wall time of the tasks on {w} otherwise idle cores), this process (scheduler, "
          f"client, store) {cpu_main:.1f} s", flush=True)
    if not full:
        scale = LESION_SCANS / n_lesion_scans
        print(f"  extrapolated to {LESION_SCANS} lesion-scans (task time x {scale:.1f}, "
              f"+ start-up): about {other + (task_total / w + store_s) * scale:.0f} s")
    per = method_times(tasks, methods, 10)
    print("methods, ms per lesion-scan (compute alone, 10 scans): " + ", ".join(
        f"{k} {1e3 * v:.2f}" for k, v in per.items()) + f"; sum {1e3 * sum(per.values()):.2f}",
        flush=True)

    t0, cpu0 = time.perf_counter(), time.process_time()
    serial = serial_loop(tasks, methods)
    wall_serial = time.perf_counter() - t0
    cpu_serial = time.process_time() - cpu0
    mine = results.set_index(["task_key", "lesion", "method"])["mass_mg"].sort_index()
    theirs = serial.set_index(["task_key", "lesion", "method"])["mass_mg"].sort_index()
    if not (mine.index.equals(theirs.index)
            and np.allclose(mine.to_numpy(float), theirs.to_numpy(float), rtol=1e-12,
                            atol=1e-12, equal_nan=True)):
        raise SystemExit("the study and the serial loop give different masses")
    print(f"serial loop (no dask, no store): {wall_serial:.1f} s = "
          f"{n_lesion_scans / wall_serial:.0f} lesion-scans/s, CPU {cpu_serial:.1f} s; "
          f"run_study is {wall_serial / wall:.2f}x faster with {w} workers (CPU per "
          f"lesion-scan: study {1e3 * (cpu_workers + cpu_main) / n_lesion_scans:.2f} ms, serial "
          f"{1e3 * cpu_serial / n_lesion_scans:.2f} ms; same masses)")


if __name__ == "__main__":
    main()
