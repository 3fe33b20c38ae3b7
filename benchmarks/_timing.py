"""The one timing helper shared by the benchmarks (imported as ``_timing`` when a
benchmark runs as a script from this folder)."""

import statistics
import time


def median_time(fn, repeats):
    """Median wall time of ``fn()`` over ``repeats`` calls, in seconds, and the last result."""
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out
