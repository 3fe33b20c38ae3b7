"""Run a study's tasks on dask.distributed and write their results as they complete.

:func:`run_study` is the one code path for every way of running: a
``distributed.LocalCluster`` of worker processes on this machine (one per core
by default, one thread each), a single in-process worker (``workers=1``), or an
existing cluster (``scheduler="tcp://host:8786"``). It submits tasks with
``Client.submit`` (at most a few per worker thread in flight, so memory stays
bounded by the batch, not the study), collects them with ``as_completed`` and
hands them to the :class:`~pvcalc.study.store.Store` in batches.

Patch mode (``phantoms.simulate_patches``) is not used: it has no repeats (no
repositioning, no new cardiac phase), draws other noise than the full scan,
and leaves out the calibration rods; full scans keep every task equal to
``phantoms.simulate_repeat`` of its condition.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pvcalc.study._execute import TaskOutcome, run_task
from pvcalc.study._folders import scratch as _scratch
from pvcalc.study._progress import Progress
from pvcalc.study.store import Store

__all__ = ["StudyRun", "run_study"]

#: Default number of tasks per Parquet part, and the longest time (s) a completed
#: task waits in memory before its batch is written anyway.
BATCH_SIZE = 16
FLUSH_SECONDS = 60.0
#: Tasks in flight per worker thread.
IN_FLIGHT_PER_THREAD = 2
#: Environment of local worker processes: one numba thread each (one task per core).
#: Set before a worker process starts (distributed's ``pre-spawn-environ``), not with
#: ``LocalCluster(env=...)``: that one is applied after the process has imported the
#: main module again (multiprocessing's spawn), and a main module that imports pvcalc
#: (the ``pvcalc`` command, a script) has imported numba, which reads
#: ``NUMBA_NUM_THREADS`` once at import. The workers then ran two numba threads each
#: on two cores (and the simulator's per-lesion thread pool), and a task took 1.5x the
#: time of the same task in a serial loop (benchmarks/bench_study_throughput.py).
_WORKER_ENV = {"NUMBA_NUM_THREADS": "1"}
#: Variables that distributed sets in worker processes and that local workers inherit
#: from this process instead. The thread counts (distributed sets them to 1): the
#: rounding of a BLAS dot product depends on BLAS's thread count, so worker processes
#: agree bit for bit with an in-process worker only when they use the same count
#: (docs/study.md, "Reproducibility").
_INHERITED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: glibc's allocator thresholds for local worker processes (bytes), set before they
#: start, unless this process's environment sets them. Without them every large
#: temporary array of a task in a worker process is a fresh ``mmap`` whose pages are
#: faulted in again (distributed's own ``MALLOC_TRIM_THRESHOLD_=65536`` makes it so, and
#: so do glibc's defaults in a worker process: about 24,000 minor page faults per
#: CCI-replica task against 26 in the serial loop); a task then takes 40-50% more CPU
#: time (docs/benchmarks.md, "Study throughput"). Freed memory up to this size stays
#: with the worker for the next task instead of going back to the operating system.
_MALLOC_BYTES = 256 * 2 ** 20
_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(_MALLOC_BYTES),
               "MALLOC_TRIM_THRESHOLD_": str(_MALLOC_BYTES)}


@dataclass(frozen=True)
class StudyRun:
    """What a call of :func:`run_study` did."""

    out_dir: Path
    n_tasks: int        # tasks of the study
    n_skipped: int      # already complete in the store, not run again
    n_completed: int    # run now and written
    n_failed: int       # run now and failed (recorded, see read_failures)
    seconds: float


def _check_args(workers, scheduler, batch_size, flush_seconds):
    if scheduler is not None:
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise ValueError(f"scheduler must be a dask scheduler address such as "
                             f"'tcp://10.0.0.5:8786', got {scheduler!r}")
        if workers is not None:
            raise ValueError("give workers (a local cluster) or scheduler (an existing "
                             "cluster), not both; the cluster's own workers run the tasks")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be a positive integer or None (one per core), "
                         f"got {workers!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (tasks per Parquet part), "
                         f"got {batch_size!r}")
    if isinstance(flush_seconds, bool) or not isinstance(flush_seconds, (int, float)) \
            or not flush_seconds > 0:
        raise ValueError(f"flush_seconds must be a positive number of seconds, "
                         f"got {flush_seconds!r}")


def _versions():
    import phantoms
    import pvcalc

    return (pvcalc.__version__, phantoms.__version__)


@contextlib.contextmanager
def _environment_set(values):
    """Set these environment variables of this process for the block, then restore them.

    distributed's nannies take ``pre-spawn-environ`` from the config but let a variable
    already set in ``os.environ`` win, and write the result into ``os.environ`` before
    they start a worker process; so the variables are set here while the cluster starts,
    and this process and its later subprocesses keep their own environment.
    """
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _client(workers, scheduler, scratch):
    """A distributed Client: on an existing scheduler, or on a LocalCluster started here."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise OSError(f"cannot connect to the dask scheduler {scheduler} ({exc}); start one "
                          "with 'dask scheduler' and workers with 'dask worker ADDRESS'") from None
        with client:
            theirs = set(client.run(_versions).values())
            if theirs - {_versions()}:
                raise ValueError(f"the cluster's workers run pvcalc/phantoms versions "
                                   f"{sorted(theirs)}, this process {_versions()}; install "
                                   "the same version everywhere")
            yield client
        return
    import dask

    n = int(workers or os.cpu_count() or 1)
    processes = n > 1
    # distributed's defaults but the inherited thread counts and its allocator setting,
    # ours where this process's environment does not set them, one numba thread always
    environ = {k: str(v) for k, v in
               dask.config.get("distributed.nanny.pre-spawn-environ").items()
               if k not in _INHERITED and k not in _MALLOC_ENV and v is not None}
    environ.update(_MALLOC_ENV)
    environ = {k: v for k, v in environ.items() if k not in os.environ}
    environ.update(_WORKER_ENV)
    # workers, nannies and the scheduler keep their files (spill, scratch) in out_dir; no
    # statistical profiler in the workers (it samples the task's stack every 10 ms for a
    # dashboard that is off here; 2-5% of the task time, docs/benchmarks.md)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                          "temporary-directory": str(scratch),
                          "distributed.worker.profile.enabled": False}):
        # no dashboard; the scheduler's HTTP routes (health) on a free local port
        with _environment_set(environ):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                                   dashboard_address="127.0.0.1:0",
                                   scheduler_kwargs={"dashboard": False},
                                   local_directory=str(scratch),
                                   silence_logs=logging.ERROR)
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()


