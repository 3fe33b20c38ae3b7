"""``clinical``: the standard Agatston, volume and mass scores of each lesion's ROI.

The reference every partial-volume method is compared with. One lesion's
result is its row of ``pvcalc.score(scan, labels=rois, preset=...).by_label``,
computed by one call of :func:`pvcalc.score` on the whole scan per preset and
calibration (shared by all lesions of the scan), so it equals the public
scoring function exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvcalc.methods._base import NO_CALIBRATION, MethodSpec
from pvcalc.scoring import ScoringPreset, score
from pvcalc.scoring._presets import resolve_preset

__all__ = ["SPEC", "ClinicalParams"]

#: HU given to non-finite voxels outside every usable ROI before scoring (air:
#: never calcium), so that one bad voxel elsewhere does not stop the score.
FILL_HU = -1024.0


@dataclass(frozen=True)
class ClinicalParams:
    """Parameters of the ``clinical`` method.

    Parameters
    ----------
    preset : str or ScoringPreset, default "standard"
        A name of :data:`pvcalc.PRESETS` or a :class:`pvcalc.ScoringPreset`
        (use ``pvcalc.PRESETS["standard"].replace(connectivity=4)`` for
        variants). Stored resolved, as a ``ScoringPreset``.

    Examples
    --------
    >>> ClinicalParams("min_area_0").preset.min_area_mm2
    0.0
    """

    preset: object = "standard"

    def __post_init__(self):
        if not isinstance(self.preset, (str, ScoringPreset)):
            raise TypeError(
                "preset must be a preset name (str) or a pvcalc.ScoringPreset, got "
                f"{type(self.preset).__name__}")
        object.__setattr__(self, "preset", resolve_preset(self.preset))


def _scan_scores(context, preset, calibration):
    key = ("clinical", preset, calibration)
    if key not in context.cache:
        scan = context.scan
        if not context.finite:
            scan = scan.where(np.isfinite(scan), FILL_HU)
        res = score(scan, labels=context.labels, preset=preset, calibration=calibration)
        context.cache[key] = (res.by_label.set_index("label"), res.threshold_hu)
    return context.cache[key]


def compute(region, params, calibration):
    """Clinical scores of one ROI (its row of :func:`pvcalc.score`'s ``by_label``)."""
    table, threshold = _scan_scores(region.context, params.preset, calibration)
    row = table.loc[region.label]
    volume = float(row["volume_mm3"])
    out = {"volume_mm3": volume, "agatston": float(row["agatston"]),
           "threshold_hu": float(threshold), "detected": bool(volume > 0),
           "peak_hu": region.peak_hu}
    if calibration is None:
        out["mass_mg"] = float("nan")
        out["reason"] = NO_CALIBRATION
    else:
        out["mass_mg"] = float(row["mass_mg"])
    return out


SPEC = MethodSpec(
    name="clinical", params=ClinicalParams, compute=compute, requires_calibration=False,
    defines={"volume_mm3", "mass_mg", "agatston", "threshold_hu"},
    summary="clinical Agatston / volume / mass score of the ROI (pvcalc.score, any preset)",
    reference="Agatston et al., J Am Coll Cardiol 1990;15:827; McCollough et al., "
              "Radiology 2007;243:527")
