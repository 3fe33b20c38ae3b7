"""One place for the numba flags of the simulator's kernels, and for where their cache goes.

The flags and the cache locator are those of ``pvcalc/_numba_config.py`` (see its
docstring for why the cache lives outside the package); ``phantoms`` never
imports ``pvcalc``, so this module has its own copy. Kernels of this package are
cached in :func:`cache_dir`: ``$NUMBA_CACHE_DIR`` if it is set, else
``$XDG_CACHE_HOME/pvcalc/numba`` (by default ``~/.cache/pvcalc/numba``), never
in ``__pycache__`` beside the installed sources.
"""

import getpass
import os
import sys
import tempfile
from pathlib import Path

from numba.core import caching, config

JIT = dict(cache=True, nogil=True, error_model="numpy")
PARALLEL_JIT = dict(JIT, parallel=True)

_BaseLocator = (getattr(caching, "UserProvidedCacheLocator", None)
                or caching._UserProvidedCacheLocator)
_CacheImpl = getattr(caching, "CacheImpl", None) or caching._CacheImpl


def cache_dir() -> Path:
    """The folder of the compiled-kernel cache (it may not exist yet)."""
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


class _PhantomsCacheLocator(_OutOfTreeLocator):
    package_dir = os.path.dirname(os.path.abspath(__file__))


_register(_PhantomsCacheLocator)
