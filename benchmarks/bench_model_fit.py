"""Benchmark: ``model_fit`` per lesion against a plain numpy/scipy version of the same fit.

Run: ``python benchmarks/bench_model_fit.py`` (``--quick`` for fewer repeats).

Scan: the simulated CCI replica, ``phantoms.simulate(phantoms.cci_phantom(),
phantoms.get_protocol("calcium_scoring"), seed=1)`` (11 x 512 x 512, 3 mm slices,
0.49 mm pixels, PSF FWHM 1.3 mm), ROIs from ``pvcalc.rois.truth_roi_labels``,
calibration ``pvcalc.calibration.rod_calibration``. Regions are built once (as
``pvcalc.quantify`` builds them) and each lesion's ``compute`` is timed on the six 3
and 5 mm inserts (target: median <= 50 ms per lesion).

Baseline, in the same run: the same fit with the forward model written in plain
numpy (vectorised exact pixel-area fractions, the slice-profile weights, the PSF by
``scipy.ndimage.convolve1d``) and ``scipy.optimize.least_squares(method="lm")`` with
its own 2-point finite-difference Jacobian, from the same start, with the same size
prior; it reports the integrated contrast q (mass) of the full-model fit, which the
script checks against pvcalc's full-model fit (0.5%) before timing.

Numba kernels compile (or load their cache) in a warm-up call before any timing.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
from _timing import median_time
from scipy import ndimage, optimize

import phantoms
from pvcalc.calibration import rod_calibration
from pvcalc.methods import RegionParams, ScanContext, build_regions, get_method
from pvcalc.methods import _model_fit as mf
from pvcalc.methods import _model_fit_solve as solve
from pvcalc.methods import _quantify as q
from pvcalc.rois import truth_roi_labels

TARGET_MS = 50.0


# --- baseline: the forward model and fit in plain numpy / scipy -------------------------

def _ssp_cdf(u, t, edge):
    """Trapezoid slice profile, cumulative (vectorised)."""
    w = edge * t
    a, b = 0.5 * (t + w), 0.5 * (t - w)
    u = np.asarray(u, dtype=float)
    rise = 0.5 * (u + a) ** 2 / (w * t)
    top = 0.5 * w / t + (u + b) / t
    fall = 1.0 - 0.5 * (a - u) ** 2 / (w * t)
    return np.where(u <= -a, 0.0, np.where(u < -b, rise, np.where(u <= b, top,
                                                                    np.where(u < a, fall, 1.0))))


def _segment(s):
    return 0.5 * (s * np.sqrt(np.clip(1.0 - s * s, 0.0, None)) + np.arcsin(s))


def _disk_rect(u, v):
    au, av = np.minimum(np.abs(u), 1.0), np.minimum(np.abs(v), 1.0)
    s = np.sqrt(np.clip(1.0 - av * av, 0.0, None))
    a = np.where(au * au + av * av <= 1.0, au * av, av * s + _segment(au) - _segment(s))
    return np.where((u < 0) != (v < 0), -a, a)


def base_template(p, g, edge=0.5):
    """Unit-contrast cylinder model at the ROI voxels, plain numpy (cylinder only)."""
    cz, cy, cx, r, hl = g
    fj = np.arange(math.floor((cy - r - p.oy) / p.dy + 0.5) - 1,
                   math.floor((cy + r - p.oy) / p.dy + 0.5) + 2)
    fi = np.arange(math.floor((cx - r - p.ox) / p.dx + 0.5) - 1,
                   math.floor((cx + r - p.ox) / p.dx + 0.5) + 2)
    ye = (p.oy + (np.r_[fj, fj[-1] + 1] - 0.5) * p.dy - cy) / r
    xe = (p.ox + (np.r_[fi, fi[-1] + 1] - 0.5) * p.dx - cx) / r
    c = _disk_rect(xe[None, :], ye[:, None])
    area = (c[1:, 1:] - c[:-1, 1:] - c[1:, :-1] + c[:-1, :-1]) * r * r / (p.dy * p.dx)
    w = _ssp_cdf(cz + hl - p.zc, p.thickness, edge) - _ssp_cdf(cz - hl - p.zc, p.thickness, edge)
    hy, hx = p.taps_y.size // 2, p.taps_x.size // 2
    occ = np.zeros((p.zc.size, fj.size + 2 * hy, fi.size + 2 * hx))
    occ[:, hy:hy + fj.size, hx:hx + fi.size] = w[:, None, None] * area[None]
    img = ndimage.convolve1d(occ, p.taps_y, axis=1, mode="constant")
    img = ndimage.convolve1d(img, p.taps_x, axis=2, mode="constant")
    jj = p.rj - (fj[0] - hy)
    ii = p.ri - (fi[0] - hx)
    ok = (jj >= 0) & (jj < img.shape[1]) & (ii >= 0) & (ii < img.shape[2])
    out = np.zeros(p.n)
    out[ok] = img[p.rk[ok], jj[ok], ii[ok]]
    return out / (2.0 * math.pi * r * r * hl)


def base_fit(region, params, cal):
    """The full-model fit of model_fit, with the numpy model and a 2-point Jacobian."""
    psf, thick, profile, _ = mf.imaging(region, params)
    p = solve.make_problem(region, "cylinder", psf, thick, profile, 0.5, 1)
    g0 = solve.initial_guess(p, region, region.background_hu, psf)
    g0 = np.clip(g0, *solve.bounds(p, 2))
    prior = np.log(solve.prior_sizes("cylinder", params.prior_diameter_mm))
    weight = max(region.background_sd_hu, 1.0) / params.prior_log_sd
    t0 = base_template(p, g0)
    q0, b0 = solve.linear_amplitude(p, t0, None)

    def residuals(x):
        g = np.r_[x[:3], np.exp(x[3:5])]
        model = x[6] + x[5] * base_template(p, g)
        return np.r_[model - p.y, weight * (x[3:5] - prior)]

    x0 = np.r_[g0[:3], np.log(g0[3:5]), q0, b0]
    res = optimize.least_squares(residuals, x0, jac="2-point", method="lm", x_scale="jac",
                                 xtol=1e-6, ftol=1e-6, gtol=1e-6, max_nfev=params.max_nfev)
    return {"q": float(res.x[5]), "nfev": int(res.nfev)}


def ours_full_fit(region, params):
    """pvcalc's full-model fit alone (for the equality check)."""
    psf, thick, profile, _ = mf.imaging(region, params)
    p = solve.make_problem(region, "cylinder", psf, thick, profile, 0.5, 1)
    g0 = np.clip(solve.initial_guess(p, region, region.background_hu, psf), *solve.bounds(p, 2))
    q0, b0 = solve.linear_amplitude(p, p.template(g0), None)
    prior = (solve.prior_sizes("cylinder", params.prior_diameter_mm),
             max(region.background_sd_hu, 1.0) / params.prior_log_sd)
    return solve.fit(p, g0, [0, 1, 2, 3, 4], q0, b0, prior=prior, max_nfev=params.max_nfev)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 5 if args.quick else 21
    ph = phantoms.cci_phantom()
    scan, truth = phantoms.simulate(ph, phantoms.get_protocol("calcium_scoring"), seed=1,
                                    fraction_maps=True)
    cal = rod_calibration(scan, ph)
    labels = truth_roi_labels(scan, truth)
    rp = RegionParams()
    lab, names, order, _, _ = q._lesion_labels(scan, labels, None, rp)
    ctx = ScanContext(scan=scan, labels=lab, label_names=names, finite=True)
    regions = build_regions(ctx, order, rp)
    lesions = [r for r in regions if not r.name.startswith("small")]
    spec = get_method("model_fit")
    params = spec.make_params(None)
    t0 = time.perf_counter()
    for r in regions:
        _ = r.noise_inflation
        spec.compute(r, params, cal)
        base_fit(r, params, cal)
    t_first = time.perf_counter() - t0
    try:
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"scan {scan.shape}, {len(lesions)} inserts of 3 and 5 mm; cores: {os.cpu_count()}; "
          f"load average (1/5/15 min): {load}")
    print(f"warm-up (compile or cache load, all 9 inserts, both versions): {t_first:.1f} s")
    for r in lesions:
        mine, base = ours_full_fit(r, params), base_fit(r, params, cal)
        if not math.isclose(mine["q"], base["q"], rel_tol=5e-3):
            raise SystemExit(f"{r.name}: baseline q = {base['q']:.6g}, pvcalc {mine['q']:.6g}")
    print("full-model fits agree with the baseline (q within 0.5%) on every insert\n")
    print(f"{'insert':10s} {'compute':>9s} {'full fit':>9s} {'baseline':>9s} {'ratio':>6s}  "
          "(ms, median; ratio = baseline / pvcalc full fit)")
    t_c, t_f, t_b = [], [], []
    for r in lesions:
        c = 1e3 * median_time(lambda r=r: spec.compute(r, params, cal), repeats)[0]
        f = 1e3 * median_time(lambda r=r: ours_full_fit(r, params), repeats)[0]
        b = 1e3 * median_time(lambda r=r: base_fit(r, params, cal), max(3, repeats // 4))[0]
        t_c.append(c)
        t_f.append(f)
        t_b.append(b)
        print(f"{r.name:10s} {c:9.2f} {f:9.2f} {b:9.2f} {b / f:6.1f}x")
    med = float(np.median(t_c))
    print(f"\nmodel_fit compute per lesion: median {med:.1f} ms, max {max(t_c):.1f} ms "
          f"({'meets' if med <= TARGET_MS else 'misses'} the {TARGET_MS:g} ms target); "
          f"full fit alone {np.median(t_f):.1f} ms vs plain numpy/scipy "
          f"{np.median(t_b):.1f} ms ({np.median(t_b) / np.median(t_f):.1f}x)")
    small = [r for r in regions if r.name.startswith("small")]
    t_s = [1e3 * median_time(lambda r=r: spec.compute(r, params, cal), repeats)[0] for r in small]
    print(f"1 mm inserts (not in the target): median {np.median(t_s):.1f} ms")


if __name__ == "__main__":
    main()
