"""Estimates beside the truth: scores of simulated lesions next to their true values.

Simulation studies judge a scoring convention or a partial-volume method by
comparing what it measures in each lesion's region of interest with the
lesion's exact volume and mass from the simulator's truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pvcalc.rois import truth_roi_labels
from pvcalc.scoring import score

#: Truth variables copied into the per-lesion table.
TRUTH_COLUMNS = ("volume_mm3", "mass_mg", "density_mg_cm3", "shape", "radius_mm", "length_mm",
                 "peak_velocity_mm_s")


def score_lesions(scan, truth, *, calibration, preset="standard", margin_mm=2.0,
                  **score_options) -> pd.DataFrame:
    """Clinical scores of every true lesion, inside its own region of interest.

    Parameters
    ----------
    scan : xarray.DataArray
        A simulated scan.
    truth : xarray.Dataset
        Its truth (from the same :func:`phantoms.simulate` call).
    calibration : Calibration
        Mass calibration (e.g. :func:`rod_calibration`).
    preset : str or ScoringPreset, optional
        Scoring convention. Default "standard".
    margin_mm : float, optional
        ROI = the lesion's footprint grown by this margin (see
        :func:`pvcalc.rois.truth_roi_labels`). Default 2 mm.
    **score_options
        Passed to :func:`pvcalc.score`.

    Returns
    -------
    pandas.DataFrame
        One row per true lesion: ``lesion`` (name), the truth columns
        ``true_volume_mm3``, ``true_mass_mg``, ``density_mg_cm3``, shape
        parameters where present, then ``agatston``, ``volume_score_mm3``,
        ``mass_score_mg`` (0 for a missed lesion), ``detected`` (bool) and
        ``c_ha`` (mg HA cm^-3 HU^-1).
    """
    labels = truth_roi_labels(scan, truth, margin_mm=margin_mm)
    result = score(scan, labels=labels, preset=preset, calibration=calibration, **score_options)
    measured = result.by_label.set_index("label")
    n = truth.sizes["lesion"]
    table = pd.DataFrame({"lesion": [str(v) for v in truth["name"].values]})
    for column in TRUTH_COLUMNS:
        if column in truth:
            name = f"true_{column}" if column in ("volume_mm3", "mass_mg") else column
            table[name] = truth[column].values
    label_ids = np.arange(1, n + 1)
    for source, target in (("agatston", "agatston"), ("volume_mm3", "volume_score_mm3"),
                           ("mass_mg", "mass_score_mg")):
        table[target] = measured[source].reindex(label_ids).fillna(0.0).to_numpy(dtype=float)
    table["detected"] = table["agatston"] > 0
    table["c_ha"] = calibration.c_ha_mg_cm3_per_hu
    return table
