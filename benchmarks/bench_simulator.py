"""Simulator speed and memory against a plain numpy/scipy implementation of the same steps.

Run: ``python benchmarks/bench_simulator.py`` (``--quick`` for fewer repeats).

(a) full 512 x 512 x 64 scan (0.49 mm pixels, 3 mm slices), 20 lesions (10
    moving), blur, motion and correlated noise via ``phantoms.simulate``,
    against a numpy/scipy baseline: body and lesions rendered by 4 x 4 x 4
    supersampling (16 time samples for moving lesions),
    ``scipy.ndimage.gaussian_filter`` for the PSF, white noise filtered with
    ``numpy.fft``; plus per-step timings (blur, noise) against their baselines;
(b) patch mode: lesion patches per second;
(c) peak memory of a full scan relative to the output volume (tracemalloc of
    Python/numpy allocations, and the growth of the resident set sampled every
    0.5 ms during a second full simulation in a fresh process, which also
    counts numba and FFT buffers);
(d) cold start in a fresh process with a warm numba cache, and the first-ever
    compile time (empty ``NUMBA_CACHE_DIR``).

Timings are medians; the machines are noisy (10-40%), so compare ratios from
the same run.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np
from _timing import median_time
from scipy import ndimage

import phantoms
from phantoms import (
    CardiacMotion,
    Cylinder,
    Lesion,
    Phantom,
    Sphere,
    ThoraxBody,
    get_protocol,
    simulate,
    simulate_patches,
)
from phantoms.materials import hu_per_mg_cm3
from phantoms.motion import NOMINAL_HEART_RATE_BPM
from phantoms.noise import noise_field
from phantoms.psf import blur_inplane

SHAPE = (64, 512, 512)
TARGETS = dict(full_ms=250.0, speedup=6.0, patches_per_s=1000.0, memory_ratio=4.0,
               cold_start_s=3.0)


def median_ms(fn, repeats):
    return 1e3 * median_time(fn, repeats)[0]


def bench_phantom():
    """20 lesions (spheres and z-cylinders, 1-5 mm, 200-800 mg/cm3), every second moving."""
    lesions = []
    for i in range(20):
        z = -85.0 + 9.0 * i
        ang = 2 * math.pi * i / 7
        y, x = 12.0 * math.sin(ang), 12.0 * math.cos(ang)
        d = (1.0, 2.0, 3.0, 4.0, 5.0)[i % 5]
        rho = (200.0, 400.0, 800.0)[i % 3]
        shape = Sphere((z, y, x), d / 2) if i % 2 else Cylinder((z, y, x), d / 2, d)
        motion = CardiacMotion((0.0, math.sin(ang), math.cos(ang)), 20.0 + 4 * i) \
            if i % 2 == 0 else phantoms.Static()
        lesions.append(Lesion(shape, rho, motion=motion))
    return Phantom(ThoraxBody(), tuple(lesions), z_extent_mm=(-96.0, 96.0), name="bench20")


# -- the plain numpy/scipy baseline ------------------------------------------------------

def _supersampled_body(body, y, x, nsub=4):
    p = y[1] - y[0]
    off = (np.arange(nsub) + 0.5) / nsub - 0.5
    img = np.zeros((y.size, x.size), np.float32)
    for oy in off:
        for ox in off:
            yy = (y + oy * p)[:, None]
            xx = (x + ox * p)[None, :]
            val = np.full((y.size, x.size), -1000.0, np.float32)
            for cy, cx, ay, ax, hu in body.ellipses():
                val[((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1.0] = hu
            img += val
    return img / nsub ** 2


def _inside(shape, z, y, x):
    if isinstance(shape, Sphere):
        c = shape.centre_mm
        return (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= shape.radius_mm ** 2
    c = shape.centre_mm      # z-axis cylinder
    return ((y - c[1]) ** 2 + (x - c[2]) ** 2 <= shape.radius_mm ** 2) & \
        (np.abs(z - c[0]) <= 0.5 * shape.length_mm)


def baseline_scan(phantom, protocol, seed, nsub=4, n_time=16):
    """Same steps in plain numpy/scipy: supersampled rendering, gaussian_filter, FFT noise."""
    nz, ny, nx = SHAPE
    z = protocol.slice_positions_mm(phantom.z_extent_mm)
    y, x = protocol.grid_yx_mm()
    p, dz = protocol.pixel_mm, protocol.increment_mm
    vol = np.empty(SHAPE, np.float32)
    vol[...] = _supersampled_body(phantom.body, y, x, nsub)[None]
    k = hu_per_mg_cm3(protocol.kvp)
    off = (np.arange(nsub) + 0.5) / nsub - 0.5
    rr = 60.0 / (phantom.heart_rate_bpm or NOMINAL_HEART_RATE_BPM)
    t_c = protocol.gating_phase * rr
    times = t_c + (np.arange(n_time) + 0.5) / n_time * protocol.temporal_resolution_ms * 1e-3 \
        - 0.5 * protocol.temporal_resolution_ms * 1e-3
    for les in phantom.lesions:
        disp = les.motion.displacement_mm(times) if les.motion.moves else np.zeros((1, 3))
        lo, hi = (np.asarray(b) for b in les.shape.bounding_box_mm())
        lo, hi = lo + disp.min(0) - 0.5 * dz, hi + disp.max(0) + 0.5 * dz
        k0, k1 = np.searchsorted(z, lo[0] - dz), np.searchsorted(z, hi[0] + dz)
        j0, j1 = np.searchsorted(y, lo[1] - p), np.searchsorted(y, hi[1] + p)
        i0, i1 = np.searchsorted(x, lo[2] - p), np.searchsorted(x, hi[2] + p)
        zz = (z[k0:k1, None] + off[None, :] * dz).ravel()
        yy = (y[j0:j1, None] + off[None, :] * p).ravel()
        xx = (x[i0:i1, None] + off[None, :] * p).ravel()
        Z, Y, X = np.meshgrid(zz, yy, xx, indexing="ij")
        occ = np.zeros(Z.shape, np.float32)
        for d in disp:
            occ += _inside(les.shape, Z - d[0], Y - d[1], X - d[2])
        occ /= len(disp)
        frac = occ.reshape(k1 - k0, nsub, j1 - j0, nsub, i1 - i0, nsub).mean(axis=(1, 3, 5))
        vol[k0:k1, j0:j1, i0:i1] += k * les.density_mg_cm3 * frac
    sigma_px = protocol.psf_sigma_mm / p
    vol = ndimage.gaussian_filter(vol, (0, sigma_px, sigma_px), truncate=4.0)
    vol += baseline_noise(protocol, seed)
    return vol


def baseline_noise(protocol, seed):
    """White noise -> numpy rfftn -> NPS filter (same model) -> irfftn, scaled by the sample SD."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(SHAPE, dtype=np.float32)
    spec = np.fft.rfftn(w)
    fy = np.fft.fftfreq(SHAPE[1], d=protocol.pixel_mm)[:, None]
    fx = np.fft.rfftfreq(SHAPE[2], d=protocol.pixel_mm)[None, :]
    fr = np.sqrt(fy ** 2 + fx ** 2)
    fp = protocol.nps_peak_per_mm
    spec *= np.sqrt(fr * np.exp(-fr ** 2 / (2 * fp ** 2)))[None]
    n = np.fft.irfftn(spec, s=SHAPE, axes=(0, 1, 2)).astype(np.float32)
    n *= protocol.noise_sd_hu / n.std()
    return n


