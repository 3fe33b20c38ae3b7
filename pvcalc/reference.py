"""What real scanners measured on the physical QRM cardiac calcification insert.

The reference table ``pvcalc/data/qrm_cci_clinical_scores.csv`` holds the
clinical scores of four vendors' scanners on the physical phantom; simulated
scans of the replica (:func:`phantoms.cci_phantom`) are compared with it.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd


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
