"""Compiled kernels are cached outside the installed packages, in the per-user cache folder.

numba's default would write ``__pycache__/*.nbi|*.nbc`` beside the sources, inside
the installed package: files pip does not own, which survive an uninstall and
turn the package folder into a namespace package that shadows the next install.
Each test compiles kernels in a fresh subprocess with its own cache folder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import phantoms
import pvcalc

PACKAGE_DIRS = [Path(pvcalc.__file__).parent, Path(phantoms.__file__).parent]

# two tiny kernels, one per package, so that compiling them takes a fraction of a second
COMPILE = """
import json, numpy as np
from phantoms._ssp import ssp_half_support_mm
from pvcalc.scoring._label_kernels import _find
ssp_half_support_mm(3.0, 0)
_find(np.arange(4, dtype=np.int64), 2)
print(json.dumps({d.py_func.__name__: [sum(d.stats.cache_hits.values()),
                                       sum(d.stats.cache_misses.values())]
                  for d in (ssp_half_support_mm, _find)}))
"""


def _cache_files_in_packages():
    """Every numba cache file under the package folders, with its modification time."""
    return {p: p.stat().st_mtime_ns for d in PACKAGE_DIRS for pattern in ("*.nbi", "*.nbc")
            for p in d.rglob(pattern)}


def _run(code, env_update, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(env_update)
    proc = subprocess.run([sys.executable, *args, *(["-c", code] if code else [])],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_kernels_are_cached_in_numba_cache_dir_not_in_the_package(tmp_path):
    cache = tmp_path / "cache"
    before = _cache_files_in_packages()
    first = json.loads(_run(COMPILE, {"NUMBA_CACHE_DIR": str(cache)}).stdout)
    assert _cache_files_in_packages() == before  # nothing new or rewritten in the packages
    names = sorted(p.name for p in cache.rglob("*.nbi"))
    assert any(n.startswith("_ssp.ssp_half_support_mm-") for n in names), names
    assert any(n.startswith("_label_kernels._find-") for n in names), names
    assert all(misses == 1 for hits, misses in first.values()), first  # compiled once
    # a second process loads both kernels from the cache instead of compiling them
    second = json.loads(_run(COMPILE, {"NUMBA_CACHE_DIR": str(cache)}).stdout)
    assert all(hits == 1 and misses == 0 for hits, misses in second.values()), second


def test_default_cache_folder_is_the_per_user_cache(tmp_path):
    before = _cache_files_in_packages()
    _run(COMPILE, {"XDG_CACHE_HOME": str(tmp_path)})
    assert _cache_files_in_packages() == before
    folder = tmp_path / "pvcalc" / "numba"
    assert len(list(folder.rglob("*.nbi"))) == 2
    assert len(list(folder.rglob("*.nbc"))) == 2
    # both packages name the same folder
    code = ("from pvcalc._numba_config import cache_dir as a; "
            "from phantoms._config import cache_dir as b; print(a(), b())")
    assert _run(code, {"XDG_CACHE_HOME": str(tmp_path)}).stdout.split() == [str(folder)] * 2


def test_other_libraries_keep_numbas_own_cache_location(tmp_path):
    # a cached function outside pvcalc and phantoms still goes to numba's __pycache__
    module = tmp_path / "user_module.py"
    module.write_text("import numba\n\n@numba.njit(cache=True)\ndef f(x):\n    return x + 1\n")
    code = "import pvcalc.scoring, phantoms._config, user_module; user_module.f(1)"
    _run(code, {"PYTHONPATH": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert [p.name for p in (tmp_path / "__pycache__").glob("*.nbi")] == ["user_module.f-3.py"
                                                                          f"{sys.version_info[0]}"
                                                                          f"{sys.version_info[1]}"
                                                                          ".nbi"]
    assert not list((tmp_path / "xdg").rglob("user_module*"))


def test_cli_says_once_that_it_compiles_and_only_on_a_cold_cache(tmp_path):
    data = np.full((4, 32, 32), 40.0, dtype=np.float32)
    data[1:3, 8:14, 8:14] = 400.0
    path = tmp_path / "scan.nii.gz"
    pvcalc.write_scan(pvcalc.make_scan(data, (3.0, 0.5, 0.5)), path)
    cache = tmp_path / "cache"
    env = {"NUMBA_CACHE_DIR": str(cache)}
    before = _cache_files_in_packages()
    cold = _run(None, env, "-m", "pvcalc.cli", "score", str(path))
    notices = [line for line in cold.stderr.splitlines() if "compiling" in line]
    assert len(notices) == 1, cold.stderr
    assert notices[0].startswith("pvcalc: compiling numerical kernels for first use")
    assert str(cache) in notices[0]
    assert "Agatston score" in cold.stdout
    assert _cache_files_in_packages() == before
    assert list(cache.rglob("_label_kernels.*.nbi"))
    warm = _run(None, env, "-m", "pvcalc.cli", "score", str(path))
    assert "compiling" not in warm.stderr
    assert warm.stdout == cold.stdout


def test_serial_and_parallel_versions_of_one_body_have_their_own_cache_entries(tmp_path):
    # numba names cache files by qualified name and first line, not by the
    # parallel flag: sharing them would let the parallel dispatcher load the
    # serial machine code (or the reverse) from the cache
    code = """
import numpy as np
from pvcalc.scoring._label_kernels import _count_runs_parallel, _count_runs_serial
vol = np.zeros((2, 3, 4), np.float32); lab = np.zeros((1, 1, 1), np.int32)
a = _count_runs_serial(vol, lab, False, 130.0); b = _count_runs_parallel(vol, lab, False, 130.0)
assert (np.asarray(a) == np.asarray(b)).all()
"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    names = sorted(p.name for p in tmp_path.rglob("*_count_runs*.nbi"))
    assert len(names) == 2, names
    assert any("_count_runs_serial" in n for n in names)
    assert any("_count_runs_parallel" in n for n in names)
