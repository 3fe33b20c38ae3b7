"""One place for the numba flags of the simulator's kernels (phantoms never imports pvcalc)."""

JIT = dict(cache=True, nogil=True, error_model="numpy")
PARALLEL_JIT = dict(JIT, parallel=True)
