"""Benchmark: peak memory of ``pvcalc simulate`` for 1 and for many repeats.

``pvcalc simulate`` simulates each repeat alone (``phantoms.simulate_repeat``)
and writes its files before the next one is simulated, so its peak memory
should not grow with the number of repeats beyond about one repeat. Each run
happens in a fresh subprocess that reports its own peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, imports included). The
baseline is the same number of repeats held in memory at once, as
``phantoms.repeat`` returns them (a list of (scan, truth) pairs), which is how
a loop over ``phantoms.repeat`` would write them.

Run: ``python benchmarks/bench_simulate_memory.py`` (cci phantom, calcium-scoring
preset, 11 x 512 x 512 voxels per scan, 1 and 24 repeats); ``--quick`` for 1 and
6 repeats; ``--repeats N`` for 1 and N.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from _timing import median_time

CHILD = r"""
import resource, sys
n, out, how = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if how == "cli":
    from pvcalc.cli import main
    assert main(["simulate", "cci", "--repeats", str(n), "--out", out]) == 0
else:
    import phantoms
    pairs = phantoms.repeat(phantoms.cci_phantom(), phantoms.get_protocol("calcium_scoring"),
                            seed=0, n_repeats=n)
    print(f"held {len(pairs)} repeats")
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_mb(n, how, folder):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(n), folder, how],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"child failed ({how}, {n} repeats):\n{proc.stderr}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("PEAK_KB")][-1]
    return int(line.split()[1]) / 1024.0  # Linux reports kilobytes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 6 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="the larger number of repeats")
    args = parser.parse_args(argv)
    many = args.repeats or (6 if args.quick else 24)
    scan_mb = 11 * 512 * 512 * 4 / 2 ** 20  # one float32 scan of the cci phantom
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        peak_mb(1, "cli", os.path.join(tmp, "warm"))  # numba cache load, page cache
        for how in ("cli", "repeat"):
            for n in (1, many):
                seconds, mb = median_time(
                    lambda n=n, how=how: peak_mb(n, how, os.path.join(tmp, f"{how}{n}")), 1)
                rows[how, n] = mb
                print(f"{'pvcalc simulate' if how == 'cli' else 'phantoms.repeat, all held':>26}"
                      f" {n:3d} repeat(s): peak RSS {mb:7.1f} MB  ({seconds:5.1f} s)")
    for how, label in (("cli", "pvcalc simulate"), ("repeat", "baseline (all held)")):
        a, b = rows[how, 1], rows[how, many]
        print(f"{label}: {many} repeats / 1 repeat = {b / a:.2f}; growth {b - a:+.1f} MB = "
              f"{(b - a) / scan_mb:.2f} scans of {scan_mb:.1f} MB")
    print(f"pvcalc simulate peak at {many} repeats vs the baseline: "
          f"{rows['cli', many] / rows['repeat', many]:.2f}")


if __name__ == "__main__":
    main()
