"""One place for the numba flags used by pvcalc's kernels, and for where their cache goes.

``numba.njit`` already implies nopython mode. ``cache=True`` stores compiled
kernels on disk so that the second process starts in well under a second;
``error_model="numpy"`` lets float division vectorise; ``fastmath`` is off so
results match the reference loops bit for bit where the tests require it.

Where the cache goes
--------------------
numba's default puts the cache files in ``__pycache__`` beside the source, that
is inside the installed package. Files that pip did not install survive
``pip uninstall`` and turn the emptied package folders into namespace packages
that shadow the next install, and a read-only install cannot cache at all. So
this module registers a cache locator, for the kernels of this package only,
that writes to :func:`cache_dir`: ``$NUMBA_CACHE_DIR`` if it is set, else the
per-user cache folder (``$XDG_CACHE_HOME/pvcalc/numba``, by default
``~/.cache/pvcalc/numba``; ``~/Library/Caches/pvcalc/numba`` on macOS,
``%LOCALAPPDATA%\\pvcalc\\numba`` on Windows), and, if that is not writable,
``<temp dir>/pvcalc-numba-<user>``. numba picks the locator of a function when
it is decorated (``numba.core.caching.CacheImpl``, the first of its
``_locator_classes`` whose ``from_function`` accepts the file); ours accepts
only files inside this package, so the functions of other libraries keep
numba's own choice. An explicit ``NUMBA_CACHE_LOCATOR_CLASSES`` replaces
numba's list, ours included, and is respected.

``phantoms/_config.py`` holds the same locator for the simulator's kernels
(``phantoms`` never imports ``pvcalc``); both write to the same folder.
"""

import getpass
import os
import sys
import tempfile
from pathlib import Path

from numba.core import caching, config

JIT = dict(cache=True, nogil=True, error_model="numpy")
PARALLEL_JIT = dict(JIT, parallel=True)

#: numba's locator that writes to ``NUMBA_CACHE_DIR`` (renamed without the
#: underscore in numba 0.63); ours reuses its source stamp and disambiguator.
_BaseLocator = (getattr(caching, "UserProvidedCacheLocator", None)
                or caching._UserProvidedCacheLocator)
#: numba's locator base list (``_CacheImpl`` before numba 0.63).
_CacheImpl = getattr(caching, "CacheImpl", None) or caching._CacheImpl


def cache_dir() -> Path:
    """The folder of the compiled-kernel cache (it may not exist yet).

    ``$NUMBA_CACHE_DIR`` if set, else ``pvcalc/numba`` in the per-user cache
    folder. Deleting the folder is safe: kernels are compiled again on first use.
    """
    if config.CACHE_DIR:
        return Path(config.CACHE_DIR)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~/AppData/Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "pvcalc" / "numba"


def _fallback_cache_dir() -> Path:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name (a container without a passwd entry)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"pvcalc-numba-{user}"


def used_cache_dir() -> Path | None:
    """The folder kernels are cached in: :func:`cache_dir` if it can be written, else the
    fallback in the temporary folder; ``None`` if neither can."""
    for root in (cache_dir(), _fallback_cache_dir()):
        try:
            root.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=root).close()
        except OSError:
            continue
        return root
    return None


class _OutOfTreeLocator(_BaseLocator):
    """numba cache locator for the kernels of one package, outside the package folder."""

    #: the package folder whose kernels this locator takes (set by each subclass)
    package_dir = ""

    def __init__(self, py_func, py_file, root=None):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        # one subfolder per source folder, named like numba's NUMBA_CACHE_DIR layout
        self._cache_path = os.path.join(str(root), self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        path = os.path.abspath(py_file)
        if not (os.path.exists(path) and path.startswith(cls.package_dir + os.sep)):
            return None
        for root in (cache_dir(), _fallback_cache_dir()):
            locator = cls(py_func, path, root)
            try:
                locator.ensure_cache_path()
            except OSError:
                continue
            return locator
        return None


def _register(locator) -> None:
    """Put ``locator`` first in numba's locator list (once per package folder)."""
    classes = _CacheImpl._locator_classes
    if not any(getattr(c, "package_dir", None) == locator.package_dir for c in classes):
        _CacheImpl._locator_classes = [locator, *classes]


class _PvcalcCacheLocator(_OutOfTreeLocator):
    package_dir = os.path.dirname(os.path.abspath(__file__))


_register(_PvcalcCacheLocator)


def compile_serial_and_parallel(func):
    """Two dispatchers of one kernel body: ``(serial, parallel)``.

    ``numba.prange`` is a plain ``range`` without ``parallel=True``, so one body
    serves both. numba names a function's cache files by its qualified name and
    first line, not by its flags; compiled from the same function object the
    two versions would share cache entries, and a process could load the serial
    machine code for the parallel dispatcher (or the reverse). Each version
    therefore compiles its own copy of the function, with its own name.
    """
    import types

    import numba

    def renamed(suffix):
        copy = types.FunctionType(func.__code__, func.__globals__, func.__name__ + suffix,
                                  func.__defaults__, func.__closure__)
        copy.__qualname__ = func.__qualname__ + suffix
        copy.__doc__ = func.__doc__
        return copy

    return (numba.njit(**JIT)(renamed("_serial")),
            numba.njit(**PARALLEL_JIT)(renamed("_parallel")))
