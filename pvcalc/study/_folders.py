"""An output folder owned by one run: a lock, a run record and verified installs.

Shared by the two commands that own a folder, ``pvcalc simulate`` (its contract:
``docs/io.md``, "Output folders of ``pvcalc simulate``"; the command-line names
are in ``pvcalc/cli/_run_folder.py``) and ``pvcalc study run`` (the result
store, :mod:`pvcalc.study.store`):

- :func:`locked`: an exclusive, non-blocking ``fcntl.flock`` on ``run.lock``
  inside the folder, held for the whole run; a second run is refused.
- :func:`read_record` / :func:`write_file`: the run's JSON record (its
  definition and what it has completed).
- :func:`scratch`: every file is written inside a fresh temporary folder
  ``.pvcalc-tmp-*`` created in the output folder (``tempfile.mkdtemp``), hashed
  there (:func:`records`) and renamed into place with ``os.replace``
  (:func:`install`), which replaces a symbolic link itself, never its target.
- :func:`remove`: deletes files and symbolic links themselves (never what a
  link points to) and folders only when every file in them has a name the run
  writes; anything else is left and reported.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = ["LOCK_FILE", "TMP_PREFIX", "FolderError", "check_removable", "differences",
           "file_record", "fsync_dir", "install", "locked", "read_record", "records", "remove",
           "remove_temporaries", "scratch", "verify", "write_file"]

LOCK_FILE = "run.lock"
TMP_PREFIX = ".pvcalc-tmp-"


class FolderError(OSError):
    """The output folder cannot be used as it is (held by another run, foreign files, ...)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


@contextlib.contextmanager
def locked(folder: Path, *, owner: str):
    """Hold an exclusive lock on ``folder`` (via ``folder/run.lock``) or raise FolderError.

    ``owner`` names the command in the refusal ("another <owner> run holds ...").
    """
    path = folder / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FolderError(f"{path} is a symbolic link; the lock file must be a plain file "
                              "inside the folder: remove the link and run again") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FolderError(f"{path} is not a plain file; remove it and run again")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderError(
                f"another {owner} run holds {folder} (it has the lock on {path}); wait "
                "for it to finish, or choose another --out folder") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def remove_temporaries(folder: Path) -> list[str]:
    """Delete the ``.pvcalc-tmp-*`` leftovers of interrupted runs; return their names."""
    gone = []
    for entry in os.scandir(folder):
        if entry.name.startswith(TMP_PREFIX):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)  # removes links inside, never follows them
            else:
                os.unlink(entry.path)
            gone.append(entry.name)
    return gone


