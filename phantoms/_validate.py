"""Argument validators shared by the simulator's public constructors and functions.

Every public entry point of :mod:`phantoms` checks its arguments with these, so
an error always names the parameter, what was expected (with its unit), the
value received and, where one helps, a hint; a wrong type raises ``TypeError``,
a wrong value ``ValueError``. Each validator returns the normalised value
(a ``float``, an ``int``, a tuple of floats, ...), so a constructor stores what
the validator returns.

Names: :func:`real` (any real number), :func:`real_in_range`,
:func:`finite_real`, :func:`positive_real`, :func:`nonnegative_real`,
:func:`integer_in_range`, :func:`positive_int`, :func:`boolean`,
:func:`one_of`, :func:`vector` (n finite numbers), :func:`unit_vector`
(a non-zero 3-vector, normalised), :func:`interval` (a (low, high) pair) and
:func:`rotation_matrix`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["boolean", "finite_real", "integer_in_range", "interval", "nonnegative_real",
           "one_of", "positive_int", "positive_real", "real", "real_in_range",
           "rotation_matrix", "unit_vector", "vector"]


def _hint(hint):
    return f"; {hint}" if hint else ""


def _got(value):
    return f"got {type(value).__name__} {value!r}"


def real(name, value, *, expected=None, unit=""):
    """``value`` as a float if it is a real number (not a bool), else ``TypeError``.

    ``expected`` replaces "a number" in the message (e.g. "a number in [0, 1]").

    Examples
    --------
    >>> real("radius_mm", 2, unit="mm")
    2.0
    >>> real("radius_mm", "2", unit="mm")
    Traceback (most recent call last):
    ...
    TypeError: radius_mm must be a number in mm, got str '2'
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        what = expected or ("a number" + (f" in {unit}" if unit else ""))
        raise TypeError(f"{name} must be {what}, {_got(value)}")
    return float(value)


def real_in_range(name, value, lo, hi, *, lo_open=False, hi_open=False, unit="", hint=""):
    """``value`` as a float in [lo, hi] (``lo_open`` / ``hi_open``: open ends).

    Examples
    --------
    >>> real_in_range("gating_phase", 0.7, 0, 1, hi_open=True, unit="of the R-R interval")
    0.7
    >>> real_in_range("kvp", 150, 70.0, 140.0, unit="kV")
    Traceback (most recent call last):
    ...
    ValueError: kvp must be in [70.0, 140.0] kV, got 150
    """
    rng = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    where = f"{rng} {unit}" if unit else rng
    v = real(name, value, expected=f"a number in {where}")
    bad = (not math.isfinite(v) or (v >= hi if hi_open else v > hi)
           or (v <= lo if lo_open else v < lo))
    if bad:
        raise ValueError(f"{name} must be in {where}, got {value!r}{_hint(hint)}")
    return v


def finite_real(name, value, *, unit="", hint=""):
    """``value`` as a finite float (any sign).

    Examples
    --------
    >>> finite_real("tissue_hu", float("nan"), unit="HU")
    Traceback (most recent call last):
    ...
    ValueError: tissue_hu must be a finite number in HU, got nan
    """
    v = real(name, value, unit=unit)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number{f' in {unit}' if unit else ''}, "
                         f"got {value!r}{_hint(hint)}")
    return v


def positive_real(name, value, *, unit="", what="number", hint=""):
    """``value`` as a finite float > 0; ``what`` names the quantity ("length", ...).

    Examples
    --------
    >>> positive_real("radius_mm", -1, unit="mm", what="length")
    Traceback (most recent call last):
    ...
    ValueError: radius_mm must be a finite positive length in mm, got -1
    """
    v = real(name, value, unit=unit)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite positive {what}"
                         f"{f' in {unit}' if unit else ''}, got {value!r}{_hint(hint)}")
    return v


def nonnegative_real(name, value, *, unit="", hint=""):
    """``value`` as a finite float >= 0.

    Examples
    --------
    >>> nonnegative_real("peak_velocity_mm_s", -5.0, unit="mm/s")
    Traceback (most recent call last):
    ...
    ValueError: peak_velocity_mm_s must be finite and >= 0 mm/s, got -5.0
    """
    v = real(name, value, unit=unit)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be finite and >= 0{f' {unit}' if unit else ''}, "
                         f"got {value!r}{_hint(hint)}")
    return v


