"""Benchmark: pvcalc.score (standard preset) vs a per-slice scipy.ndimage.label loop.

Run: ``python benchmarks/bench_scoring.py`` (``--quick`` for fewer repeats).

Scan: float32 64 x 512 x 512, 0.4 x 0.4 x 3 mm voxels, 40 HU body with
Gaussian noise (SD 20 HU), 40 spherical lesions of 0.6-3 mm radius at
200-900 HU. Both implementations compute the standard Agatston score
(>= 130 HU, 8-connected 2D components, area >= 1 mm2, peak-HU weights); the
script checks that they agree before timing. The baseline is the straightforward
loop a user would write: threshold, ``ndimage.label`` per slice, then
``ndimage.sum``/``ndimage.maximum`` for area and peak.
"""

import argparse
import os
import time

import numpy as np
from _timing import median_time
from scipy import ndimage

import pvcalc


def median_seconds(fn, repeats):
    return median_time(fn, repeats)[0]


def make_volume(seed=0, shape=(64, 512, 512), n_lesions=40):
    rng = np.random.default_rng(seed)
    vol = rng.normal(40.0, 20.0, size=shape).astype(np.float32)
    spacing = np.array([3.0, 0.4, 0.4])
    zz, yy, xx = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)],
                             indexing="ij", sparse=True)
    for _ in range(n_lesions):
        c = rng.uniform([6, 40, 40], [shape[0] * 3 - 6, 160, 160])
        r = rng.uniform(0.6, 3.0)
        hu = rng.uniform(200, 900)
        inside = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
        vol[inside] = hu + rng.normal(0, 20, size=int(inside.sum()))
    return pvcalc.make_scan(vol, tuple(spacing))


def baseline_agatston(vol, spacing):
    """Per-slice ndimage.label loop (standard preset)."""
    dz, dy, dx = spacing
    pixel = dy * dx
    structure = np.ones((3, 3), dtype=bool)
    total = 0.0
    for z in range(vol.shape[0]):
        sl = vol[z]
        mask = sl >= 130.0
        lab, n = ndimage.label(mask, structure=structure)
        if n == 0:
            continue
        idx = np.arange(1, n + 1)
        area = ndimage.sum(mask, lab, idx) * pixel
        peak = ndimage.maximum(sl, lab, idx)
        w = 1 + (peak >= 200) + (peak >= 300) + (peak >= 400)
        keep = area >= 1.0 * (1 - 1e-9)
        total += float(np.sum(area[keep] * w[keep]))
    return total * dz / 3.0


def label_only(vol):
    """Only the per-slice threshold + ndimage.label calls (a lower bound of the baseline)."""
    structure = np.ones((3, 3), dtype=bool)
    for z in range(vol.shape[0]):
        ndimage.label(vol[z] >= 130.0, structure=structure)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    repeats_fast, repeats_base = (5, 2) if args.quick else (21, 5)
    scan = make_volume()
    vol = scan.values
    spacing = pvcalc.scan_spacing_mm(scan)
    t0 = time.perf_counter()
    res = pvcalc.score(scan)  # compile or load the numba cache
    t_first = time.perf_counter() - t0
    ref = baseline_agatston(vol, spacing)
    if not np.isclose(res.total.agatston, ref, rtol=1e-9):
        raise SystemExit(f"mismatch: pvcalc {res.total.agatston} vs baseline {ref}")
    pvcalc.score(scan, parallel=True)
    t_fast = median_seconds(lambda: pvcalc.score(scan), repeats_fast)
    t_par = median_seconds(lambda: pvcalc.score(scan, parallel=True), repeats_fast)
    t_base = median_seconds(lambda: baseline_agatston(vol, spacing), repeats_base)
    t_label = median_seconds(lambda: label_only(vol), repeats_base)
    print(f"scan {vol.shape} float32, {res.total.n_lesions} scored 2D lesions, "
          f"Agatston {res.total.agatston:.2f} (both agree); cores: {os.cpu_count()}")
    print(f"first call (compile or cache load): {t_first * 1e3:.0f} ms")
    try:
        load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"load average (1/5/15 min): {load}  (threads suffer most on a busy machine)")
    print(f"pvcalc.score standard, serial (default)  median {t_fast * 1e3:8.2f} ms  ({repeats_fast} runs)")
    print(f"pvcalc.score standard, parallel=True     median {t_par * 1e3:8.2f} ms  ({repeats_fast} runs)")
    print(f"per-slice ndimage.label loop (baseline)  median {t_base * 1e3:8.2f} ms  ({repeats_base} runs)")
    print(f"  of which ndimage.label calls alone     median {t_label * 1e3:8.2f} ms")
    print(f"speed-up vs baseline: serial {t_base / t_fast:.1f}x, parallel {t_base / t_par:.1f}x")


if __name__ == "__main__":
    main()