def _run(client, store, todo, args, progress, batch_size, flush_seconds):
    """Submit the tasks (a bounded number in flight), write batches; return (done, failed)."""
    from distributed import as_completed

    threads = max(1, sum(client.nthreads().values()))
    pending = iter(todo)
    by_key = {}
    prefix = f"pvcalc-study-{os.getpid()}-{time.monotonic_ns()}-"

    def submit():
        task = next(pending, None)
        if task is None:
            return None
        future = client.submit(run_task, task, *args, key=prefix + task.key, pure=False)
        by_key[future.key] = task.key
        return future

    first = [f for f in (submit() for _ in range(threads * IN_FLIGHT_PER_THREAD))
             if f is not None]
    batch, oldest, done, failed = [], None, 0, 0
    stream = as_completed(first)
    try:
        for future in stream:
            key = by_key.pop(future.key)
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001  (a worker died, the task was lost, ...)
                outcome = TaskOutcome(key, None, error=f"{type(exc).__name__}: {exc}",
                                      traceback="raised by the cluster, not by the task")
            future.release()
            nxt = submit()
            if nxt is not None:
                stream.add(nxt)
            batch.append(outcome)
            oldest = oldest or time.monotonic()
            done += outcome.error == ""
            failed += outcome.error != ""
            if outcome.error:
                progress.line(f"task {key} failed: {outcome.error}")
            if len(batch) >= batch_size or time.monotonic() - oldest >= flush_seconds:
                store.write(batch)
                batch, oldest = [], None
            progress.update(done + failed, failed)
    finally:
        if batch:   # completed work is kept when the run stops (an error, Ctrl-C)
            store.write(batch)
    return done, failed