def integer_in_range(name, value, lo, hi, *, unit="", hint=""):
    """``value`` as an int in [lo, hi] (a bool or a float is a ``TypeError``).

    Examples
    --------
    >>> integer_in_range("matrix", 8, 16, 2048, unit="pixels")
    Traceback (most recent call last):
    ...
    ValueError: matrix must be in [16, 2048] pixels, got 8
    """
    where = f"[{lo}, {hi}]{f' {unit}' if unit else ''}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int in {where}, {_got(value)}{_hint(hint)}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be in {where}, got {value!r}{_hint(hint)}")
    return int(value)


def positive_int(name, value, *, hint=""):
    """``value`` as an int >= 1 (a bool or a float is a ``TypeError``).

    Examples
    --------
    >>> positive_int("nsub", 0)
    Traceback (most recent call last):
    ...
    ValueError: nsub must be a positive integer, got 0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, {_got(value)}{_hint(hint)}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}{_hint(hint)}")
    return int(value)


def boolean(name, value):
    """``value`` as a bool if it is one (Python or numpy), else ``TypeError``.

    Examples
    --------
    >>> boolean("gated", 1)
    Traceback (most recent call last):
    ...
    TypeError: gated must be True or False, got 1
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def one_of(name, value, options, *, hint=""):
    """``value`` if it is one of ``options``, else ``ValueError`` listing them.

    Examples
    --------
    >>> one_of("profile", "sine", ("constant", "cardiac"))
    Traceback (most recent call last):
    ...
    ValueError: profile must be one of ('constant', 'cardiac'), got 'sine'
    """
    try:
        ok = value in options
    except TypeError:          # an unhashable value tested against a set or dict
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {options}, got {value!r}{_hint(hint)}")
    return value


def vector(name, value, *, axes=("z", "y", "x"), unit="mm"):
    """``value`` as a tuple of ``len(axes)`` finite floats.

    Examples
    --------
    >>> vector("centre_mm", (1, 2, 3))
    (1.0, 2.0, 3.0)
    >>> vector("centre_yx_mm", (1, 2, 3), axes=("y", "x"))
    Traceback (most recent call last):
    ...
    ValueError: centre_yx_mm must be 2 finite numbers (y, x) in mm, got (1, 2, 3)
    """
    n = len(axes)
    what = f"numbers ({', '.join(axes)}){f' in {unit}' if unit else ''}"
    try:
        v = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {n} {what}, got {value!r}") from None
    if v.shape != (n,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be {n} finite {what}, got {value!r}")
    return tuple(float(a) for a in v)


def unit_vector(name, value):
    """``value`` as a unit 3-vector (z, y, x): finite, non-zero, normalised.

    Examples
    --------
    >>> unit_vector("axis", (0, 0, 2))
    (0.0, 0.0, 1.0)
    """
    v = np.asarray(vector(name, value, unit=""))
    n = np.linalg.norm(v)
    if n == 0:
        raise ValueError(f"{name} must be a non-zero direction (z, y, x), got {value!r}")
    return tuple(float(a) for a in v / n)


def interval(name, value, *, ends=("z_min_mm", "z_max_mm"), example="(-15.0, 15.0)"):
    """``value`` as a pair of finite floats (low, high) with low < high.

    Examples
    --------
    >>> interval("z_extent_mm", (-5, 5))
    (-5.0, 5.0)
    >>> interval("z_extent_mm", (5, -5))
    Traceback (most recent call last):
    ...
    ValueError: z_extent_mm must be finite with z_min_mm < z_max_mm, got (5.0, -5.0); swap ...
    """
    lo_name, hi_name = ends
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a pair of numbers ({lo_name}, {hi_name}), got {value!r}; "
            f"pass e.g. {example}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(
            f"{name} must be finite with {lo_name} < {hi_name}, got ({lo}, {hi}); "
            "swap or widen the bounds")
    return lo, hi


def rotation_matrix(name, matrix):
    """``matrix`` as a (3, 3) float ndarray of a proper rotation (orthonormal, det +1).

    Examples
    --------
    >>> rotation_matrix("rotation", [[1, 0, 0], [0, 1, 0], [0, 0, -1]])
    Traceback (most recent call last):
    ...
    ValueError: rotation must be a proper rotation (orthonormal, det +1); orthonormalise ...
    """
    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 3 x 3 rotation matrix, got {matrix!r}") from None
    if m.shape != (3, 3) or not np.all(np.isfinite(m)):
        raise ValueError(f"{name} must be a 3 x 3 rotation matrix, got shape {m.shape}")
    if not np.allclose(m @ m.T, np.eye(3), atol=1e-6) or np.linalg.det(m) < 0:
        raise ValueError(f"{name} must be a proper rotation (orthonormal, det +1); "
                         f"orthonormalise it, e.g. with scipy.spatial.transform.Rotation")
    return m
