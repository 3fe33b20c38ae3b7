"""pvcalc: coronary artery calcium scoring and partial-volume correction.

Public API (see the docs for each):

- scan model: :func:`make_scan`, :func:`validate_scan`, :func:`scan_spacing_mm`
- I/O: :func:`read_scan`, :func:`write_scan`, :func:`read_labels`
- clinical scoring: :func:`score`, :class:`Calibration`
- partial-volume methods: :func:`quantify` (:mod:`pvcalc.methods`)
- the real QRM insert phantom: :func:`locate_cci` (:mod:`pvcalc.qrm`)
- a real scanner's twin: :func:`pvcalc.twin.measure_protocol`, :func:`pvcalc.twin.simulate_twin`
- statistics: :mod:`pvcalc.stats`
"""

# Every public name is imported on first use (PEP 562), so that `import pvcalc` and
# `pvcalc --help` stay fast: the numerical stack (numpy, xarray, numba) and
# pvcalc.stats (scipy.stats, statsmodels) load only when a name is used.
_LAZY = {
    # scan model (pvcalc.scan)
    "make_scan": "pvcalc.scan", "validate_scan": "pvcalc.scan",
    "scan_spacing_mm": "pvcalc.scan", "scan_origin_mm": "pvcalc.scan",
    # io (pvcalc.io)
    "read_scan": "pvcalc.io", "write_scan": "pvcalc.io", "read_labels": "pvcalc.io",
    "ScanFileError": "pvcalc.io",
    # scoring (pvcalc.scoring)
    "score": "pvcalc.scoring", "ScoreResult": "pvcalc.scoring",
    "ScoringPreset": "pvcalc.scoring", "PRESETS": "pvcalc.scoring",
    "Calibration": "pvcalc.scoring", "risk_category": "pvcalc.scoring",
    "KVP_THRESHOLDS_HU": "pvcalc.scoring", "RISK_SCHEMES": "pvcalc.scoring",
    # partial-volume methods (pvcalc.methods)
    "quantify": "pvcalc.methods",
    # the QRM calcification insert in a scan (pvcalc.qrm)
    "locate_cci": "pvcalc.qrm",
}
#: The public modules, in the order the data flows (docs/make_api.py follows it).
_MODULES = ("scan", "io", "rois", "calibration", "qrm", "scoring", "methods", "evaluation",
            "twin", "reference", "stats")
#: Also attributes, not part of the Python API: the command line (``pvcalc.cli``) and the
#: former home of the phantom helpers (re-exports).
_SUBMODULES = (*_MODULES, "cli", "phantom_analysis")

__all__ = [*_MODULES, *_LAZY]


def __getattr__(name):
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"pvcalc.{name}")
    raise AttributeError(f"module 'pvcalc' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


__version__ = "0.1.0"
