"""The scene of one scan: grid, timing, lesion patches, background (private).

Shared by :mod:`phantoms.simulate` (full scans, patches, repeats) and the tests.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math

import numba
import numpy as np
import pandas as pd
import xarray as xr

from . import _render_kernels as _rk
from ._blur_kernels import gaussian_taps
from ._ssp import BOX, ssp_cdf, ssp_half_support_mm, ssp_kind
from .body import render_cross_section
from .motion import NOMINAL_HEART_RATE_BPM, ConstantVelocity, acquisition_times
from .psf import blur_inplane
from .truth import _build_truth

#: Relative linearity tolerance of the chord end points for a pixel to be
#: rendered with one chord (see ``_render_kernels.render_occupancy``).
NONLINEARITY_RTOL = 0.01
#: Boundary sub-samples per smallest shape radius (sub-sample step <= r / 16).
SUBSAMPLES_PER_RADIUS = 16
MAX_SUPERSAMPLING = 32


def supersampling(shape, pixel_mm, nsub):
    """In-plane sub-samples per axis for boundary pixels of a shape.

    ``max(nsub, ceil(16 pixel / r_min))`` capped at 32, where ``r_min`` is the
    shape's smallest radius: the sub-sample step stays below r_min / 16, which
    keeps the rendered volume within 0.25% of the analytic one for lesions of
    1 mm and more at 0.5 mm voxels (``tests/test_phantoms_render.py``).

    Examples
    --------
    >>> from phantoms.shapes import Sphere
    >>> supersampling(Sphere((0, 0, 0), 0.5), 0.5, 4), supersampling(Sphere((0, 0, 0), 5), 0.5, 4)
    (16, 4)
    """
    n = int(math.ceil(SUBSAMPLES_PER_RADIUS * pixel_mm / shape.feature_mm - 1e-9))
    return int(min(MAX_SUPERSAMPLING, max(nsub, n)))


def _merge_time_samples(disp):
    """Collapse identical displacements of each time group into weights.

    ``disp`` (G, M, 3) -> (disp (G, M', 3), weights (G, M')), rows summing to 1;
    a lesion at rest during the window is rendered once, not M times.
    """
    G, M, _ = disp.shape
    if M == 1:
        return disp, np.ones((G, 1))
    rows = []
    for g in range(G):
        u, counts = np.unique(disp[g], axis=0, return_counts=True)
        rows.append((u, counts / M))
    m = max(len(u) for u, _ in rows)
    d = np.zeros((G, m, 3))
    w = np.zeros((G, m))
    for g, (u, c) in enumerate(rows):
        d[g, :len(u)] = u
        w[g, :len(u)] = c
    return d, w


def shape_occupancy(shape, z, y, x, *, pixel_mm, thickness_mm, kind, displacements=None,
                    group=None, nsub=4):
    """SSP-weighted, pixel-averaged, time-averaged occupancy of a shape (K, J, I).

    Private helper (no validation) shared by the pipeline and the tests.
    ``displacements`` (G, M, 3) per time group, ``group`` (K,) the group of each
    slice; default: static.
    """
    z = np.ascontiguousarray(z, dtype=float)
    if displacements is None:
        displacements = np.zeros((1, 1, 3))
    if group is None:
        group = np.zeros(len(z), dtype=np.int64)
    d, w = _merge_time_samples(np.asarray(displacements, dtype=float))
    code = shape.code
    p = np.ascontiguousarray(shape.params(), dtype=float)
    lo, hi = shape.bounding_box_mm()
    return _rk.render_occupancy(code, p, _rk.max_intervals(code, p), z,
                                np.ascontiguousarray(y, dtype=float),
                                np.ascontiguousarray(x, dtype=float),
                                float(pixel_mm), float(pixel_mm), float(thickness_mm), int(kind),
                                d, w, np.ascontiguousarray(group, dtype=np.int64),
                                supersampling(shape, pixel_mm, nsub), NONLINEARITY_RTOL,
                                np.array([lo[1], hi[1], lo[2], hi[2]]))


def _map(func, items):
    """``[func(i) for i in items]`` on up to ``numba.get_num_threads()`` threads."""
    items = list(items)
    workers = min(len(items), numba.get_num_threads())
    if workers <= 1 or len(items) < 4:
        return [func(i) for i in items]
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(func, items))


class _Scene:
    """Everything one scan needs: grid, timing, transformed lesions."""

    def __init__(self, phantom, protocol, *, phase, lesions, offset_yx, n_time_samples, nsub,
                 rods=None):
        self.phantom = phantom
        self.rods = tuple(phantom.rods if rods is None else rods)
        self.protocol = protocol
        self.nsub = int(nsub)
        self.z = protocol.slice_positions_mm(phantom.z_extent_mm)
        self.y, self.x = protocol.grid_yx_mm()
        self.pixel = protocol.pixel_mm
        self.kind = ssp_kind(protocol.slice_profile)
        self.thick = protocol.slice_thickness_mm
        self.z_support = ssp_half_support_mm(self.thick, self.kind)
        self.blur_px = int(math.ceil(4.0 * protocol.psf_sigma_mm / self.pixel)) + 2
        self.phase = float(phase)
        self.lesions = list(lesions)
        self.offset_yx = offset_yx
        self.k_hu = protocol.ha_hu_per_mg     # the given HU per mg HA/cm3 or the kVp table's
        helical = None if protocol.gated else protocol.table_speed_mm_s
        any_motion = any(l.motion.moves for l in self.lesions)
        m = int(n_time_samples) if any_motion else 1
        # one owner of the heart rate: the phantom's heart times the acquisition, so the
        # phase (gating_phase when gated) is a phase of the lesions' own cardiac cycle
        self.heart_rate_bpm = phantom.heart_rate_bpm
        kw = dict(temporal_resolution_ms=protocol.temporal_resolution_ms, n_samples=m,
                  heart_rate_bpm=(NOMINAL_HEART_RATE_BPM if self.heart_rate_bpm is None
                                  else self.heart_rate_bpm))
        if protocol.gated:
            self.times = acquisition_times(self.z, gated=True, gating_phase=self.phase, **kw)
        else:
            self.times = acquisition_times(self.z, gated=False, start_phase=self.phase,
                                           table_speed_mm_s=helical, **kw)
        self.per_slice_times = not protocol.gated
        self.t_mid = float(self.times.mean())

    # -- geometry of one lesion -------------------------------------------------
    def displacement(self, lesion):
        """(G, M, 3) displacements and whether each slice has its own group."""
        mot = lesion.motion
        if not mot.moves:
            return np.zeros((1, 1, 3)), False
        if isinstance(mot, ConstantVelocity) and mot.t_ref_s is None:
            mot = ConstantVelocity(mot.velocity_mm_s, t_ref_s=self.t_mid)
        t = self.times if self.per_slice_times else self.times[:1]
        return np.ascontiguousarray(mot.displacement_mm(t)), self.per_slice_times

    def _box(self, lesion, disp, grow_yx, grow_z):
        lo, hi = lesion.shape.bounding_box_mm()
        d = disp.reshape(-1, 3)
        lo = np.asarray(lo) + d.min(0)
        hi = np.asarray(hi) + d.max(0)
        k0 = np.searchsorted(self.z, lo[0] - grow_z, side="left")
        k1 = np.searchsorted(self.z, hi[0] + grow_z, side="right")
        j0 = np.searchsorted(self.y, lo[1] - grow_yx, side="left")
        j1 = np.searchsorted(self.y, hi[1] + grow_yx, side="right")
        i0 = np.searchsorted(self.x, lo[2] - grow_yx, side="left")
        i1 = np.searchsorted(self.x, hi[2] + grow_yx, side="right")
        return int(k0), int(k1), int(j0), int(j1), int(i0), int(i1)

    def _occupancy(self, lesion, disp, per_slice, box, thick, kind):
        k0, k1, j0, j1, i0, i1 = box
        if k1 <= k0 or j1 <= j0 or i1 <= i0:
            return None
        if per_slice:
            d = disp[k0:k1]
            group = np.arange(k1 - k0, dtype=np.int64)
        else:
            d = disp
            group = np.zeros(k1 - k0, dtype=np.int64)
        return shape_occupancy(lesion.shape, self.z[k0:k1], self.y[j0:j1], self.x[i0:i1],
                               pixel_mm=self.pixel, thickness_mm=thick, kind=kind,
                               displacements=d, group=group, nsub=self.nsub)

    def _unblurred(self, i):
        les = self.lesions[i]
        disp, per_slice = self.displacement(les)
        box = self._box(les, disp, self.blur_px * self.pixel + self.pixel, self.z_support)
        occ = self._occupancy(les, disp, per_slice, box, self.thick, self.kind)
        if occ is None:
            return box, None
        return box, (occ * (self.k_hu * les.density_mg_cm3)).astype(np.float32)

    def lesion_contributions(self):
        """[(box, float32 blurred HU contribution or None)] of every lesion, in order.

        The occupancy kernels (serial, nogil) run on a small thread pool; the
        blur runs afterwards in this thread. Each lesion is computed on its own,
        so the bytes do not depend on the number of threads.
        """
        out = _map(self._unblurred, range(len(self.lesions)))
        for _box, c in out:
            if c is not None:
                blur_inplane(c, self.protocol.psf_fwhm_mm, self.pixel, out=c)
        return out

    def fraction_map(self, i):
        """Truth occupancy of lesion i (box slice profile of width = increment) and the
        grid index of its first voxel."""
        les = self.lesions[i]
        disp, per_slice = self.displacement(les)
        inc = self.protocol.increment_mm
        box = self._box(les, disp, self.pixel, 0.5 * inc)
        occ = self._occupancy(les, disp, per_slice, box, inc, BOX)
        k0, k1, j0, j1, i0, i1 = box
        if occ is None:
            occ = np.zeros((max(k1 - k0, 0), max(j1 - j0, 0), max(i1 - i0, 0)))
        return occ, (k0, j0, i0)

    def background(self):
        """Blurred 2D background of the body and the rods that run through every slice."""
        p = self.protocol
        static = tuple(r for r in self.rods if r.z_range_mm is None)
        return _background(self.phantom.body, static, p.matrix, p.pixel_mm, p.kvp,
                           p.psf_fwhm_mm, self.nsub, tuple(float(v) for v in self.offset_yx),
                           p.hu_per_mg_ha)

    def rod_sections(self):
        """[(window (j0, j1, i0, i1), float32 difference map, float32 slice weights (K,))]
        of every rod limited to an axial section, in rod order.

        The difference map is the blurred background with the rod minus without it
        (blur is linear, and outside the rod's pixels the two renders are equal), on a
        window around the rod grown by the PSF support. The weight of slice k is the
        fraction of its slice sensitivity profile inside the rod's section,
        ``S(z_hi - z_k) - S(z_lo - z_k)`` (:func:`phantoms._ssp.ssp_cdf`).
        """
        p = self.protocol
        static = tuple(r for r in self.rods if r.z_range_mm is None)
        out = []
        for rod in self.rods:
            if rod.z_range_mm is None:
                continue
            lo, hi = rod.z_range_mm
            w = np.array([ssp_cdf(hi - zk, self.thick, self.kind)
                          - ssp_cdf(lo - zk, self.thick, self.kind) for zk in self.z])
            if not np.any(w > 0):
                continue
            window, diff = _rod_difference(self.phantom.body, static, rod, p.matrix, p.pixel_mm,
                                           p.kvp, p.psf_fwhm_mm, self.nsub,
                                           tuple(float(v) for v in self.offset_yx), p.hu_per_mg_ha)
            if diff is not None:
                out.append((window, diff, w.astype(np.float32)))
        return out

    def paint_background(self, out, k0, j0, i0):
        """Write the background of the grid block starting at voxel (k0, j0, i0) into ``out``.

        The 2D background in every slice, plus each axial-section rod's difference
        map times its slice weight. The arithmetic of a voxel does not depend on the
        block, so a patch equals the same cut-out of the full scan bit for bit.
        """
        K, J, I = out.shape
        out[...] = self.background()[None, j0:j0 + J, i0:i0 + I]
        for (a0, a1, b0, b1), diff, w in self.rod_sections():
            ks = np.flatnonzero(w[k0:k0 + K] > 0)
            y0, y1 = max(a0, j0), min(a1, j0 + J)
            x0, x1 = max(b0, i0), min(b1, i0 + I)
            if ks.size == 0 or y1 <= y0 or x1 <= x0:
                continue
            d = diff[y0 - a0:y1 - a0, x0 - b0:x1 - b0]
            for k in ks:
                out[k, y0 - j0:y1 - j0, x0 - i0:x1 - i0] += w[k0 + k] * d
        return out

    # -- outputs ---------------------------------------------------------------------
    def attrs(self, seed, noise, extra):
        a = dict(self.protocol.as_attrs())
        a.update(units="HU", seed=int(seed), phantom=self.phantom.name,
                 noise_added=int(bool(noise)), cardiac_phase=self.phase,
                 n_time_samples=int(self.times.shape[1]))
        if self.heart_rate_bpm is not None:     # a phantom without cardiac motion has none
            a["heart_rate_bpm"] = self.heart_rate_bpm
        a.update(extra)
        return a

    def truth(self, attrs, fraction_maps=True):
        # the body region around each lesion (the insert's material for lesions in it)
        body = self.phantom.body
        tissue = []
        for les in self.phantom.lesions:
            lo, hi = les.shape.bounding_box_mm()
            tissue.append(float(body.region_hu(0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2]))))
        dhu = [self.k_hu * l.density_mg_cm3 for l in self.lesions]
        fr = _map(self.fraction_map, range(len(self.lesions))) if fraction_maps else None
        grid = ((self.z[0], self.y[0], self.x[0]),
                (self.protocol.increment_mm, self.pixel, self.pixel),
                (len(self.z), len(self.y), len(self.x)))
        return _build_truth(self.lesions, self.phantom.lesions, dhu, tissue, fr, grid, attrs)


@functools.lru_cache(maxsize=8)
def _background(body, rods, matrix, pixel_mm, kvp, psf_fwhm_mm, nsub, offset_yx,
                hu_per_mg_ha=None):
    """Blurred 2D background (float32, read-only), cached: a study simulating many
    scans or patch sets of one body reuses it. HA rods follow ``hu_per_mg_ha`` (the
    protocol's given HU per mg HA/cm3; None: the kVp table), as the lesions do."""
    c = (np.arange(matrix, dtype=np.float64) - 0.5 * (matrix - 1)) * pixel_mm
    bg = render_cross_section(body, rods, y_mm=c, x_mm=c, kvp=kvp, nsub=nsub,
                              offset_yx_mm=offset_yx, hu_per_mg_ha=hu_per_mg_ha).astype(np.float32)
    blur_inplane(bg, psf_fwhm_mm, pixel_mm, out=bg)
    bg.setflags(write=False)
    return bg


@functools.lru_cache(maxsize=16)
def _rod_difference(body, static_rods, rod, matrix, pixel_mm, kvp, psf_fwhm_mm, nsub, offset_yx,
                    hu_per_mg_ha=None):
    """Blurred (with rod - without rod) on a window around the rod, cached.

    Returns ``((j0, j1, i0, i1), float32 read-only map)``, or ``(None, None)`` when
    the rod misses the grid. Both renders paint the body and ``static_rods``; the
    window is the rod's box grown by the blur's support plus two pixels, so the
    blurred difference, which is zero outside the rod before the blur, is complete
    inside it and its 'nearest' boundary sees zeros only.
    """
    c = (np.arange(matrix, dtype=np.float64) - 0.5 * (matrix - 1)) * pixel_mm
    grow = (gaussian_taps(psf_fwhm_mm, pixel_mm).size // 2 + 2) * pixel_mm + rod.radius_mm
    cy, cx = rod.centre_yx_mm[0] + offset_yx[0], rod.centre_yx_mm[1] + offset_yx[1]
    j0, j1 = (int(v) for v in np.searchsorted(c, (cy - grow, cy + grow), side="left"))
    i0, i1 = (int(v) for v in np.searchsorted(c, (cx - grow, cx + grow), side="left"))
    if j1 <= j0 or i1 <= i0:
        return None, None
    kw = dict(y_mm=c[j0:j1], x_mm=c[i0:i1], kvp=kvp, nsub=nsub, offset_yx_mm=offset_yx,
              hu_per_mg_ha=hu_per_mg_ha)
    diff = (render_cross_section(body, (*static_rods, rod), **kw)
            - render_cross_section(body, static_rods, **kw)).astype(np.float32)
    blur_inplane(diff, psf_fwhm_mm, pixel_mm, out=diff)
    diff.setflags(write=False)
    return (j0, j1, i0, i1), diff


def _make_scan(values, z, y, x, attrs):
    # plain coordinate arrays, as pvcalc.make_scan builds them (units mm by convention;
    # per-coordinate attrs would make xarray deep-copy them: 5 ms per patch instead of 0.7)
    # (prebuilt pandas indexes: 0.3 ms per patch instead of 0.5)
    axes = (("z", np.asarray(z)), ("y", np.asarray(y)), ("x", np.asarray(x)))
    coords = xr.Coordinates({d: xr.Variable(d, a) for d, a in axes},
                            indexes={d: xr.indexes.PandasIndex(pd.Index(a), d) for d, a in axes})
    return xr.DataArray(values, dims=("z", "y", "x"), coords=coords, attrs=attrs)
