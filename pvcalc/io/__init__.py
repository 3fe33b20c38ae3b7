"""Reading and writing scans and label images (DICOM series, NIfTI, numpy).

Public names: :func:`read_scan`, :func:`write_scan`, :func:`read_labels`,
:class:`ScanFileError`, :class:`ScanFileWarning`, :data:`CORONARY_LABEL_NAMES`.
See ``docs/io.md`` for the coordinate conventions and the checks made on every
file.
"""

from pvcalc.io._api import read_scan, write_scan
from pvcalc.io._errors import ScanFileError, ScanFileWarning
from pvcalc.io._labels import CORONARY_LABEL_NAMES, read_labels

__all__ = ["read_scan", "write_scan", "read_labels", "ScanFileError", "ScanFileWarning",
           "CORONARY_LABEL_NAMES"]
