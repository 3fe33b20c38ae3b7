"""Result objects returned by :func:`pvcalc.score`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

_NO_MASS = ("no mass score: score() was called without a calibration; pass "
            "calibration=pvcalc.Calibration(...) or Calibration.from_rods(...)")


class ScoreTotal:
    """Whole-scan totals of a :class:`ScoreResult`.

    Attributes
    ----------
    agatston : float
        Total Agatston score (dimensionless).
    volume_mm3 : float
        Total volume score in mm3.
    mass_mg : float
        Total mass score in mg HA; raises ``ValueError`` when the scan was
        scored without a calibration (mass is never a silent default).
    volume_iso_mm3 : float or None
        Isotropically interpolated volume, only for ``volume_method="isotropic"``.
    n_lesions : int
        Number of scored rows (2D lesions / slice fragments).
    n_lesions_3d : int
        Number of distinct 3D lesions among them.
    risk_category : str
        Category of ``agatston`` in the scheme ``risk_scheme``.
    """

    __slots__ = ("agatston", "volume_mm3", "_mass_mg", "volume_iso_mm3", "n_lesions",
                 "n_lesions_3d", "risk_category", "risk_scheme")

    def __init__(self, *, agatston, volume_mm3, mass_mg, volume_iso_mm3, n_lesions,
                 n_lesions_3d, risk_category, risk_scheme):
        self.agatston = float(agatston)
        self.volume_mm3 = float(volume_mm3)
        self._mass_mg = None if mass_mg is None else float(mass_mg)
        self.volume_iso_mm3 = None if volume_iso_mm3 is None else float(volume_iso_mm3)
        self.n_lesions = int(n_lesions)
        self.n_lesions_3d = int(n_lesions_3d)
        self.risk_category = risk_category
        self.risk_scheme = risk_scheme

    @property
    def has_mass(self) -> bool:
        """True when a calibration was given, so ``mass_mg`` exists."""
        return self._mass_mg is not None

    @property
    def mass_mg(self) -> float:
        if self._mass_mg is None:
            raise ValueError(_NO_MASS)
        return self._mass_mg

    def to_dict(self) -> dict:
        """JSON-friendly dict; ``mass_mg`` and ``volume_iso_mm3`` only when computed."""
        d = {"agatston": self.agatston, "volume_mm3": self.volume_mm3}
        if self.has_mass:
            d["mass_mg"] = self._mass_mg
        if self.volume_iso_mm3 is not None:
            d["volume_iso_mm3"] = self.volume_iso_mm3
        d.update(n_lesions=self.n_lesions, n_lesions_3d=self.n_lesions_3d,
                 risk_category=self.risk_category, risk_scheme=self.risk_scheme)
        return d

    def __repr__(self):
        parts = [f"agatston={self.agatston:.2f}", f"volume_mm3={self.volume_mm3:.2f}"]
        if self.has_mass:
            parts.append(f"mass_mg={self._mass_mg:.3f}")
        parts.append(f"risk_category={self.risk_category!r}")
        return "ScoreTotal(" + ", ".join(parts) + ")"


class ScoreResult:
    """Clinical calcium scores of one scan.

    Attributes
    ----------
    lesions : pandas.DataFrame
        One row per scored 2D lesion (a connected component within one axial
        slice), with ``lesion_3d`` linking rows that touch across slices.
        Columns are described in docs/scoring.md.
    by_label : pandas.DataFrame
        One row per label (one row with label 0 when no labels were given).
    lesions_3d : pandas.DataFrame
        One row per 3D lesion (property; ``lesions`` grouped by ``lesion_3d``).
    total : ScoreTotal
        Whole-scan totals and risk category.
    preset : ScoringPreset
        The conventions used (after overrides).
    threshold_hu : float
        Threshold applied (after kVp adjustment).
    weight_cutoffs_hu : tuple of float
        Weight cut-offs applied (after kVp adjustment).
    slice_factor : float
        Multiplier applied to area x weight (slice normalisation).
    calibration : Calibration or None
    """

    def __init__(self, *, lesions, by_label, total, preset, threshold_hu, weight_cutoffs_hu,
                 slice_factor, spacing_mm, calibration):
        self.lesions = lesions
        self.by_label = by_label
        self.total = total
        self.preset = preset
        self.threshold_hu = threshold_hu
        self.weight_cutoffs_hu = weight_cutoffs_hu
        self.slice_factor = slice_factor
        self.spacing_mm = spacing_mm
        self.calibration = calibration

    @property
    def lesions_3d(self) -> pd.DataFrame:
        """One row per 3D lesion: the rows of ``lesions`` aggregated by ``lesion_3d``.

        Columns: ``lesion_3d``, ``label``, ``n_slices``, ``first_slice_index``,
        ``last_slice_index``, ``n_voxels``, ``peak_hu``, ``agatston``,
        ``volume_mm3`` (and ``volume_iso_mm3`` / ``mass_mg`` when computed),
        ``centroid_z_mm``/``_y_mm``/``_x_mm`` (voxel-count weighted). Only
        scored rows contribute, so a 3D lesion's fragments that were below the
        minimum size (2D presets) are not in its sums.
        """
        df = self.lesions
        g = df.groupby("lesion_3d", sort=True)
        out = pd.DataFrame({
            "lesion_3d": np.asarray(list(g.groups.keys()), dtype=np.int64),
            "label": g["label"].first().to_numpy(),
            "n_slices": g["slice_index"].nunique().to_numpy(),
            "first_slice_index": g["slice_index"].min().to_numpy(),
            "last_slice_index": g["slice_index"].max().to_numpy(),
            "n_voxels": g["n_voxels"].sum().to_numpy(),
            "peak_hu": g["peak_hu"].max().to_numpy(),
        }) if len(df) else pd.DataFrame({c: np.zeros(0, dtype=np.int64) for c in (
            "lesion_3d", "label", "n_slices", "first_slice_index", "last_slice_index",
            "n_voxels")} | {"peak_hu": np.zeros(0)})
        for col in ("agatston", "volume_mm3", "volume_iso_mm3", "mass_mg"):
            if col in df.columns:
                out[col] = g[col].sum().to_numpy() if len(df) else np.zeros(0)
        for ax in "zyx":
            col = f"centroid_{ax}_mm"
            w = df[col] * df["n_voxels"]
            out[col] = (w.groupby(df["lesion_3d"]).sum().to_numpy() / out["n_voxels"].to_numpy()
                        if len(df) else np.zeros(0))
        return out

    def to_dict(self) -> dict:
        """JSON-serialisable dict: settings, total, by_label and lesions records."""
        return {
            "preset": self.preset.to_dict(),
            "threshold_hu": self.threshold_hu,
            "weight_cutoffs_hu": list(self.weight_cutoffs_hu),
            "slice_factor": self.slice_factor,
            "spacing_mm": list(self.spacing_mm),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "total": self.total.to_dict(),
            "by_label": _records(self.by_label),
            "lesions": _records(self.lesions),
        }

    def __repr__(self):
        t = self.total
        mass = f", mass {t.mass_mg:.3f} mg" if t.has_mass else ", mass n/a (no calibration)"
        n_slices = int(self.lesions["slice_index"].nunique()) if len(self.lesions) else 0
        return (f"<ScoreResult preset={self.preset.name!r} threshold={self.threshold_hu:g} HU: "
                f"{t.n_lesions} lesion(s) in {n_slices} slice(s) ({t.n_lesions_3d} in 3D), "
                f"Agatston {t.agatston:.2f}, volume {t.volume_mm3:.2f} mm3{mass}, "
                f"risk {t.risk_category!r}>")


def _records(df: pd.DataFrame) -> list:
    out = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, (np.integer,)):
                v = int(v)
            elif isinstance(v, (np.floating, float)):
                v = None if math.isnan(v) else float(v)
            elif isinstance(v, np.bool_):
                v = bool(v)
            clean[k] = v
        out.append(clean)
    return out
