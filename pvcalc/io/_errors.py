"""The one exception type for unreadable or inconsistent scan files."""

from __future__ import annotations

import os


class ScanFileError(ValueError):
    """A scan or label file or folder cannot be read as one consistent volume.

    Raised for every problem found in the *content* of a path: no DICOM files,
    several series and none chosen, missing slices, duplicated positions,
    mixed image sizes, tilted or oblique geometry, missing required tags,
    undecodable compressed pixel data, oblique NIfTI affines, labels on the
    wrong grid. The message is a single line that names the path, the problem
    and the fix, so a command-line tool can print ``str(err)`` as it is.

    A path that does not exist raises :class:`FileNotFoundError` instead.

    Examples
    --------
    >>> err = ScanFileError("/data/ct", "no DICOM files found", "point to a DICOM folder")
    >>> str(err)
    '/data/ct: no DICOM files found; point to a DICOM folder'
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, path, problem, fix=None):
        self.path = os.fspath(path) if path is not None else None
        self.problem = problem
        self.fix = fix
        text = problem if self.path is None else f"{self.path}: {problem}"
        if fix:
            text = f"{text}; {fix}"
        super().__init__(" ".join(text.split()))


class ScanFileWarning(UserWarning):
    """A scan was read, but something about its files deserves a look.

    Issued for files in a series folder that were skipped because they are not
    DICOM images (the count is in the scan's ``n_skipped_files`` attribute)
    and for signs of missing slices at the ends of a series (InstanceNumber,
    ImagesInAcquisition). ``read_scan(..., strict=True)`` raises
    :class:`ScanFileError` instead.

    Examples
    --------
    >>> issubclass(ScanFileWarning, UserWarning)
    True
    """


def check_exists(path) -> str:
    """Return ``path`` as a string, or raise FileNotFoundError with a clear message."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"path must be a str or os.PathLike naming a file or folder, "
            f"got {type(path).__name__}") from None
    if not os.path.exists(p):
        parent = os.path.dirname(os.path.abspath(p))
        hint = ("" if os.path.isdir(parent)
                else f" (its folder {parent} does not exist either)")
        raise FileNotFoundError(
            f"{p}: no such file or folder{hint}; check the path (a DICOM series folder, "
            "a DICOM file or a .nii/.nii.gz file)")
    return p
