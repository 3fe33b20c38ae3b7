"""Argument checks shared by the named-phantom modules (private)."""

from __future__ import annotations

import math
import numbers


def check_extent(z_extent_mm, name="z_extent_mm"):
    try:
        lo, hi = (float(v) for v in z_extent_mm)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a pair of numbers (z_min_mm, z_max_mm), got {z_extent_mm!r}; "
            "pass e.g. (-15.0, 15.0)") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(
            f"{name} must be finite with z_min_mm < z_max_mm, got ({lo}, {hi}); "
            "swap or widen the bounds")
    return lo, hi


def check_number(value, name, lo, hi):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {v}")
    return v
