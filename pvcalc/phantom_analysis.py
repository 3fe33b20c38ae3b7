"""Former home of the phantom-analysis helpers, kept as re-exports.

Use :mod:`pvcalc.calibration` (:func:`rod_calibration`), :mod:`pvcalc.evaluation`
(:func:`score_lesions`) and :mod:`pvcalc.reference` (:func:`qrm_reference_scores`).
"""

from pvcalc.calibration import ROD_ROI_MARGIN_MM, rod_calibration
from pvcalc.evaluation import TRUTH_COLUMNS, score_lesions
from pvcalc.reference import qrm_reference_scores

__all__ = ["rod_calibration", "score_lesions", "qrm_reference_scores", "ROD_ROI_MARGIN_MM",
           "TRUTH_COLUMNS"]
