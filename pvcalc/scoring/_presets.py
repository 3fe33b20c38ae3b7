"""Scoring conventions: the :class:`ScoringPreset` dataclass and named presets.

Every choice that published calcium-scoring implementations disagree on is a
field of :class:`ScoringPreset`; :data:`PRESETS` names the combinations that
reproduce documented conventions. ``pvcalc.score(scan, preset=..., **overrides)``
resolves a preset name plus keyword overrides with :func:`resolve_preset`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pvcalc._validate import finite_float, positive_float

#: kVp-specific threshold and weight cut-offs in HU, (threshold, w2, w3, w4),
#: from Grani et al., Eur Heart J Cardiovasc Imaging 2018 (135 kVp extrapolated
#: by the authors). A voxel is calcium at >= threshold; a component's weight is
#: 1 below w2, 2 from w2, 3 from w3, 4 from w4.
KVP_THRESHOLDS_HU: dict[float, tuple[float, float, float, float]] = {
    70.0: (207.0, 318.0, 477.0, 636.0),
    80.0: (177.0, 271.0, 408.0, 544.0),
    100.0: (145.0, 222.0, 334.0, 446.0),
    120.0: (130.0, 200.0, 300.0, 400.0),
    135.0: (119.0, 183.0, 274.0, 364.0),
}

_CHOICES = {
    "connectivity": (4, 8),
    "lesion_dimensionality": ("2d", "3d"),
    "weight_from": ("component", "lesion_3d"),
    "thickness_source": ("increment", "slice_thickness", "resample_3mm"),
    "kvp_thresholds": ("off", "exact", "nearest", "interpolate"),
    "volume_method": ("voxel", "isotropic"),
}


@dataclass(frozen=True)
class ScoringPreset:
    """Every convention of clinical calcium scoring, as one immutable record.

    Parameters
    ----------
    name : str
        Label reported with the result.
    threshold_hu : float
        Calcium threshold in HU (used unless ``kvp_thresholds`` picks one).
    threshold_inclusive : bool
        True: a voxel is calcium if HU >= threshold; False: HU > threshold.
    weight_cutoffs_hu : tuple of 3 floats
        Peak-HU cut-offs (w2, w3, w4) at which the density weight becomes 2, 3, 4.
    weight_cutoffs_inclusive : bool
        True: weight 2 from peak >= w2 (the "200" convention); False: from
        peak > w2 (implementations that write ``peak > 200``).
    connectivity : {8, 4}
        In-plane connectivity of a lesion. 3D linking across slices uses the
        matching 3D neighbourhood: 26 for 8, 6 for 4.
    min_area_mm2 : float
        Minimum area (mm2) of a lesion; compared inclusively (area >= min, with
        a relative tolerance of 1e-9 so 4 x 0.25 mm2 pixels count as 1 mm2).
    min_voxels : int
        Minimum number of voxels of a lesion (both minima must hold).
    lesion_dimensionality : {"2d", "3d"}
        "2d": a lesion is a connected component within one axial slice; the
        minima apply to it. "3d": a lesion is a 3D connected component; the
        minima apply to the whole 3D lesion (its voxel count and its summed
        in-plane area, n_voxels x pixel area); all slice fragments of a kept
        lesion are scored.
    weight_from : {"component", "lesion_3d"}
        Whose peak HU sets each slice fragment's weight: its own (Agatston's
        per-slice rule) or that of the 3D lesion it belongs to.
    thickness_source : {"increment", "slice_thickness", "resample_3mm"}
        Slice normalisation factor: slice increment / 3 mm (from the z
        coordinates), the nominal ``slice_thickness_mm`` attribute / 3 mm (what
        some software does; it over-counts overlapping reconstructions), or
        resample the scan to contiguous 3 mm slices first (factor 1).
    slice_normalisation : bool
        False: no factor at all (implementations that ignore slice spacing).
    kvp_thresholds : {"off", "exact", "nearest", "interpolate"}
        "off": use ``threshold_hu`` / ``weight_cutoffs_hu`` whatever the kVp.
        Otherwise take them from :data:`KVP_THRESHOLDS_HU` using the scan's
        ``kvp``: "exact" (error unless the kVp is in the table), "nearest"
        (nearest tabulated kVp, e.g. 140 kVp uses the 135 kVp row), or
        "interpolate" (linear in kVp between rows; error outside 70-135 kVp).
    volume_method : {"voxel", "isotropic"}
        "isotropic" adds a column ``volume_iso_mm3``: the volume above threshold
        after linear interpolation along z to slices as thin as the in-plane
        pixel (or ``isotropic_spacing_mm``); see :func:`pvcalc.score`.
    isotropic_spacing_mm : float or None
        Target z step for ``volume_method="isotropic"``; None: the mean
        in-plane spacing.
    source : str
        What convention this preset reproduces and where it is documented.

    Examples
    --------
    >>> p = PRESETS["standard"]
    >>> p.threshold_hu, p.connectivity, p.min_area_mm2
    (130.0, 8, 1.0)
    >>> p.replace(connectivity=4).connectivity
    4
    """

    name: str = "standard"
    threshold_hu: float = 130.0
    threshold_inclusive: bool = True
    weight_cutoffs_hu: tuple = (200.0, 300.0, 400.0)
    weight_cutoffs_inclusive: bool = True
    connectivity: int = 8
    min_area_mm2: float = 1.0
    min_voxels: int = 1
    lesion_dimensionality: str = "2d"
    weight_from: str = "component"
    thickness_source: str = "increment"
    slice_normalisation: bool = True
    kvp_thresholds: str = "off"
    volume_method: str = "voxel"
    isotropic_spacing_mm: float | None = None
    source: str = ""

    def __post_init__(self):
        for field, allowed in _CHOICES.items():
            value = getattr(self, field)
            if value not in allowed:
                raise ValueError(
                    f"{field} must be one of {list(allowed)}, got {value!r}")
        object.__setattr__(self, "connectivity", int(self.connectivity))
        for field in ("threshold_inclusive", "weight_cutoffs_inclusive",
                      "slice_normalisation"):
            if not isinstance(getattr(self, field), (bool, np.bool_)):
                raise TypeError(
                    f"{field} must be True or False, got {getattr(self, field)!r}")
        object.__setattr__(self, "threshold_hu",
                           finite_float("threshold_hu", self.threshold_hu, unit="HU"))
        cut = tuple(np.atleast_1d(np.asarray(self.weight_cutoffs_hu, dtype=float)).tolist())
        if len(cut) != 3 or not all(np.isfinite(cut)) or not (cut[0] <= cut[1] <= cut[2]):
            raise ValueError(
                "weight_cutoffs_hu must be 3 finite, non-decreasing HU values (w2, w3, w4), "
                f"e.g. (200, 300, 400); got {self.weight_cutoffs_hu!r}")
        object.__setattr__(self, "weight_cutoffs_hu", cut)
        area = finite_float("min_area_mm2", self.min_area_mm2, unit="mm2")
        if area < 0:
            raise ValueError(f"min_area_mm2 must be >= 0 mm2, got {self.min_area_mm2!r}")
        object.__setattr__(self, "min_area_mm2", area)
        if isinstance(self.min_voxels, bool) or not isinstance(self.min_voxels, (int, np.integer)):
            raise TypeError(f"min_voxels must be an integer, got {self.min_voxels!r}")
        if self.min_voxels < 1:
            raise ValueError(
                f"min_voxels must be >= 1 (a lesion has at least one voxel), got {self.min_voxels}")
        object.__setattr__(self, "min_voxels", int(self.min_voxels))
        if self.isotropic_spacing_mm is not None:
            object.__setattr__(self, "isotropic_spacing_mm", positive_float(
                "isotropic_spacing_mm", self.isotropic_spacing_mm, what="step", unit="mm"))

    def replace(self, **changes) -> "ScoringPreset":
        """A copy with some fields changed (validated like the constructor)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(
                f"unknown scoring option(s) {unknown}; valid options are "
                f"{sorted(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict of the fields (JSON-friendly)."""
        d = dataclasses.asdict(self)
        d["weight_cutoffs_hu"] = list(d["weight_cutoffs_hu"])
        return d

    def thresholds_for_kvp(self, kvp: float) -> tuple[float, tuple[float, float, float]]:
        """Threshold and weight cut-offs (HU) to use on a scan taken at ``kvp``.

        Examples
        --------
        >>> PRESETS["kvp_adjusted"].thresholds_for_kvp(80)
        (177.0, (271.0, 408.0, 544.0))
        >>> PRESETS["standard"].thresholds_for_kvp(80)
        (130.0, (200.0, 300.0, 400.0))
        """
        if self.kvp_thresholds == "off":
            return self.threshold_hu, tuple(self.weight_cutoffs_hu)
        kvp = float(kvp)
        table = np.array(sorted(KVP_THRESHOLDS_HU))
        if self.kvp_thresholds == "exact":
            hit = np.flatnonzero(np.isclose(table, kvp, rtol=0, atol=1e-6))
            if hit.size == 0:
                raise ValueError(
                    f"kvp_thresholds='exact' has no thresholds for {kvp:g} kVp; tabulated kVp "
                    f"are {table.tolist()}. Use kvp_thresholds='nearest' or 'interpolate'")
            row = KVP_THRESHOLDS_HU[float(table[hit[0]])]
        elif self.kvp_thresholds == "nearest":
            # ties (e.g. 90 kVp between 80 and 100) go to the lower kVp, whose
            # higher threshold is the conservative choice
            row = KVP_THRESHOLDS_HU[float(table[np.argmin(np.abs(table - kvp))])]
        else:
            if not table[0] <= kvp <= table[-1]:
                raise ValueError(
                    f"kvp_thresholds='interpolate' covers {table[0]:g}-{table[-1]:g} kVp, "
                    f"but the scan has {kvp:g} kVp; use kvp_thresholds='nearest' to take "
                    "the closest row")
            rows = np.array([KVP_THRESHOLDS_HU[float(k)] for k in table])
            row = tuple(float(np.interp(kvp, table, rows[:, j])) for j in range(4))
        return float(row[0]), tuple(float(v) for v in row[1:])


def _make_presets():
    std = ScoringPreset(
        name="standard",
        source="Default: Agatston et al. 1990 rules (>= 130 HU, weights from the "
               "component's peak at 200/300/400 HU, area >= 1 mm2), 8-connected 2D "
               "components per slice, scaled by slice increment / 3 mm")
    variants = {
        "agatston_1990": dict(
            thickness_source="resample_3mm",
            source="Agatston et al., J Am Coll Cardiol 1990;15:827: 130 HU, area >= 1 mm2, "
                   "contiguous 3 mm EBCT slices; reproduced by resampling to 3 mm slabs"),
        "min_area_0": dict(
            min_area_mm2=0.0, min_voxels=1,
            source="No minimum size: every voxel above threshold counts (research code)"),
        "min_area_0p5": dict(
            min_area_mm2=0.5,
            source="Minimum area 0.5 mm2 (vendor setting listed by van Ooijen et al. 2005)"),
        "min_3_voxels": dict(
            min_area_mm2=0.0, min_voxels=3,
            source="Minimum 3 pixels regardless of pixel size (vendor setting; "
                   "van Ooijen et al., Eur Radiol 2005;15:102)"),
        "connectivity_4": dict(
            connectivity=4,
            source="4-connected lesions (van Ooijen et al. 2005: about -3% Agatston vs 8)"),
        "strict_threshold": dict(
            threshold_inclusive=False,
            source="Calcium is HU > 130 instead of >= 130 (implementations written as '> 130')"),
        "strict_cutoffs": dict(
            weight_cutoffs_inclusive=False,
            source="Weight steps at peak > 200/300/400 instead of >= (the '199 vs 200' "
                   "disagreement between implementations)"),
        "3d_lesions": dict(
            lesion_dimensionality="3d",
            source="Lesions are 26-connected 3D components (minimum size per 3D lesion); "
                   "each slice fragment scored with its own area and peak"),
        "3d_lesions_peak": dict(
            lesion_dimensionality="3d", weight_from="lesion_3d",
            source="3D lesions; every fragment weighted by the 3D lesion's peak HU"),
        "kvp_adjusted": dict(
            kvp_thresholds="nearest",
            source="kVp-specific threshold and weight cut-offs of Grani et al., Eur Heart J "
                   "Cardiovasc Imaging 2018 (70/80/100/120/135 kVp), nearest tabulated kVp"),
        "slice_thickness_tag": dict(
            thickness_source="slice_thickness",
            source="Normalisation by the nominal slice thickness tag / 3 mm instead of the "
                   "increment (over-counts overlapping reconstructions)"),
        "resample_3mm": dict(
            thickness_source="resample_3mm",
            source="Thin or overlapping slices rebinned to contiguous 3 mm slabs before "
                   "scoring (the Agatston reference geometry)"),
        "no_slice_normalisation": dict(
            slice_normalisation=False,
            source="No increment / 3 mm factor (implementations that ignore slice spacing)"),
        "isotropic_volume": dict(
            volume_method="isotropic",
            source="Volume score after isotropic interpolation (Callister et al., "
                   "Radiology 1998;208:807; van Ooijen et al. 2005 'interpolation')"),
    }
    out = {"standard": std}
    for key, kw in variants.items():
        out[key] = std.replace(name=key, **kw)
    return out


#: Named presets, each reproducing one documented convention (see docs/scoring.md).
PRESETS: dict[str, ScoringPreset] = _make_presets()


def resolve_preset(preset="standard", **overrides) -> ScoringPreset:
    """Turn a preset name or :class:`ScoringPreset` plus overrides into a preset.

    Examples
    --------
    >>> resolve_preset("standard", min_area_mm2=0.5).min_area_mm2
    0.5
    """
    if isinstance(preset, ScoringPreset):
        base = preset
    elif isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(
                f"unknown preset {preset!r}; valid presets are {sorted(PRESETS)} "
                "(or pass a pvcalc.ScoringPreset)")
        base = PRESETS[preset]
    else:
        raise TypeError(
            f"preset must be a preset name (str) or a ScoringPreset, got {type(preset).__name__}")
    if overrides:
        name = base.name if "name" in overrides else f"{base.name}+custom"
        return base.replace(**{"name": name, **overrides})
    return base
