"""Clinical coronary calcium scoring: Agatston, volume and mass scores.

Public names: :func:`score`, :class:`ScoreResult`, :class:`ScoreTotal`,
:class:`ScoringPreset`, :data:`PRESETS`, :data:`KVP_THRESHOLDS_HU`,
:class:`Calibration`, :func:`risk_category`, :data:`RISK_SCHEMES`.
See docs/scoring.md for the conventions, presets and column glossary.
"""

from pvcalc.calibration import Calibration
from pvcalc.scoring._agatston import score
from pvcalc.scoring._presets import KVP_THRESHOLDS_HU, PRESETS, ScoringPreset
from pvcalc.scoring._result import ScoreResult, ScoreTotal
from pvcalc.scoring._risk import RISK_SCHEMES, risk_category

__all__ = ["score", "ScoreResult", "ScoreTotal", "ScoringPreset", "PRESETS",
           "KVP_THRESHOLDS_HU", "Calibration", "risk_category", "RISK_SCHEMES"]
