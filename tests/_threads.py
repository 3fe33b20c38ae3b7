"""Run a snippet in a fresh interpreter with a given numba thread count.

numba fixes its thread pool at start-up, so thread-count determinism can only be
tested across processes.
"""

import os
import subprocess
import sys


def output_with_threads(code: str, threads: int) -> str:
    """stdout (stripped) of ``python -c code`` run with ``NUMBA_NUM_THREADS=threads``."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=600, check=True)
    return result.stdout.strip()
