"""pvcalc: coronary artery calcium scoring and partial-volume correction.

Public API (see the docs for each):

- scan model: :func:`make_scan`, :func:`validate_scan`, :func:`scan_spacing_mm`
- I/O: :func:`read_scan`, :func:`write_scan`, :func:`read_labels`
- clinical scoring: :func:`score`, :class:`Calibration`
- statistics: :mod:`pvcalc.stats`
"""

from pvcalc.scan import make_scan, validate_scan, scan_spacing_mm, scan_origin_mm

# --- io (pvcalc.io) ---
from pvcalc.io import read_scan, write_scan, read_labels, ScanFileError
# --- scoring (pvcalc.scoring) ---
from pvcalc.scoring import (score, ScoreResult, ScoringPreset, PRESETS, Calibration,
                             risk_category, KVP_THRESHOLDS_HU, RISK_SCHEMES)
# --- stats (pvcalc.stats) ---
# imported on first use (it pulls in scipy.stats and statsmodels, about 0.5 s), so
# that `pvcalc score` starts fast; `pvcalc.stats` and `from pvcalc import stats` work


def __getattr__(name):
    if name == "stats":
        import importlib

        return importlib.import_module("pvcalc.stats")
    raise AttributeError(f"module 'pvcalc' has no attribute {name!r}")

__version__ = "0.1.0"
