"""An output folder owned by one run: a lock, a run record and verified installs.

``pvcalc simulate`` keeps its folder contract (``docs/io.md``, "Output folders of
``pvcalc simulate``") with these pieces:

- :func:`locked`: an exclusive, non-blocking ``fcntl.flock`` on ``run.lock``
  inside the folder, held for the whole run; a second run is refused.
- :func:`read_record` / :func:`write_file`: ``run.json``, the run's definition
  and, per complete repeat, the size and SHA-256 of each of its files.
- :func:`scratch`: every file is written inside a fresh temporary folder
  ``.pvcalc-tmp-*`` created in the output folder (``tempfile.mkdtemp``), hashed
  there (:func:`records`) and renamed into place with ``os.replace``
  (:func:`install`), which replaces a symbolic link itself, never its target.
- :func:`remove`: deletes files and symbolic links themselves (never what a
  link points to) and folders only when every file in them has a name the run
  writes; anything else is left and reported.

The helpers live in :mod:`pvcalc.study._folders` (the study result store uses
them too); this module gives them the names and wording of ``pvcalc simulate``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pvcalc.study import _folders
from pvcalc.study._folders import (
    LOCK_FILE,
    TMP_PREFIX,
    FolderError,
    differences,
    install,
    records,
    remove_temporaries,
    scratch,
    write_file,
)

__all__ = ["LOCK_FILE", "RUN_FILE", "TMP_PREFIX", "FolderError", "check_removable",
           "differences", "install", "locked", "read_record", "records", "remove",
           "remove_temporaries", "scratch", "verify", "write_file"]

RUN_FILE = "run.json"
_OWNER = "pvcalc simulate"


def locked(folder: Path):
    """Hold an exclusive lock on ``folder`` (via ``folder/run.lock``) or raise FolderError."""
    return _folders.locked(folder, owner=_OWNER)


def read_record(folder: Path, kind: str):
    """The run record ``folder/run.json`` as a dict, or None when there is none."""
    return _folders.read_record(folder / RUN_FILE, kind, required=("spec", "repeats"))


def verify(folder: Path, files: dict):
    """None when the files match their records, else why not (one phrase)."""
    return _folders.verify(folder, files, record_name=RUN_FILE)


def check_removable(folder: Path, names, inner: re.Pattern) -> list[Path]:
    """Raise FolderError if :func:`remove` would refuse; return the folders it would delete."""
    return _folders.check_removable(folder, names, inner, owner=_OWNER)


def remove(folder: Path, names, inner: re.Pattern) -> None:
    """Delete the entries ``names`` of ``folder``; folders only if all their files match ``inner``.

    Every folder is checked before anything is deleted, so a refusal leaves
    everything in place. Symbolic links are deleted themselves, never their targets.
    """
    _folders.remove(folder, names, inner, owner=_OWNER)
