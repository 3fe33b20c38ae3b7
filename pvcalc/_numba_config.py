"""One place for the numba flags used by pvcalc's kernels.

``numba.njit`` already implies nopython mode. ``cache=True`` writes compiled kernels next to the source so that the second
process starts in well under a second; ``error_model="numpy"`` lets float
division vectorise; ``fastmath`` is off so results match the reference loops
bit for bit where the tests require it.
"""

JIT = dict(cache=True, nogil=True, error_model="numpy")
PARALLEL_JIT = dict(JIT, parallel=True)
