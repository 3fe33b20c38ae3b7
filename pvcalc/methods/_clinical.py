"""``clinical``: the standard Agatston, volume and mass scores of each lesion's ROI.

The reference every partial-volume method is compared with. One lesion's
result is its row of ``pvcalc.score(scan, labels=rois, preset=...).by_label``.
Lesions never cross a label boundary, so that row depends only on the voxels of
the ROI: it is computed on the ROI's bounding box (``LesionRegion.roi_box``) by
the same labelling kernels and the same arithmetic, in the same order, as
:func:`pvcalc.score` (``tests/test_methods_analytic.py`` checks equality to the
last bit for every preset). Two cases score the whole scan instead, once per
preset and calibration (shared by the scan's lesions): ``thickness_source =
"resample_3mm"`` (the 3 mm slabs start at the scan's first slice), and a
calibration whose ``mass_reference_hu`` is not below the threshold (the error
of :func:`pvcalc.score` is the lesion's reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvcalc.methods._base import NO_CALIBRATION, MethodSpec
from pvcalc.scoring import ScoringPreset, score
from pvcalc.scoring._agatston import (
    AGATSTON_SLICE_MM,
    _density_weights,
    _kept_components,
    label_components,
)
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


def _label_sum(values):
    """The sum of ``pvcalc.score``'s ``by_label`` (``np.bincount``: one pass, in order)."""
    return float(np.bincount(np.zeros(values.size, dtype=np.intp), weights=values,
                             minlength=1)[0])


def _roi_scores(region, preset, calibration):
    """(agatston, volume_mm3, mass_mg or None, threshold_hu) of the ROI, on its bounding box.

    The steps of :func:`pvcalc.score` (``_scoring_grid``, ``label_components``,
    ``_kept_components``, ``_density_weights``, ``_lesion_table``, ``_by_label``)
    on the box, with the ROI as the only label; None where the whole scan must
    be scored (see the module notes).
    """
    thr, cut = preset.thresholds_for_kvp(region.kvp)
    if preset.thickness_source == "resample_3mm" or (
            calibration is not None and calibration.mass_reference_hu >= thr):
        return None
    box = region.roi_box
    vol = np.ascontiguousarray(region.hu[box], dtype=np.float32)   # exact: the scan's values
    if not region.context.finite:
        vol[~np.isfinite(vol)] = FILL_HU
    lab = region.roi[box].astype(np.int32)
    dz, dy, dx = region.spacing_mm
    if preset.thickness_source == "increment":
        factor = dz / AGATSTON_SLICE_MM
    else:
        factor = region.slice_thickness_mm / AGATSTON_SLICE_MM
    if not preset.slice_normalisation:
        factor = 1.0
    pixel_mm2 = dy * dx
    voxel_mm3 = pixel_mm2 * dz
    c = label_components(vol, lab, thr, inclusive=preset.threshold_inclusive,
                         connectivity=preset.connectivity)
    idx = np.flatnonzero(_kept_components(c, preset, pixel_mm2))
    weight = _density_weights(c, preset, cut)
    area = c["n_voxels"] * pixel_mm2
    nk = c["n_voxels"][idx].astype(np.int64)
    agatston = _label_sum(area[idx] * weight[idx] * factor)
    volume = _label_sum(nk * voxel_mm3)
    mass = None
    if calibration is not None:
        per = calibration.mass_mg(hu_sum=c["hu_sum"][idx], voxel_volume_mm3=voxel_mm3,
                                  n_voxels=nk)
        mass = _label_sum(np.asarray(per, dtype=np.float64).reshape(-1))
    return agatston, volume, mass, float(thr)


def compute(region, params, calibration):
    """Clinical scores of one ROI (its row of :func:`pvcalc.score`'s ``by_label``)."""
    fast = _roi_scores(region, params.preset, calibration)
    if fast is None:
        table, threshold = _scan_scores(region.context, params.preset, calibration)
        row = table.loc[region.label]
        agatston, volume = float(row["agatston"]), float(row["volume_mm3"])
        mass = float(row["mass_mg"]) if calibration is not None else None
    else:
        agatston, volume, mass, threshold = fast
    out = {"volume_mm3": volume, "agatston": agatston,
           "threshold_hu": float(threshold), "detected": bool(volume > 0),
           "peak_hu": region.peak_hu}
    if calibration is None:
        out["mass_mg"] = float("nan")
        out["reason"] = NO_CALIBRATION
    else:
        out["mass_mg"] = mass
    return out


SPEC = MethodSpec(
    name="clinical", params=ClinicalParams, compute=compute, requires_calibration=False,
    defines={"volume_mm3", "mass_mg", "agatston", "threshold_hu"},
    summary="clinical Agatston / volume / mass score of the ROI (pvcalc.score, any preset)",
    reference="Agatston et al., J Am Coll Cardiol 1990;15:827; McCollough et al., "
              "Radiology 2007;243:527")