def run_study(spec, out_dir, *, workers=None, scheduler=None, batch_size=BATCH_SIZE,
              flush_seconds=FLUSH_SECONDS, progress=None, force=False,
              stream=None) -> StudyRun:
    """Run a study: every task not yet in ``out_dir``, results written as they complete.

    Parameters
    ----------
    spec : StudySpec, str or os.PathLike
        The study (a spec, a TOML file or a built-in name, see
        :func:`pvcalc.study.read_spec`).
    out_dir : str or os.PathLike
        The study's folder (created if needed); nothing is written outside it.
    workers : int, optional
        Local workers: default one worker process per core
        (``os.cpu_count()``, one thread each); ``1`` runs one worker inside
        this process (same code path, a ``LocalCluster(processes=False)``).
    scheduler : str, optional
        Address of an existing dask scheduler (``"tcp://host:8786"``); its
        workers run the tasks (they need the same pvcalc installed).
    batch_size : int, optional
        Tasks per Parquet part (default 16).
    flush_seconds : float, optional
        A batch is written at the latest this long after its first task
        completed (default 60 s): a hard kill loses at most that much work.
    progress : {None, "bar", "lines", False}, optional
        A progress bar (done / total, rate, ETA), plain lines, or nothing.
        Default: a bar when ``stream`` is a terminal, else lines.
    force : bool, optional
        Start over when ``out_dir`` holds another study (or unreadable study
        files): deletes only the files the store writes.
    stream : file, optional
        Where progress and notices go (default ``sys.stderr``).

    Returns
    -------
    StudyRun

    Raises
    ------
    pvcalc.study.SpecError
        The spec (a file or name) is invalid.
    ValueError
        Bad arguments, or ``out_dir`` holds a different study (without ``force``;
        the message lists what differs).
    OSError
        Another run holds ``out_dir`` (the lock), a file is in the way, or the
        scheduler cannot be reached.
    """
    from pvcalc.study.spec import StudySpec, read_spec
    from pvcalc.study.tasks import expand

    _check_args(workers, scheduler, batch_size, flush_seconds)
    if not isinstance(spec, StudySpec):
        spec = read_spec(spec)
    stream = sys.stderr if stream is None else stream
    progress = Progress(progress, stream)
    t0 = time.perf_counter()
    tasks = expand(spec)
    with Store.open(out_dir, spec, force=force, echo=progress.line) as store:
        todo = [t for t in tasks if t.key not in store.done]
        skipped = len(tasks) - len(todo)
        progress.line(f"study {spec.name!r}: {len(tasks)} task(s) -> {store.folder}"
                      + (f"; {skipped} already complete, skipped" if skipped else ""))
        done = failed = 0
        if todo:
            args = (dict(spec.methods), dict(spec.calibration), dict(spec.simulation))
            progress.start(len(tasks), skipped)
            # the workers' own files (spill, logs) go to a scratch folder inside out_dir
            with _scratch(store.folder) as scratch, \
                    _client(workers, scheduler, scratch) as client:
                try:
                    done, failed = _run(client, store, todo, args, progress, batch_size,
                                        flush_seconds)
                finally:
                    progress.finish()
        progress.line(f"study {spec.name!r}: {skipped + done} of {len(tasks)} task(s) complete"
                      + (f", {failed} failed (see pvcalc.study.read_failures)" if failed else ""))
    return StudyRun(out_dir=Path(out_dir), n_tasks=len(tasks), n_skipped=skipped,
                    n_completed=done, n_failed=failed, seconds=time.perf_counter() - t0)

