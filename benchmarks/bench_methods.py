"""Benchmark: the partial-volume methods of pvcalc.quantify vs plain numpy/scipy/scikit-image.

Run: ``python benchmarks/bench_methods.py`` (``--quick`` for fewer repeats,
``--profile`` to print where the time of a method that misses its target goes).

Scan: the simulated CCI replica, ``phantoms.simulate(phantoms.cci_phantom(),
phantoms.get_protocol("calcium_scoring"), seed=1)`` (11 x 512 x 512, 3 mm slices,
0.49 mm pixels), ROIs from ``pvcalc.rois.truth_roi_labels`` (the inserts' footprints
grown by 2 mm), calibration ``pvcalc.calibration.rod_calibration``.

1. Per lesion, for every registered method: ``spec.compute(region, params,
   calibration)`` on the regions that :func:`pvcalc.quantify` builds, against a
   straightforward implementation of the same step written below from the same
   region, on the 3 and 5 mm inserts. The script checks that both give the same
   answer before timing. ``clinical`` scores each ROI's bounding box (the scoring
   kernels of :func:`pvcalc.score`; the whole scan only for the ``resample_3mm``
   convention, shared by the lesions through a cache), so its time per lesion is
   that of all 9 lesions with an empty cache, divided by 9, and so is its
   baseline's (a per-slice ``ndimage.label`` on each ROI's crop). ``region.noise_inflation`` (the
   correlated-noise factor that ``integrated``, ``volume_fraction`` and
   ``em_partial_content`` share, computed once per region) is timed with the
   regions, not in those methods.
2. The regions (shared by all methods): ``build_regions`` for the 9 inserts.
3. The whole ``quantify`` call on the 9 inserts, split into input checks and ROI
   labels, regions, methods and table assembly (the same private steps that
   ``quantify`` runs, checked to give its table).

Numba kernels compile (or load their cache) in a warm-up call before any timing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import time

import numpy as np
import pandas as pd
from _timing import median_time
from scipy import ndimage, special
from skimage import measure

import phantoms
from phantoms.truth import lesion_table
from pvcalc.calibration import rod_calibration
from pvcalc.methods import METHODS, RegionParams, ScanContext, build_regions, quantify
from pvcalc.methods import _quantify as q
from pvcalc.rois import truth_roi_labels
from pvcalc.scan import scan_spacing_mm

#: Per-lesion targets (ms) of a 3-5 mm lesion at 0.49 mm pixels; quantify on 9 inserts.
TARGET_MS = {"clinical": 0.2, "adaptive_groen": 0.2, "adaptive_background": 0.2,
             "integrated": 0.2, "volume_fraction": 0.2, "swcs": 0.2,
             "em_partial_content": 2.0, "mesh": 10.0}
QUANTIFY_TARGET_MS = 150.0
SQRT_2PI = math.sqrt(2.0 * math.pi)


# --- baselines: one lesion's step, written plainly from the region ----------------------


def base_clinical(r, p, cal):
    """Per-slice 8-connected ndimage.label of the ROI's voxels >= threshold, peak weights."""
    pre = p.preset
    dz, dy, dx = r.spacing_mm
    pixel = dy * dx
    n_tot, hu_sum, agatston = 0, 0.0, 0.0
    for z in range(r.hu.shape[0]):
        sl = r.hu[z]
        mask = r.roi[z] & (sl >= pre.threshold_hu)
        if not mask.any():
            continue
        lab, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
        idx = np.arange(1, n + 1)
        count = np.bincount(lab.ravel(), minlength=n + 1)[1:]
        peak = ndimage.maximum(sl, lab, idx)
        total = ndimage.sum(sl, lab, idx)
        keep = count * pixel >= pre.min_area_mm2 * (1 - 1e-9)
        weight = 1 + sum(peak >= c for c in pre.weight_cutoffs_hu)
        agatston += float(np.sum((count * pixel * weight)[keep])) * dz / 3.0
        n_tot += int(count[keep].sum())
        hu_sum += float(total[keep].sum())
    vox = r.voxel_mm3
    return {"volume_mm3": n_tot * vox, "agatston": agatston,
            "mass_mg": cal.mass_mg(hu_sum=hu_sum, voxel_volume_mm3=vox, n_voxels=n_tot)}


