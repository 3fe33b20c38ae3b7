"""Score simulated phantoms lesion by lesion, beside their truth.

The analysis of a phantom scan, simulated or real, needs two things beyond
clinical scoring: a mass calibration from the phantom's own water and
hydroxyapatite rods, and a region of interest per lesion so that each score is
attributed to the right insert and a missed insert reads 0 rather than
vanishing from the table. These functions do both for scans made by
:mod:`phantoms`, whose truth tells where each lesion and rod is.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from pvcalc.lesions import truth_roi_labels
from pvcalc.scoring import Calibration, score

#: Calibration ROIs are the rod's cross-section shrunk by this margin (mm), which
#: keeps the blurred rod edge out of the mean.
ROD_ROI_MARGIN_MM = 2.0

#: Truth variables copied into the per-lesion table.
TRUTH_COLUMNS = ("volume_mm3", "mass_mg", "density_mg_cm3", "shape", "radius_mm", "length_mm",
                 "peak_velocity_mm_s")


def rod_calibration(scan, phantom, *, margin_mm=ROD_ROI_MARGIN_MM) -> Calibration:
    """Mass calibration of a simulated scan from its phantom's water and HA rods.

    Parameters
    ----------
    scan : xarray.DataArray
        A scan made by :func:`phantoms.simulate` or :func:`phantoms.repeat`. The
        rods run along z through the whole scan; their centres in this scan are
        the attributes ``rod_<i>_centre_y_mm`` / ``_x_mm`` (repositioning
        included), else the phantom's centres moved by ``translation_y_mm`` /
        ``translation_x_mm`` (0 if absent).
    phantom : phantoms.Phantom
        The phantom, with one rod of density 0 (water) and one of density > 0 (HA).
    margin_mm : float, optional
        ROI radius = rod radius - margin. Default 2 mm.

    Returns
    -------
    Calibration
        c_HA = rho_HA / (mean HU of the HA rod - mean HU of the water rod).
    """
    water = [i for i, r in enumerate(phantom.rods) if r.density_mg_cm3 == 0]
    ha = [i for i, r in enumerate(phantom.rods) if r.density_mg_cm3 > 0]
    if not water or not ha:
        raise ValueError(
            f"phantom {phantom.name!r} needs a water rod (density 0) and an HA rod (density > 0) "
            "for a rod calibration; give a Calibration(c_ha_mg_cm3_per_hu=...) instead")

    def roi(index):
        rod = phantom.rods[index]
        radius = rod.radius_mm - margin_mm
        if radius <= 0:
            raise ValueError(f"rod of radius {rod.radius_mm} mm is too thin for a margin of "
                             f"{margin_mm} mm; use a smaller margin_mm")
        key = f"rod_{index}_centre_%s_mm"
        if key % "y" in scan.attrs:  # the rod's position in this scan, repositioning included
            centre = (float(scan.attrs[key % "y"]), float(scan.attrs[key % "x"]))
        else:
            centre = (rod.centre_yx_mm[0] + float(scan.attrs.get("translation_y_mm", 0.0)),
                      rod.centre_yx_mm[1] + float(scan.attrs.get("translation_x_mm", 0.0)))
        return centre, radius

    return Calibration.from_rods(scan, roi(water[0]), roi(ha[0]),
                                 ha_density_mg_cm3=phantom.rods[ha[0]].density_mg_cm3)


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
        :func:`pvcalc.lesions.truth_roi_labels`). Default 2 mm.
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


def qrm_reference_scores(body=None, *, repeats_only=True) -> pd.DataFrame:
    """Clinical scores measured on the physical QRM insert phantom by real scanners.

    Parameters
    ----------
    body : {"small", "large"}, optional
        Keep one body size (the large body wears the extension ring). Default both.
    repeats_only : bool, optional
        Keep only the vendors' five repeated scans of each body size (120 kVp;
        3 mm slices, 2.5 mm on the GE scanner), leaving out the Siemens
        protocol variants. Default True.

    Returns
    -------
    pandas.DataFrame
        One row per scan x insert of ``pvcalc/data/qrm_cci_clinical_scores.csv``
        with ``insert`` in pvcalc's lower-case spelling (``large_hd``...) and a
        ``mass_ratio`` column (mass score / true mass). The Philips scans have no
        volume scores in the source (recorded there as 0 for every insert); they
        are NaN here, so means of the volume score skip them.

    Notes
    -----
    Scores computed by van Praagh et al. with the FQM phantom-analysis method
    (Med Phys 2021, doi:10.1002/mp.14912) on scans of four vendors' scanners;
    see ``pvcalc/data/README.md``.
    """
    with resources.files("pvcalc.data").joinpath("qrm_cci_clinical_scores.csv").open() as f:
        table = pd.read_csv(f)
    if body is not None:
        if body not in ("small", "large"):
            raise ValueError(f"body must be 'small' or 'large', got {body!r}")
        table = table[table["body"] == body]
    if repeats_only:
        table = table[table["body"].isin(["small", "large"])]
    # A scanner whose volume scores are all 0 while its Agatston scores are not has no
    # volume scores in the source tables (the Philips rows): a scored lesion always has
    # a volume. Those zeros are missing values, not measurements.
    scored = table.groupby("scanner")["agatston"].transform("max") > 0
    no_volume = table.groupby("scanner")["volume_score_mm3"].transform("max") == 0
    table = table.assign(volume_score_mm3=table["volume_score_mm3"].where(~(scored & no_volume)))
    return table.assign(insert=table["insert"].str.lower(),
                        mass_ratio=table["mass_score_mg"] / table["true_mass_mg"]
                        ).reset_index(drop=True)
