"""Scalar validators shared by pvcalc's public constructors and functions.

Each returns the value as a ``float`` or raises an error that names the
parameter, what was expected (with its unit), the value received and, where
one helps, a hint: ``TypeError`` when the value is not a number, ``ValueError``
when it is out of range. A "number" is anything ``float()`` accepts (a numpy
scalar, a 0-d array, a DICOM decimal string), as scan attributes often arrive
that way; a bool is not a number. The statistics have their own checks in :mod:`pvcalc.stats._validate`.
"""

from __future__ import annotations

import math

__all__ = ["finite_float", "positive_float", "check_real", "check_int"]


def _unit(unit):
    return f" in {unit}" if unit else ""


def finite_float(name, value, *, unit="", hint=""):
    """``float(value)``, checked finite.

    Examples
    --------
    >>> finite_float("threshold_hu", "130")
    130.0
    >>> finite_float("threshold_hu", True)
    Traceback (most recent call last):
    ...
    TypeError: threshold_hu must be a number, got the bool True; give a number
    >>> finite_float("threshold_hu", float("inf"), unit="HU")
    Traceback (most recent call last):
    ...
    ValueError: threshold_hu must be finite in HU, got inf
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise TypeError(f"{name} must be a number{_unit(unit)}, got the bool {value!r}; "
                        "give a number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number{_unit(unit)}, got "
                        f"{type(value).__name__} {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite{_unit(unit)}, got {value!r}"
                         f"{'; ' + hint if hint else ''}")
    return v


def positive_float(name, value, *, what="number", unit="", hint=""):
    """``float(value)``, checked finite and > 0; ``what`` names the quantity.

    Examples
    --------
    >>> positive_float("kvp", -120, what="tube voltage", unit="kV")
    Traceback (most recent call last):
    ...
    ValueError: kvp must be a positive tube voltage in kV, got -120
    """
    v = finite_float(name, value, unit=unit, hint=hint)
    if v <= 0:
        raise ValueError(f"{name} must be a positive {what}{_unit(unit)}, got {value!r}"
                         f"{'; ' + hint if hint else ''}")
    return v


def check_real(name, value, *, lo=None, hi=None, lo_open=False):
    """``float(value)``, checked finite and within ``[lo, hi]`` (``(lo, hi]`` if ``lo_open``).

    For parameter dataclasses, whose fields are plain numbers without units.

    Examples
    --------
    >>> check_real("clip_sd", 0, lo=0, lo_open=True)
    Traceback (most recent call last):
    ...
    ValueError: clip_sd must be > 0, got 0
    """
    v = finite_float(name, value)
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return v


def check_int(name, value, minimum):
    """``int(value)`` for an integer (not a bool, not a float) ``>= minimum``.

    Examples
    --------
    >>> check_int("min_slices", 0, 1)
    Traceback (most recent call last):
    ...
    ValueError: min_slices must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_" \
            or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