def _grown(r, threshold, inclusive):
    """ROI voxels >= (>) threshold in the 26-connected components that hold a core voxel."""
    cand = r.roi & (r.hu >= threshold if inclusive else r.hu > threshold)
    lab, _ = ndimage.label(cand, structure=np.ones((3, 3, 3), dtype=bool))
    keep = np.unique(lab[r.core & cand])
    return np.isin(lab, keep[keep > 0])


def _threshold_out(r, sel, cal):
    n = int(sel.sum())
    mass = cal.c_ha_mg_cm3_per_hu * (r.hu[sel].sum() - n * r.background_hu) * r.voxel_mm3 / 1e3
    return {"volume_mm3": n * r.voxel_mm3, "mass_mg": mass}


def base_groen(r, p, cal):
    peak = r.hu[r.core].max()
    b, sd = r.background_hu, r.background_sd_hu
    t = max(b + p.fraction * (peak - b), b + p.min_contrast_sd * sd)
    return _threshold_out(r, _grown(r, t, True), cal)


def base_background(r, p, cal):
    return _threshold_out(r, _grown(r, r.background_hu + p.k * r.background_sd_hu, False), cal)


def _sums(r, mask, p, cal):
    c, b = cal.c_ha_mg_cm3_per_hu, r.background_hu
    v = r.hu[mask]
    mass = c * (v.sum() - v.size * b) * r.voxel_mm3 / 1e3
    roi = r.hu[r.roi]
    n = roi.size
    se = math.sqrt(r.background_sd_hu ** 2 * r.noise_inflation * (n + n * n / r.n_background))
    density = c * (v.max() - b)
    return {"mass_mg": mass, "volume_mm3": 1e3 * mass / density,
            "z_score": (roi.sum() - n * b) / se}


def base_integrated(r, p, cal):
    return _sums(r, r.roi, p, cal)


