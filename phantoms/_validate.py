"""Scalar validators shared by the simulator's public constructors and functions.

Every public entry point of :mod:`phantoms` checks its numbers with these, so an
error always names the parameter, the accepted range with its unit, the value
received and, where one helps, a hint.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def real_in_range(name, value, lo, hi, *, lo_open=False, unit="", hint=""):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number{unit and ' in ' + unit}, got "
                        f"{type(value).__name__} {value!r}")
    v = float(value)
    bad = not math.isfinite(v) or v > hi or (v <= lo if lo_open else v < lo)
    if bad:
        rng = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
        raise ValueError(f"{name} must be in {rng}{' ' + unit if unit else ''}, got {value!r}"
                         f"{'; ' + hint if hint else ''}")
    return v
