"""The simulation pipeline: phantom + protocol -> (scan, truth).

Steps (``docs/simulator.md`` has the physics and every default):

1. Grid: ``protocol.matrix`` x ``protocol.pixel_mm`` in-plane, centred on the
   body (x = y = 0); slices every ``increment_mm`` covering the phantom's
   ``z_extent_mm`` (``Protocol.slice_positions_mm``).
2. Acquisition times of every slice (:func:`phantoms.motion.acquisition_times`):
   gated at ``gating_phase``, or non-gated from a random start phase with the
   helical table speed, ``n_time_samples`` samples per temporal window.
3. Background: body and rods rendered once in 2D with in-plane partial volume,
   blurred by the in-plane PSF, broadcast to every slice.
4. Each lesion: the SSP-weighted, pixel-averaged, time-averaged occupancy on a
   patch of the scan grid (bounding box over the motion, grown by the PSF and
   SSP supports), times ``dHU = k(kVp) x density``, blurred in-plane and added.
   Blur is linear, so this equals blurring the whole object.
5. Noise: ``phantoms.noise.noise_field`` (correlated, counter-based generator)
   added in place.

Seeds: ``numpy.random.SeedSequence(seed)`` spawns three children, for the
repositioning, the cardiac phase and the noise, so each part is reproducible
on its own; :func:`repeat` first spawns one child per repeat.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math

import numba

import numpy as np
import pandas as pd
import xarray as xr

from . import _render_kernels as _rk
from ._ssp import BOX, ssp_half_support_mm, ssp_kind
from ._truth import build_truth
from .body import render_cross_section
from .materials import hu_per_mg_cm3
from .motion import ConstantVelocity, acquisition_times
from .noise import noise_field
from .phantom import Lesion, Phantom
from .scanner import Protocol, blur_inplane

#: Defaults of the interscan repositioning (see :func:`repeat`).
TRANSLATION_SD_MM = (1.5, 1.0, 1.0)
ROTATION_SD_DEG = 1.0
GATING_JITTER_SD = 0.02


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


def _check_inputs(phantom, protocol, seed):
    if not isinstance(phantom, Phantom):
        raise TypeError(f"phantom must be a phantoms.Phantom, got {type(phantom).__name__}")
    if not isinstance(protocol, Protocol):
        raise TypeError("protocol must be a phantoms.scanner.Protocol (e.g. "
                        f"get_protocol('calcium_scoring')), got {type(protocol).__name__}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}; pass e.g. seed=0")


def _check_options(n_time_samples, nsub):
    if not (isinstance(n_time_samples, (int, np.integer)) and 1 <= n_time_samples <= 256):
        raise ValueError(f"n_time_samples must be an integer in 1-256, got {n_time_samples!r}")
    if not (isinstance(nsub, (int, np.integer)) and 1 <= nsub <= 16):
        raise ValueError(f"nsub must be an integer in 1-16, got {nsub!r}")


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


def _seed_int(ss):
    return int(ss.generate_state(1, np.uint64)[0])


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
        self.k_hu = hu_per_mg_cm3(protocol.kvp)
        helical = None if protocol.gated else protocol.table_speed_mm_s
        any_motion = any(l.motion.moves for l in self.lesions)
        m = int(n_time_samples) if any_motion else 1
        kw = dict(temporal_resolution_ms=protocol.temporal_resolution_ms, n_samples=m,
                  heart_rate_bpm=protocol.heart_rate_bpm)
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
        for box, c in out:
            if c is not None:
                blur_inplane(c, self.protocol.psf_fwhm_mm, self.pixel, out=c)
        return out

    def fraction_map(self, i):
        """Truth occupancy of lesion i with a box profile of width = increment."""
        les = self.lesions[i]
        disp, per_slice = self.displacement(les)
        inc = self.protocol.increment_mm
        box = self._box(les, disp, self.pixel, 0.5 * inc)
        occ = self._occupancy(les, disp, per_slice, box, inc, BOX)
        k0, k1, j0, j1, i0, i1 = box
        if occ is None:
            occ = np.zeros((max(k1 - k0, 0), max(j1 - j0, 0), max(i1 - i0, 0)))
        return occ, self.z[k0:k1], self.y[j0:j1], self.x[i0:i1]

    def background(self):
        p = self.protocol
        return _background(self.phantom.body, self.rods, p.matrix, p.pixel_mm, p.kvp,
                           p.psf_fwhm_mm, self.nsub, tuple(float(v) for v in self.offset_yx))

    # -- outputs ---------------------------------------------------------------------
    def attrs(self, seed, noise, extra):
        a = dict(self.protocol.as_attrs())
        a.update(units="HU", seed=int(seed), phantom=self.phantom.name,
                 noise_added=int(bool(noise)), cardiac_phase=self.phase,
                 n_time_samples=int(self.times.shape[1]))
        a.update(extra)
        return a

    def truth(self, attrs, fraction_maps=True):
        tissue = [self.phantom.body.tissue_hu] * len(self.lesions)
        dhu = [self.k_hu * l.density_mg_cm3 for l in self.lesions]
        fr = _map(self.fraction_map, range(len(self.lesions))) if fraction_maps else None
        vox = self.pixel * self.pixel * self.protocol.increment_mm
        return build_truth(self.lesions, self.phantom.lesions, dhu, tissue, fr, vox, attrs)


@functools.lru_cache(maxsize=8)
def _background(body, rods, matrix, pixel_mm, kvp, psf_fwhm_mm, nsub, offset_yx):
    """Blurred 2D background (float32, read-only), cached: a study simulating many
    scans or patch sets of one body reuses it."""
    c = (np.arange(matrix, dtype=np.float64) - 0.5 * (matrix - 1)) * pixel_mm
    bg = render_cross_section(body, rods, y_mm=c, x_mm=c, kvp=kvp, nsub=nsub,
                              offset_yx_mm=offset_yx).astype(np.float32)
    blur_inplane(bg, psf_fwhm_mm, pixel_mm, out=bg)
    bg.setflags(write=False)
    return bg


def _make_scan(values, z, y, x, attrs):
    # plain coordinate arrays, as pvcalc.make_scan builds them (units mm by convention;
    # per-coordinate attrs would make xarray deep-copy them: 5 ms per patch instead of 0.7)
    # (prebuilt pandas indexes: 0.3 ms per patch instead of 0.5)
    axes = (("z", np.asarray(z)), ("y", np.asarray(y)), ("x", np.asarray(x)))
    coords = xr.Coordinates({d: xr.Variable(d, a) for d, a in axes},
                            indexes={d: xr.indexes.PandasIndex(pd.Index(a), d) for d, a in axes})
    return xr.DataArray(values, dims=("z", "y", "x"), coords=coords, attrs=attrs)


def _transform(lesions, rotation, translation, about):
    out = []
    for les in lesions:
        shape = les.shape
        mot = les.motion
        if rotation is not None:
            shape = shape.rotated(rotation, about)
            if isinstance(mot, ConstantVelocity):
                mot = ConstantVelocity(tuple(rotation @ np.asarray(mot.velocity_mm_s)),
                                       t_ref_s=mot.t_ref_s)
            elif getattr(mot, "direction", None) is not None:
                mot = dataclasses.replace(mot, direction=tuple(rotation @ np.asarray(mot.direction)))
        shape = shape.translated(translation)
        out.append(Lesion(shape, les.density_mg_cm3, mot, les.name))
    return out


def _scene(phantom, protocol, ss, *, reposition, translation_sd_mm, rotation_sd_deg,
           gating_jitter_sd, n_time_samples, nsub):
    pos_ss, phase_ss, _ = ss.spawn(3)
    rot = None
    trans = np.zeros(3)
    angle = 0.0
    axis = np.array([1.0, 0.0, 0.0])
    if reposition:
        rng = np.random.default_rng(pos_ss)
        trans = rng.normal(0.0, 1.0, 3) * np.asarray(translation_sd_mm, dtype=float)
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = float(rng.normal(0.0, rotation_sd_deg))
        from scipy.spatial.transform import Rotation
        rot = Rotation.from_rotvec(axis * math.radians(angle)).as_matrix()
    prng = np.random.default_rng(phase_ss)
    if protocol.gated:
        phase = protocol.gating_phase
        if gating_jitter_sd > 0:
            phase = float(np.mod(phase + prng.normal(0.0, gating_jitter_sd), 1.0))
    else:
        phase = float(prng.uniform(0.0, 1.0))
    about = (0.5 * sum(phantom.z_extent_mm), 0.0, 0.0)
    lesions = _transform(phantom.lesions, rot, trans, about) if reposition else list(phantom.lesions)
    rods = phantom.rods
    if rot is not None:
        # rods follow the rotation through their centre in the phantom's mid plane
        # (a z-invariant rod cannot tilt); the body ellipses only translate
        rods = tuple(dataclasses.replace(r, centre_yx_mm=tuple(
            (rot @ (np.array([about[0], *r.centre_yx_mm]) - about) + about)[1:]))
            for r in rods)
    scene = _Scene(phantom, protocol, phase=phase, lesions=lesions, rods=rods,
                   offset_yx=(float(trans[1]), float(trans[2])),
                   n_time_samples=n_time_samples, nsub=nsub)
    extra = dict(translation_z_mm=float(trans[0]), translation_y_mm=float(trans[1]),
                 translation_x_mm=float(trans[2]), rotation_deg=angle,
                 rotation_axis_z=float(axis[0]), rotation_axis_y=float(axis[1]),
                 rotation_axis_x=float(axis[2]))
    return scene, extra


def _full(phantom, protocol, ss, seed, noise, fraction_maps, **kw):
    scene, extra = _scene(phantom, protocol, ss, **kw)
    _, _, noise_ss = ss.spawn(3)
    shape = (len(scene.z), len(scene.y), len(scene.x))
    out = np.empty(shape, dtype=np.float32)
    out[...] = scene.background()[None]
    for (k0, k1, j0, j1, i0, i1), c in scene.lesion_contributions():
        if c is not None:
            out[k0:k1, j0:j1, i0:i1] += c
    if noise and protocol.noise_sd_hu > 0:
        noise_field(shape, protocol, seed=_seed_int(noise_ss), stream=0, out=out,
                    accumulate=True)
    attrs = scene.attrs(seed, noise, extra)
    scan = _make_scan(out, scene.z, scene.y, scene.x, attrs)
    return scan, scene.truth(attrs, fraction_maps)


def simulate(phantom, protocol, *, seed, noise=True, mode="full", n_time_samples=16,
             nsub=4, fraction_maps=True):
    """Simulate one CT scan of a phantom and return it with its ground truth.

    Parameters
    ----------
    phantom : Phantom
        Body, rods and lesions (nominal positions: no repositioning here).
    protocol : phantoms.scanner.Protocol
        Acquisition and reconstruction (see ``phantoms.get_protocol``).
    seed : int
        Seed of everything random (non-gated cardiac phase, noise).
    noise : bool, optional
        Add correlated noise (default True).
    mode : {"full", "patches"}, optional
        "patches" returns :func:`simulate_patches` instead.
    n_time_samples : int, optional
        Time samples per acquisition window for moving lesions (default 16).
    nsub : int, optional
        In-plane supersampling per axis of boundary pixels (default 4).
    fraction_maps : bool, optional
        Include per-lesion fraction maps in the truth (default True).

    Returns
    -------
    scan : xarray.DataArray
        float32 HU, dims (z, y, x), mm coordinates, attrs from the protocol plus
        ``units``, ``seed``, ``phantom``, ``noise_added``, ``cardiac_phase``.
    truth : xarray.Dataset
        Indexed by ``lesion``: ``volume_mm3``, ``mass_mg``, ``density_mg_cm3``,
        ``hu``, ``delta_hu``, shape and motion parameters, ``centre_*_mm``, and
        ``fraction_<i>`` patches on the scan grid.

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0)],
    ...              z_extent_mm=(-6, 6))
    >>> scan, truth = simulate(ph, get_protocol("calcium_scoring", matrix=64), seed=1)
    >>> scan.shape, scan.dtype.name, round(float(truth.volume_mm3[0]), 2)
    ((4, 64, 64), 'float32', 33.51)
    """
    _check_inputs(phantom, protocol, seed)
    _check_options(n_time_samples, nsub)
    if mode == "patches":
        return simulate_patches(phantom, protocol, seed=seed, noise=noise,
                                n_time_samples=n_time_samples, nsub=nsub,
                                fraction_maps=fraction_maps)
    if mode != "full":
        raise ValueError(f"mode must be 'full' or 'patches', got {mode!r}")
    ss = np.random.SeedSequence(int(seed))
    return _full(phantom, protocol, ss, seed, noise, fraction_maps, reposition=False,
                 translation_sd_mm=(0, 0, 0), rotation_sd_deg=0.0, gating_jitter_sd=0.0,
                 n_time_samples=n_time_samples, nsub=nsub)


def _patch_boxes(scene, margin_mm):
    boxes = []
    for les in scene.lesions:
        disp, _ = scene.displacement(les)
        boxes.append(scene._box(les, disp, margin_mm, scene.z_support + scene.protocol.increment_mm))
    return boxes


def simulate_patches(phantom, protocol, *, seed, margin_mm=None, noise=True,
                     n_time_samples=16, nsub=4, fraction_maps=True):
    """Simulate only the neighbourhood of every lesion (fast mode for large studies).

    Each patch covers the lesion's bounding box over its motion, grown in-plane
    by ``margin_mm`` and in z by the slice profile's support plus one
    increment, on the same grid as the full scan. Noise-free, a patch equals
    the same cut-out of :func:`simulate`'s scan bit for bit (neighbouring
    lesions included). Noise is drawn per patch (stream = lesion index + 1):
    same statistics as the full scan, not the same realisation.

    Parameters
    ----------
    phantom, protocol, seed, noise, n_time_samples, nsub, fraction_maps
        As :func:`simulate`.
    margin_mm : float, optional
        In-plane margin around the lesion; default ``max(3, 4 sigma_PSF + 2
        pixels)`` mm, enough local background for threshold and shell methods.

    Returns
    -------
    patches : list of xarray.DataArray
        One scan-like DataArray per lesion (attr ``lesion`` = its index).
    truth : xarray.Dataset
        As :func:`simulate`.

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0)],
    ...              z_extent_mm=(-6, 6))
    >>> patches, truth = simulate_patches(ph, get_protocol("calcium_scoring"), seed=1)
    >>> patches[0].dims, patches[0].attrs["lesion"]
    (('z', 'y', 'x'), 0)
    """
    _check_inputs(phantom, protocol, seed)
    _check_options(n_time_samples, nsub)
    ss = np.random.SeedSequence(int(seed))
    scene, extra = _scene(phantom, protocol, ss, reposition=False, translation_sd_mm=(0, 0, 0),
                          rotation_sd_deg=0.0, gating_jitter_sd=0.0,
                          n_time_samples=n_time_samples, nsub=nsub)
    _, _, noise_ss = ss.spawn(3)
    if margin_mm is None:
        margin_mm = max(3.0, 4.0 * protocol.psf_sigma_mm + 2.0 * scene.pixel)
    elif not (isinstance(margin_mm, (int, float, np.integer, np.floating))
              and math.isfinite(margin_mm) and margin_mm >= 0):
        raise ValueError(f"margin_mm must be a non-negative length in mm or None, got {margin_mm!r}")
    bg = scene.background()
    contribs = scene.lesion_contributions()
    cboxes = np.array([b for b, _ in contribs], dtype=np.int64).reshape(-1, 6)
    boxes = _patch_boxes(scene, float(margin_mm))
    attrs = scene.attrs(seed, noise, extra)
    nseed = _seed_int(noise_ss)
    patches = []
    for n, (k0, k1, j0, j1, i0, i1) in enumerate(boxes):
        p = np.empty((k1 - k0, j1 - j0, i1 - i0), dtype=np.float32)
        p[...] = bg[None, j0:j1, i0:i1]
        lo = np.maximum(cboxes[:, 0::2], (k0, j0, i0))
        hi = np.minimum(cboxes[:, 1::2], (k1, j1, i1))
        for m in np.flatnonzero(np.all(hi > lo, axis=1)):   # in lesion order, as in full mode
            c = contribs[m][1]
            if c is None:
                continue
            a0, _, b0, _, c0, _ = cboxes[m]
            (l0, l1, l2), (h0, h1, h2) = lo[m], hi[m]
            p[l0 - k0:h0 - k0, l1 - j0:h1 - j0, l2 - i0:h2 - i0] += \
                c[l0 - a0:h0 - a0, l1 - b0:h1 - b0, l2 - c0:h2 - c0]
        if noise and protocol.noise_sd_hu > 0 and p.size:
            noise_field(p.shape, protocol, seed=nseed, stream=n + 1, out=p, accumulate=True)
        pa = dict(attrs, lesion=n)
        patches.append(_make_scan(p, scene.z[k0:k1], scene.y[j0:j1], scene.x[i0:i1], pa))
    return patches, scene.truth(attrs, fraction_maps)


def repeat(phantom, protocol, *, seed, n_repeats, reposition=True, noise=True,
           translation_sd_mm=TRANSLATION_SD_MM, rotation_sd_deg=ROTATION_SD_DEG,
           gating_jitter_sd=GATING_JITTER_SD, n_time_samples=16, nsub=4, fraction_maps=True):
    """Repeated scans of one phantom (interscan variation).

    Each repeat draws a new noise realisation, a new repositioning and a new
    cardiac phase; the truth (volumes, masses, densities) is unchanged, only
    positions are updated and the repositioning is recorded in the attrs.

    Parameters
    ----------
    phantom, protocol, noise, n_time_samples, nsub, fraction_maps
        As :func:`simulate`.
    seed : int
        Seed; repeat r uses child r of ``SeedSequence(seed)``.
    n_repeats : int
        Number of scans (>= 1).
    reposition : bool, optional
        Move the phantom between scans (default True).
    translation_sd_mm : 3 floats, optional
        SD of the random translation (z, y, x), default (1.5, 1.0, 1.0) mm:
        sub-voxel in-plane and about half a slice in z, up to a few mm.
    rotation_sd_deg : float, optional
        SD of a rotation about a random axis through the phantom centre,
        default 1 degree. Lesions rotate fully; calibration rods move with the
        rotation of their centre in the mid plane (they stay parallel to z);
        the body ellipses only translate.
    gating_jitter_sd : float, optional
        SD of the gated phase jitter as a fraction of R-R, default 0.02.
        Non-gated scans draw a uniformly random phase instead.

    Returns
    -------
    list of (scan, truth)

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0)],
    ...              z_extent_mm=(-9, 9))
    >>> pairs = repeat(ph, get_protocol("calcium_scoring", matrix=64), seed=3, n_repeats=2)
    >>> [round(float(t.mass_mg[0]), 3) for _, t in pairs]
    [13.404, 13.404]
    """
    _check_inputs(phantom, protocol, seed)
    _check_options(n_time_samples, nsub)
    if not (isinstance(n_repeats, (int, np.integer)) and n_repeats >= 1):
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}")
    t = np.asarray(translation_sd_mm, dtype=float)
    if t.shape != (3,) or np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError(f"translation_sd_mm must be 3 non-negative SDs (z, y, x) in mm, got "
                         f"{translation_sd_mm!r}")
    for name, v in (("rotation_sd_deg", rotation_sd_deg), ("gating_jitter_sd", gating_jitter_sd)):
        if not (isinstance(v, (int, float, np.integer, np.floating)) and 0 <= v < 90):
            raise ValueError(f"{name} must be a non-negative number, got {v!r}")
    out = []
    for r, child in enumerate(np.random.SeedSequence(int(seed)).spawn(int(n_repeats))):
        scan, truth = _full(phantom, protocol, child, seed, noise, fraction_maps,
                            reposition=reposition, translation_sd_mm=tuple(t),
                            rotation_sd_deg=float(rotation_sd_deg),
                            gating_jitter_sd=float(gating_jitter_sd),
                            n_time_samples=n_time_samples, nsub=nsub)
        scan.attrs["repeat"] = r
        truth.attrs["repeat"] = r
        out.append((scan, truth))
    return out
