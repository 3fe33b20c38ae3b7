"""Partial-volume methods behind one interface: :func:`quantify` and the registry.

- :func:`quantify` -- every selected method on every lesion, one tidy table.
- :data:`METHODS` -- read-only mapping name -> :class:`MethodSpec`;
  :func:`get_method` looks one up (unknown names get a suggestion).
- :class:`RegionParams`, :class:`LesionRegion` -- the per-lesion regions (ROI,
  core, vicinity, background shell) shared by all methods.
- Parameter dataclasses of the methods built in: :class:`ClinicalParams`,
  :class:`GroenParams`, :class:`BackgroundThresholdParams`,
  :class:`IntegratedParams`, :class:`VolumeFractionParams`, :class:`SwcsParams`,
  :class:`EmPartialContentParams`, :class:`MeshParams`, :class:`ModelFitParams`.

The contract a method fulfils is in ``pvcalc/methods/_base.py``, the regions
in ``pvcalc/methods/_regions.py``; docs/methods/index.md has the overview, the
column glossary and a page per method.
"""

from pvcalc.methods import (
    _background_threshold,
    _clinical,
    _em,
    _groen,
    _integrated,
    _mesh,
    _model_fit,
    _swcs,
    _volume_fraction,
)
from pvcalc.methods._background_threshold import BackgroundThresholdParams
from pvcalc.methods._base import (
    METHODS,
    RESULT_COLUMNS,
    MethodSpec,
    get_method,
    register,
)
from pvcalc.methods._clinical import ClinicalParams
from pvcalc.methods._em import EmPartialContentParams
from pvcalc.methods._groen import GroenParams
from pvcalc.methods._integrated import IntegratedParams
from pvcalc.methods._mesh import MeshParams
from pvcalc.methods._model_fit import ModelFitParams
from pvcalc.methods._regions import (
    LesionRegion,
    RegionParams,
    ScanContext,
    build_regions,
)
from pvcalc.methods._swcs import SwcsParams
from pvcalc.methods._volume_fraction import VolumeFractionParams

for _module in (_clinical, _groen, _background_threshold, _integrated, _volume_fraction,
                _swcs, _em, _mesh, _model_fit):
    register(_module.SPEC)
del _module

from pvcalc.methods._quantify import quantify  # noqa: E402  (after the registry is filled)

__all__ = [
    "METHODS",
    "RESULT_COLUMNS",
    "BackgroundThresholdParams",
    "ClinicalParams",
    "EmPartialContentParams",
    "GroenParams",
    "IntegratedParams",
    "LesionRegion",
    "MeshParams",
    "MethodSpec",
    "ModelFitParams",
    "RegionParams",
    "ScanContext",
    "SwcsParams",
    "VolumeFractionParams",
    "build_regions",
    "get_method",
    "quantify",
    "register",
]
