"""Run every benchmark in this folder, one subprocess each.

Usage::

    python benchmarks/run_all.py            # full size
    python benchmarks/run_all.py --quick    # fewer repeats (where a benchmark supports it)

Each ``bench_*.py`` times pvcalc's code and a plain numpy/scipy/pandas baseline in
the same run and prints both medians and their ratio, because absolute times on
shared machines drift by 10-40% between runs. ``bench_simulate_memory.py`` measures
peak memory instead: ``pvcalc simulate`` with 1 and with 24 repeats (``--quick``: 6)
against the same repeats held in memory at once, and prints the ratios.
"""

import subprocess
import sys
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    here = Path(__file__).resolve().parent
    failed = []
    for bench in sorted(here.glob("bench_*.py")):
        print(f"\n===== {bench.name} =====", flush=True)
        proc = subprocess.run([sys.executable, str(bench), *argv], check=False)
        if proc.returncode:
            failed.append(bench.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