def base_volume_fraction(r, p, cal):
    dz, dy, dx = r.spacing_mm
    ry, rx = int(p.dilation_mm // dy), int(p.dilation_mm // dx)
    yy, xx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    disk = (yy * dy) ** 2 + (xx * dx) ** 2 <= p.dilation_mm ** 2
    k = p.dilation_slices
    grown = ndimage.binary_dilation(r.core, structure=np.ones((2 * k + 1, 1, 1), bool)
                                    & disk[None])
    return _sums(r, grown & r.roi, p, cal)


def base_swcs(r, p, cal):
    mu = r.background_hu + p.reference_density_mg_cm3 / cal.c_ha_mg_cm3_per_hu
    w = np.pad(special.ndtr((r.hu - mu) / r.background_sd_hu), ((0, 0), (1, 1), (1, 1)),
               mode="edge")
    smooth = 0.2 * (w[:, 1:-1, 1:-1] + w[:, :-2, 1:-1] + w[:, 2:, 1:-1] + w[:, 1:-1, :-2]
                    + w[:, 1:-1, 2:])
    dz, dy, dx = r.spacing_mm
    return {"swcs": smooth[r.roi].sum() * dy * dx * dz / 3.0}


def base_em(r, p, cal):
    """The lesion region with scipy, then a plain EM loop (no acceleration), same stopping rule."""
    dz, dy, dx = r.spacing_mm
    near = ndimage.distance_transform_edt(~r.core, sampling=r.spacing_mm) <= p.extend_mm
    cand = r.core | (r.roi & near & (r.hu >= p.extend_hu))
    lab, _ = ndimage.label(cand, structure=np.ones((3, 3, 3), dtype=bool))
    keep = np.unique(lab[r.core])
    ext = np.isin(lab, keep[keep > 0])
    ry, rx = int(p.rim_mm // dy), int(p.rim_mm // dx)
    yy, xx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    disk = (yy * dy) ** 2 + (xx * dx) ** 2 <= p.rim_mm ** 2 * (1 + 1e-12)
    k = p.rim_slices
    les = ndimage.binary_dilation(ext, structure=np.ones((2 * k + 1, 1, 1), bool) & disk[None])
    x = r.hu[les & r.roi] - r.background_hu
    s = max(r.background_sd_hu, p.min_sd_hu)
    w, d = np.full(3, 1.0 / 3.0), float(r.hu[r.core].max() - r.background_hu)
    it = 0
    while it < 200_000:
        it += 1
        content, rc, rp_ea2, rb, rp = _e_step(x, s, d, w)
        new_w = np.array([rb.mean(), rc.mean(), rp.mean()])
        new_d = float(np.sum(content * x) / np.sum(rc + rp_ea2))
        done = np.abs(new_w - w).max() <= p.tol and abs(new_d - d) <= p.tol * d
        w, d = new_w, new_d
        if done:
            break
    content = np.clip(_e_step(x, s, d, w)[0], 0.0, 1.0)
    return {"volume_mm3": content.sum() * r.voxel_mm3,
            "mass_mg": cal.c_ha_mg_cm3_per_hu * d * content.sum() * r.voxel_mm3 / 1e3,
            "n_iter": it}


def _e_step(x, s, d, w):
    """Responsibilities of background / calcium / uniform partial volume (Santago & Gage)."""
    zb, zc = x / s, (x - d) / s
    phib, phic = np.exp(-0.5 * zb ** 2) / SQRT_2PI, np.exp(-0.5 * zc ** 2) / SQRT_2PI
    zz = np.where(x > d / 2, special.ndtr(-zc) - special.ndtr(-zb),
                  special.ndtr(zb) - special.ndtr(zc))
    pb, pc, pp = w[0] * phib / s, w[1] * phic / s, w[2] * zz / d
    f = pb + pc + pp
    rp_ea = w[2] * (x * zz + s * (phib - phic)) / d ** 2 / f
    rp_ea2 = w[2] * (x * x * zz + 2 * x * s * (phib - phic)
                     + s * s * (zz + zc * phic - zb * phib)) / d ** 3 / f
    return pc / f + rp_ea, pc / f, rp_ea2, pb / f, pp / f


def base_mesh(r, p, cal):
    """Half-maximum mesh: marching cubes of the seed, map_coordinates profiles, crossings.

    Only the half-maximum surface (``volume_half_max_mm3``), without the plateau
    test and the blur correction that ``mesh`` adds: a lower bound of a baseline.
    """
    b = r.background_hu
    peak = r.hu[r.core].max()
    level = b + p.fraction * (peak - b)
    grown = _grown(r, level, True)
    idx = np.argwhere(grown)
    lo, hi = np.maximum(idx.min(0) - 2, 0), np.minimum(idx.max(0) + 3, grown.shape)
    box = tuple(slice(a, c) for a, c in zip(lo, hi))
    seed = ndimage.binary_fill_holes(grown[box])
    tiny = 1e-6 * (peak - b)
    ex = r.hu[box] - level
    field = np.where(seed, np.maximum(ex, tiny), np.minimum(ex, -tiny))
    spacing = np.array(r.spacing_mm)
    verts, faces, _, _ = measure.marching_cubes(
        np.pad(field, 1, constant_values=min(field.min(), -1.0)), 0.0, spacing=r.spacing_mm)
    verts = verts.astype(np.float64) - spacing + lo * spacing
    faces = faces[:, ::-1]
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(verts)
    for c in range(3):
        np.add.at(normals, faces[:, c], fn)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    j_out = round(p.reach_out_mm / p.step_mm)
    s = (np.arange(j_out + round(p.reach_in_mm / p.step_mm) + 1) - j_out) * p.step_mm
    pts = (verts[:, None, :] - normals[:, None, :] * s[None, :, None]) / spacing
    prof = ndimage.map_coordinates(r.hu, pts.reshape(-1, 3).T, order=1, mode="nearest",
                                   prefilter=False).reshape(len(verts), s.size)
    move = np.zeros(len(verts))
    for v in range(len(verts)):    # edge: last sample below the level before the local peak
        k = j_out + int(np.argmax(prof[v, j_out:]))
        lv = b + p.fraction * (prof[v, k] - b)
        below = np.flatnonzero(prof[v, :k] < lv)
        if prof[v, k] > b and below.size and below[-1] + 1 < s.size:
            j = below[-1]
            move[v] = -(s[j] + (lv - prof[v, j]) / (prof[v, j + 1] - prof[v, j]) * p.step_mm)
    moved = verts + move[:, None] * normals
    fa = np.cross(moved[faces][:, 1] - moved[faces][:, 0], moved[faces][:, 2] - moved[faces][:, 0])
    area = np.linalg.norm(fn, axis=1)
    if area[np.einsum("ij,ij->i", fn, fa) <= 0].sum() > p.max_folded_fraction * area.sum():
        moved = verts
    m = moved - moved.mean(0)
    t = m[faces]
    return {"volume_half_max_mm3": float(np.einsum("ij,ij->", t[:, 0],
                                                   np.cross(t[:, 1], t[:, 2])) / 6.0)}


BASELINES = {"clinical": base_clinical, "adaptive_groen": base_groen,
             "adaptive_background": base_background, "integrated": base_integrated,
             "volume_fraction": base_volume_fraction, "swcs": base_swcs,
             "em_partial_content": base_em, "mesh": base_mesh}
BASELINE_NAMES = {
    "clinical": "per-slice ndimage.label on the ROI crop",
    "adaptive_groen": "masks + 3D ndimage.label",
    "adaptive_background": "masks + 3D ndimage.label",
    "integrated": "numpy sums",
    "volume_fraction": "binary_dilation + numpy sums",
    "swcs": "ndtr + shifted-slice smoothing",
    "em_partial_content": "scipy masks + plain EM loop",
    "mesh": "marching_cubes + map_coordinates (half max only)",
}
#: Relative tolerance of the agreement check: plain EM and SQUAREM stop at different
#: iterates of a flat likelihood (volumes within 2e-4, masses within 2e-6 here).
RTOL = {"em_partial_content": 1e-3}


# --- set-up and helpers ------------------------------------------------------------------


def make_case():
    phantom = phantoms.cci_phantom()
    scan, truth = phantoms.simulate(phantom, phantoms.get_protocol("calcium_scoring"), seed=1)
    labels = truth_roi_labels(scan, truth)
    cal = rod_calibration(scan, phantom)
    table = lesion_table(truth)
    size = 2.0 * table["radius_mm"].to_numpy()
    pv_sized = set(table["lesion"][(size >= 3.0) & (size <= 5.0)])   # the 3 and 5 mm inserts
    return scan, labels, cal, pv_sized


def regions_of(scan, labels, rp):
    arr = np.asarray(labels.values, dtype=np.int32)
    names = dict(labels.attrs["label_names"])
    ctx = ScanContext(scan=scan, labels=arr, label_names=names, finite=True)
    return ctx, sorted(names), build_regions(ctx, sorted(names), rp)


def repeats_for(fn, budget_s, lo, hi):
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    return int(min(max(budget_s / one, lo), hi))


def timed_ms(fn, budget_s, lo=5, hi=2001):
    return 1e3 * median_time(fn, repeats_for(fn, budget_s, lo, hi))[0]


def check_same(name, ours, base):
    rtol = RTOL.get(name, 1e-9)
    for key, v in base.items():
        if key == "n_iter":
            continue
        mine = ours[key]
        if not np.isclose(mine, v, rtol=rtol, atol=1e-9 * max(1.0, abs(v))):
            raise SystemExit(f"{name}: baseline {key} = {v!r} but pvcalc gives {mine!r}")


def quantify_steps(scan, labels, cal):
    """quantify(scan, labels, calibration=cal), step by step: ((stage times in s), table)."""
    t0 = time.perf_counter()
    grid, finite = q._check_scan(scan)
    rp = q._region_params(None)
    selected = q._select_methods("all", None, cal)
    lab, names, order, outside, overlaps = q._lesion_labels(grid, labels, None, rp)
    ctx = ScanContext(scan=scan, labels=lab, label_names=names, finite=finite)
    t1 = time.perf_counter()
    regions = build_regions(ctx, order, rp, overlaps=overlaps, outside=outside)
    t2 = time.perf_counter()
    rows = [q._row(region, spec, p, cal) for region in regions for spec, p in selected]
    t3 = time.perf_counter()
    table = q._table(rows, [spec.name for spec, _ in selected])
    t4 = time.perf_counter()
    return (t1 - t0, t2 - t1, t3 - t2, t4 - t3), table


def profile(label, fn, n, top=12):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\n--- profile: {label} ({n} calls), by own time ---")
    print("\n".join(out.getvalue().splitlines()[4:]))


# --- main --------------------------------------------------------------------------------


def time_method(name, spec, ctx, regions, lesions, cal, budget):
    """(per-lesion ms of pvcalc, of the baseline or [], params), checking they agree."""
    p = spec.make_params(None)
    base = BASELINES.get(name)
    if name == "clinical":   # (any scan-level score is shared by the lesions): all / n
        def ours_all():
            ctx.cache.clear()
            return [spec.compute(r, p, cal) for r in regions]

        for r, o in zip(regions, ours_all()):
            check_same(name, o, base(r, p, cal))
        n = len(regions)
        return ([timed_ms(ours_all, budget) / n],
                [timed_ms(lambda: [base(r, p, cal) for r in regions], budget) / n], p)
    t_ours, t_base = [], []
    for r in lesions:
        o = spec.compute(r, p, cal)
        t_ours.append(timed_ms(lambda r=r: spec.compute(r, p, cal), budget))
        if base is not None:
            check_same(name, o, base(r, p, cal))
            t_base.append(timed_ms(lambda r=r: base(r, p, cal), budget, lo=3))
    return t_ours, t_base, p


def method_total_ms(spec, ctx, regions, cal, budget):
    """One method on all regions through quantify's row step, with cold shared caches."""
    p = spec.make_params(None)

    def run():
        ctx.cache.clear()
        for r in regions:
            r.__dict__.pop("noise_inflation", None)
            q._row(r, spec, p, cal)
    return timed_ms(run, budget, lo=3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile every method that misses its target, and quantify")
    args = ap.parse_args()
    budget = 0.05 if args.quick else 0.4          # seconds of timing per measurement
    scan, labels, cal, pv_sized = make_case()
    rp = RegionParams()
    t0 = time.perf_counter()
    table_ref = quantify(scan, labels, calibration=cal)     # compile or load numba caches
    t_first = time.perf_counter() - t0
    ctx, order, regions = regions_of(scan, labels, rp)
    lesions = [r for r in regions if r.name in pv_sized and not r.reason]
    try:
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "n/a"
    spacing = tuple(round(s, 3) for s in scan_spacing_mm(scan))
    print(f"scan {scan.shape} {scan.dtype}, spacing {spacing} mm, {len(regions)} inserts, "
          f"per-lesion times on the {len(lesions)} of 3-5 mm; cores: {os.cpu_count()}; "
          f"load average (1/5/15 min): {load}")
    print(f"first quantify call (compile or cache load): {t_first * 1e3:.0f} ms")
    print(f"methods: {list(METHODS)}")

    # 1. per lesion, ours vs baseline
    print("\nper lesion, ms (median over repeats; then median [max] over lesions); "
          "ratio = baseline / pvcalc:")
    print(f"{'method':20s} {'pvcalc':>16s} {'baseline':>16s} {'ratio':>6s} {'target':>6s}  "
          "baseline")
    misses = []
    for name, spec in METHODS.items():
        t_ours, t_base, p = time_method(name, spec, ctx, regions, lesions, cal, budget)
        med = float(np.median(t_ours))
        target = TARGET_MS.get(name)
        line = f"{name:20s} {med:8.3f} [{max(t_ours):6.3f}]"
        if t_base:
            bmed = float(np.median(t_base))
            line += f" {bmed:8.3f} [{max(t_base):6.3f}] {bmed / med:5.1f}x"
        else:
            line += f" {'-':>16s} {'-':>6s}"
        line += f" {target if target else '-':>6}  {BASELINE_NAMES.get(name, 'no baseline')}"
        if target and med > target:
            line += "  (misses its target)"
            misses.append((name, spec, p))
        print(line)
    if "em_partial_content" in METHODS:
        spec = METHODS["em_partial_content"]
        p = spec.make_params(None)
        n_ours = [spec.compute(r, p, cal)["n_iter"] for r in lesions]
        n_base = [base_em(r, p, cal)["n_iter"] for r in lesions]
        print(f"  em_partial_content: EM iterations per lesion, pvcalc (SQUAREM) {n_ours}, "
              f"plain EM {n_base}")

    # 2. regions
    t_reg = timed_ms(lambda: build_regions(ctx, order, rp), budget, lo=3)

    def inflation():
        for r in regions:
            r.__dict__.pop("noise_inflation", None)
            _ = r.noise_inflation
    t_infl = timed_ms(inflation, budget, lo=3)
    print(f"\nregions: build_regions for {len(order)} inserts {t_reg:.2f} ms "
          f"({t_reg / len(order):.3f} ms per lesion); noise_inflation (lazy, once per region) "
          f"{t_infl / len(order):.3f} ms per lesion")

    # 3. quantify on the 9 inserts
    stages, table = quantify_steps(scan, labels, cal)
    pd.testing.assert_frame_equal(table, table_ref)
    t_q = timed_ms(lambda: quantify(scan, labels, calibration=cal), 5 * budget, lo=5)
    n = repeats_for(lambda: quantify_steps(scan, labels, cal), 5 * budget, 5, 501)
    med = np.median(np.array([quantify_steps(scan, labels, cal)[0] for _ in range(n)]), axis=0)
    med *= 1e3
    verdict = "meets" if t_q <= QUANTIFY_TARGET_MS else "misses"
    print(f"\nquantify(scan, labels, calibration=cal), {len(order)} inserts x {len(METHODS)} "
          f"methods: median {t_q:.1f} ms ({verdict} the {QUANTIFY_TARGET_MS:g} ms target); "
          f"its steps (medians of {n} runs):")
    for what, t in zip(("input checks + ROI labels", "region building", "methods",
                        "table assembly"), med):
        print(f"  {what:26s} {t:8.2f} ms  {100 * t / med.sum():5.1f}%")
    totals = {name: method_total_ms(spec, ctx, regions, cal, budget)
              for name, spec in METHODS.items()}
    print("  methods on all 9 inserts, ms (each with its own noise_inflation / clinical "
          "score): " + ", ".join(f"{k} {v:.2f}" for k, v in totals.items()))

    if args.profile:
        for name, spec, p in misses:
            group = regions if name == "clinical" else lesions
            profile(name, lambda spec=spec, p=p, group=group: (
                ctx.cache.clear(), [spec.compute(r, p, cal) for r in group]), 50)
        profile("build_regions", lambda: build_regions(ctx, order, rp), 20)
        profile("quantify", lambda: quantify(scan, labels, calibration=cal), 10)


if __name__ == "__main__":
    main()