# -- the measurements -------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, skip cold start")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else 7
    base_reps = 1 if args.quick else 3
    ph = bench_phantom()
    prot = get_protocol("calcium_scoring")
    print(f"phantoms.simulate, {SHAPE[0]} x {SHAPE[1]} x {SHAPE[2]} float32, "
          f"{len(ph.lesions)} lesions ({sum(l.motion.moves for l in ph.lesions)} moving), "
          f"protocol {prot.name}, numba threads {__import__('numba').get_num_threads()}")
    scan, truth = simulate(ph, prot, seed=1)          # warm-up / compile
    assert scan.shape == SHAPE, scan.shape
    res = {}
    res["full_ms"] = median_ms(lambda: simulate(ph, prot, seed=2), reps)
    res["base_full_ms"] = median_ms(lambda: baseline_scan(ph, prot, 2), base_reps)
    res["speedup"] = res["base_full_ms"] / res["full_ms"]
    print(f"(a) full scan       ours {res['full_ms']:8.1f} ms   numpy/scipy "
          f"{res['base_full_ms']:8.1f} ms   ratio {res['speedup']:5.1f}x   "
          f"(target <= {TARGETS['full_ms']:.0f} ms and >= {TARGETS['speedup']:.0f}x)")

    vol = np.random.default_rng(0).normal(40, 20, SHAPE).astype(np.float32)
    out = np.empty_like(vol)
    blur_inplane(vol, prot.psf_fwhm_mm, prot.pixel_mm, out=out)
    s = prot.psf_sigma_mm / prot.pixel_mm
    b_ours = median_ms(lambda: blur_inplane(vol, prot.psf_fwhm_mm, prot.pixel_mm, out=out), reps)
    b_base = median_ms(lambda: ndimage.gaussian_filter(vol, (0, s, s), truncate=4.0), base_reps)
    print(f"    blur step       ours {b_ours:8.1f} ms   ndimage     {b_base:8.1f} ms   "
          f"ratio {b_base / b_ours:5.1f}x")
    noise_field(SHAPE, prot, seed=0)
    n_ours = median_ms(lambda: noise_field(SHAPE, prot, seed=3, out=out), reps)
    n_base = median_ms(lambda: baseline_noise(prot, 3), base_reps)
    print(f"    noise step      ours {n_ours:8.1f} ms   numpy FFT   {n_base:8.1f} ms   "
          f"ratio {n_base / n_ours:5.1f}x")
    from phantoms._rng import standard_normal
    nrm = int(np.prod(SHAPE)) // 4 * 4
    standard_normal(1024, seed=0)
    gen = np.random.default_rng(0)
    r_ours = median_ms(lambda: standard_normal(nrm, seed=4), reps)
    r_base = median_ms(lambda: gen.standard_normal(nrm, dtype=np.float32), base_reps)
    print(f"    normals (16.8M) ours {r_ours:8.1f} ms   numpy       {r_base:8.1f} ms   "
          f"ratio {r_base / r_ours:5.1f}x  (Philox4x32-10 + polynomial Box-Muller vs PCG64 "
          "ziggurat)")
    vol = out = None  # free the volumes before the next step

    simulate_patches(ph, prot, seed=0)
    n_patch_runs = 3 if args.quick else 10
    t = time.perf_counter()
    for s_ in range(n_patch_runs):
        patches, _ = simulate_patches(ph, prot, seed=s_, fraction_maps=False)
    dt = time.perf_counter() - t
    res["patches_per_s"] = n_patch_runs * len(ph.lesions) / dt
    print(f"(b) patch mode      {res['patches_per_s']:8.0f} lesion patches/s "
          f"({len(ph.lesions)} per call, noise on, no fraction maps; target >= "
          f"{TARGETS['patches_per_s']:.0f}/s)")

    out_bytes = int(np.prod(SHAPE)) * 4
    tracemalloc.start()
    simulate(ph, prot, seed=5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = _rss_peak_ratio()
    res["memory_ratio"] = max(peak / out_bytes, rss)
    print(f"(c) peak memory     tracemalloc {peak / 2**20:7.1f} MiB = {peak / out_bytes:4.2f}x "
          f"output ({out_bytes / 2**20:.0f} MiB); peak RSS growth {rss:4.2f}x output "
          f"(target <= {TARGETS['memory_ratio']:.0f}x)")

    if not args.quick:
        warm = _cold_start(os.environ.get("NUMBA_CACHE_DIR"))
        with tempfile.TemporaryDirectory() as empty:
            first = _cold_start(empty)
        res["cold_start_s"] = warm
        print(f"(d) cold start      import + first full simulation, warm cache {warm:5.2f} s "
              f"(target <= {TARGETS['cold_start_s']:.0f} s); first-ever compile "
              f"(empty NUMBA_CACHE_DIR) {first:5.1f} s")
    return res


_CHILD = """
import time, sys
t0 = time.perf_counter()
sys.path.insert(0, {bench_dir!r})
import phantoms
from bench_simulator import bench_phantom
scan, truth = phantoms.simulate(bench_phantom(), phantoms.get_protocol("calcium_scoring"), seed=1)
print(time.perf_counter() - t0)
"""

_RSS_CHILD = """
import gc, sys, threading, time
sys.path.insert(0, {bench_dir!r})
import phantoms
from bench_simulator import bench_phantom
ph = bench_phantom(); p = phantoms.get_protocol("calcium_scoring")
scan, truth = phantoms.simulate(ph, p, seed=0)    # load every kernel at full size first
del scan, truth
gc.collect()
def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
before = rss_kib()
peak = [before]
done = threading.Event()
def poll():
    while not done.is_set():
        peak[0] = max(peak[0], rss_kib())
        time.sleep(0.0005)
t = threading.Thread(target=poll); t.start()
scan, truth = phantoms.simulate(ph, p, seed=1)
done.set(); t.join()
print((peak[0] - before) * 1024 / scan.values.nbytes)
"""


def _rss_peak_ratio():
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    res = subprocess.run([sys.executable, "-c", _RSS_CHILD.format(bench_dir=bench_dir)],
                         capture_output=True, text=True, check=True)
    return float(res.stdout.split()[0])


def _cold_start(cache_dir):
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ)
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = cache_dir
    else:
        env.pop("NUMBA_CACHE_DIR", None)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", _CHILD.format(bench_dir=bench_dir)], env=env,
                   capture_output=True, text=True, check=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