@contextlib.contextmanager
def scratch(folder: Path):
    """A fresh temporary folder inside ``folder``, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=folder))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_record(path: Path, kind: str, *, required=("spec",)):
    """The JSON run record at ``path`` as a dict, or None when there is none.

    Raises FolderError when the file is not a plain file, is unreadable, or is
    not a dict with ``kind`` = ``kind`` and a dict under every key of ``required``.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    fix = "pass --force to replace the folder's run outputs, or choose another --out folder"
    if not stat.S_ISREG(mode):
        raise FolderError(f"{path} is not a plain file, so the run it describes is unknown; {fix}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FolderError(f"{path} cannot be read ({exc}); {fix}") from None
    if not (isinstance(record, dict) and record.get("kind") == kind
            and all(isinstance(record.get(key), dict) for key in required)):
        raise FolderError(f"{path} is not a {kind} record; {fix}")
    return record


def write_file(tmp: Path, folder: Path, name: str, data: bytes) -> None:
    """Write ``data`` to ``tmp/name``, flush it to disk, and rename it to ``folder/name``."""
    path = tmp / name
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(path, folder / name)
    fsync_dir(folder)


def fsync_dir(folder) -> None:
    """Flush a folder's entries (renames, new files) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_record(folder: Path, rel: str, *, sync=False) -> dict:
    """Size and SHA-256 of ``folder/rel``, refusing symbolic links on the way."""
    parts = rel.split("/")
    for k in range(1, len(parts)):
        if not stat.S_ISDIR(os.lstat(folder.joinpath(*parts[:k])).st_mode):
            raise NotADirectoryError(f"{'/'.join(parts[:k])} is not a folder")
    fd = os.open(folder.joinpath(*parts), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise IsADirectoryError(f"{rel} is not a plain file")
        if sync:
            os.fsync(fh.fileno())
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
        return {"size": os.fstat(fh.fileno()).st_size, "sha256": digest}


def records(tmp: Path, names) -> dict:
    """{relative path: {size, sha256}} of every file in the entries ``names`` of ``tmp``.

    Each file is flushed to disk first, so that a record never describes data
    still in the page cache only.
    """
    out = {}
    for name in sorted(names):
        path = tmp / name
        if path.is_dir() and not path.is_symlink():
            for sub in sorted(os.listdir(path)):
                out[f"{name}/{sub}"] = file_record(tmp, f"{name}/{sub}", sync=True)
            fsync_dir(path)
        else:
            out[name] = file_record(tmp, name, sync=True)
    return out


def verify(folder: Path, files: dict, *, record_name: str):
    """None when the files match their records, else why not (one phrase).

    ``record_name`` names the record in the phrase (``"run.json"``).
    """
    if not isinstance(files, dict) or not files:
        return f"{record_name} lists no files for it"
    for rel, want in sorted(files.items()):
        try:
            got = file_record(folder, rel)
        except FileNotFoundError:
            return f"{rel} is missing"
        except OSError:
            return f"{rel} is not a plain file inside the folder"
        if not isinstance(want, dict) or got["size"] != want.get("size"):
            return (f"{rel} has {got['size']} bytes, {record_name} records "
                    f"{want.get('size') if isinstance(want, dict) else want}")
        if got["sha256"] != want.get("sha256"):
            return f"the SHA-256 of {rel} differs from {record_name}"
    for sub in sorted({rel.split("/")[0] for rel in files if "/" in rel}):
        extra = sorted(set(os.listdir(folder / sub)) - {rel.split("/", 1)[1] for rel in files
                                                        if rel.startswith(sub + "/")})
        if extra:
            return f"{sub}/ also holds {', '.join(extra[:3])}"
    return None


def check_removable(folder: Path, names, inner: re.Pattern, *, owner: str) -> list[Path]:
    """Raise FolderError if :func:`remove` would refuse; return the folders it would delete."""
    folders = []
    for name in names:
        path = folder / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(mode):
            foreign = sorted(e.name for e in os.scandir(path)
                             if not inner.fullmatch(e.name) or e.is_dir(follow_symlinks=False))
            if foreign:
                raise FolderError(
                    f"{path} holds files {owner} did not write ({', '.join(foreign[:3])}"
                    f"{', ...' if len(foreign) > 3 else ''}); move them out of the folder and "
                    "run again")
            folders.append(path)
    return folders


def remove(folder: Path, names, inner: re.Pattern, *, owner: str) -> None:
    """Delete the entries ``names`` of ``folder``; folders only if all their files match ``inner``.

    Every folder is checked before anything is deleted, so a refusal leaves
    everything in place. Symbolic links are deleted themselves, never their targets.
    """
    folders = check_removable(folder, names, inner, owner=owner)
    for name in names:
        path = folder / name
        if path in folders:
            for entry in os.scandir(path):
                os.unlink(entry.path)
            os.rmdir(path)
        elif os.path.lexists(path):
            os.unlink(path)


def install(tmp: Path, folder: Path, names) -> None:
    """Rename the entries ``names`` of ``tmp`` into ``folder`` (targets already removed)."""
    for name in sorted(names):
        os.replace(tmp / name, folder / name)
    fsync_dir(folder)


def differences(old: dict, new: dict, prefix="") -> list[str]:
    """``"key <old> there, <new> here"`` for every (nested, dotted) key whose values differ.

    Keys come in the order of ``new``, then those only in ``old``.

    Examples
    --------
    >>> differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}})
    ['b.c 2 there, 3 here']
    """
    out = []
    for key in list(new) + [k for k in old if k not in new]:
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {_show(a)} there, {_show(b)} here")
    return out


_ABSENT = object()


def _show(value) -> str:
    return "(absent)" if value is _ABSENT else repr(value)
