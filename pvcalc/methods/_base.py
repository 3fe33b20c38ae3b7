"""The method contract: what every partial-volume method provides.

A method is a :class:`MethodSpec`:

- ``name``: the registry key (snake_case, e.g. ``"adaptive_groen"``);
- ``params``: a frozen dataclass of its parameters, every field with a
  documented default, validated in ``__post_init__`` (``TypeError`` /
  ``ValueError`` naming the field, the expected and the received value);
- ``compute(region, params, calibration) -> dict``: the measurement of one
  :class:`~pvcalc.methods._regions.LesionRegion` (``calibration`` is a
  :class:`pvcalc.Calibration` or None);
- ``requires_calibration``: True when the method cannot measure anything
  without a calibration (its volume depends on it); otherwise a calibration is
  needed for the mass only;
- ``defines``: which of the quantities ``volume_mm3``, ``mass_mg``,
  ``agatston``, ``threshold_hu`` the method reports (the others are NaN in its
  rows, see the comparison table in ``docs/methods/index.md``);
- ``summary`` and ``reference``: one line each, for listings.

``compute`` returns a dict of result columns: any of the standard columns
(:data:`RESULT_COLUMNS` minus ``lesion``, ``method``, ``background_hu``,
``background_sd_hu``, which :func:`pvcalc.quantify` fills from the region),
plus method-specific diagnostics documented on the method's page. It may
leave out columns (they become NaN / None), must set ``reason`` when it
returns NaN for a quantity it defines, and may raise: :func:`pvcalc.quantify`
catches the exception of one lesion and method and reports its message in
``reason``. ``compute`` is never called for a region with a ``reason`` (an
unusable region), nor, for a method with ``requires_calibration``, without a
calibration. Masses always come from the calibration:
``mass_mg = c_HA x sum(HU - reference) x voxel_mm3 / 1000`` (see
:meth:`pvcalc.Calibration.mass_mg`), the reference being the calibration's
``mass_reference_hu`` (clinical mass) or the local background (methods that
measure calcium above the background).

Registering a method: a module ``pvcalc/methods/_<name>.py`` defines its
params dataclass, its ``compute`` function and ``SPEC = MethodSpec(...)``;
``pvcalc/methods/__init__.py`` imports the module and calls
:func:`register`. :data:`pvcalc.methods.METHODS` is the read-only view of the
registry; :func:`get_method` looks a name up (an unknown name raises
``ValueError`` suggesting the closest valid name).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "METHODS",
    "NO_CALIBRATION",
    "QUANTITIES",
    "RESULT_COLUMNS",
    "MethodSpec",
    "get_method",
    "register",
]

#: Quantities a method may define (``MethodSpec.defines``).
QUANTITIES = ("volume_mm3", "mass_mg", "agatston", "threshold_hu")

#: Standard result columns of :func:`pvcalc.quantify`, in order (glossary:
#: docs/methods/index.md). Method-specific diagnostics follow them.
RESULT_COLUMNS = ("lesion", "method", "volume_mm3", "mass_mg", "agatston", "threshold_hu",
                  "detected", "background_hu", "background_sd_hu", "n_voxels", "peak_hu",
                  "z_score", "n_iter", "converged", "reason")

#: ``reason`` of a mass left NaN because no calibration was given.
NO_CALIBRATION = ("no calibration: the mass needs one; pass calibration=pvcalc.Calibration(...) "
                  "or pvcalc.calibration.rod_calibration(...)")


@dataclass(frozen=True)
class MethodSpec:
    """One partial-volume method behind :func:`pvcalc.quantify` (see the module notes).

    Examples
    --------
    >>> from pvcalc.methods import get_method
    >>> spec = get_method("adaptive_groen")
    >>> spec.name, spec.requires_calibration, "volume_mm3" in spec.defines
    ('adaptive_groen', False, True)
    """

    name: str
    params: type
    compute: Callable
    requires_calibration: bool
    defines: frozenset
    summary: str
    reference: str = ""

    def __post_init__(self):
        if not dataclasses.is_dataclass(self.params):
            raise TypeError(f"params of method {self.name!r} must be a dataclass type")
        unknown = set(self.defines) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"defines of method {self.name!r} has unknown quantities "
                             f"{sorted(unknown)}; valid: {list(QUANTITIES)}")
        object.__setattr__(self, "defines", frozenset(self.defines))

    def make_params(self, value=None):
        """Parameters from None (defaults), a dict of fields or an instance.

        Examples
        --------
        >>> from pvcalc.methods import get_method
        >>> get_method("adaptive_groen").make_params({"fraction": 0.4}).fraction
        0.4
        """
        if value is None:
            return self.params()
        if isinstance(value, self.params):
            return value
        if isinstance(value, dict):
            fields = {f.name for f in dataclasses.fields(self.params)}
            unknown = sorted(set(value) - fields)
            if unknown:
                hint = _suggest(unknown[0], fields)
                raise ValueError(
                    f"unknown parameter(s) {unknown} for method {self.name!r}{hint}; valid "
                    f"parameters are {sorted(fields)}")
            return self.params(**value)
        raise TypeError(
            f"parameters of method {self.name!r} must be a {self.params.__name__}, a dict "
            f"of its fields or None, got {type(value).__name__}")


_REGISTRY: dict = {}

#: Read-only mapping name -> :class:`MethodSpec` of every registered method.
METHODS = types.MappingProxyType(_REGISTRY)


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method to the registry (once per name)."""
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"register needs a MethodSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"a method named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _suggest(name, valid):
    close = difflib.get_close_matches(str(name), sorted(valid), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def get_method(name) -> MethodSpec:
    """The registered method called ``name``.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If no method has that name; the message suggests the closest valid name.

    Examples
    --------
    >>> get_method("integrated").name
    'integrated'
    >>> get_method("adaptive_gron")
    Traceback (most recent call last):
    ...
    ValueError: unknown method 'adaptive_gron' (did you mean 'adaptive_groen'?); valid methods are [...]
    """
    if not isinstance(name, str):
        raise TypeError(f"a method name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}{_suggest(name, _REGISTRY)}; valid methods are "
            f"{sorted(_REGISTRY)}") from None


def local_mass_mg(calibration, hu, background_hu, voxel_mm3):
    """Mass (mg) of the calcium above the local background in the voxels ``hu``.

    ``c_HA x sum(hu - background_hu) x voxel_mm3 / 1000`` through
    :meth:`pvcalc.Calibration.mass_mg` (the calibration's own reference HU is
    replaced by the local background). None without a calibration.
    """
    if calibration is None:
        return None
    excess = float(np.sum(hu, dtype=np.float64) - np.size(hu) * background_hu)
    return calibration.mass_mg(hu_sum=excess, voxel_volume_mm3=voxel_mm3)


