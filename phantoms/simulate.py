"""The simulation pipeline: phantom + protocol -> (scan, truth).

Steps (``docs/simulator.md`` has the physics and every default):

1. Grid: ``protocol.matrix`` x ``protocol.pixel_mm`` in-plane, centred on the
   body (x = y = 0); slices every ``increment_mm`` covering the phantom's
   ``z_extent_mm`` (``Protocol.slice_positions_mm``).
2. Acquisition times of every slice (:func:`phantoms.motion.acquisition_times`):
   gated at ``gating_phase``, or non-gated from a random start phase with the
   helical table speed, ``n_time_samples`` samples per temporal window. Phases
   are fractions of the R-R interval of the phantom's heart
   (``Phantom.heart_rate_bpm``, the rate of its lesions' ``CardiacMotion``), so
   a gated scan samples ``gating_phase`` of the lesions' own cycle.
3. Background: body and rods rendered once in 2D with in-plane partial volume,
   blurred by the in-plane PSF, broadcast to every slice. A rod limited to an
   axial section (``Rod.z_range_mm``) adds, in each slice, its blurred 2D
   difference map (with minus without the rod) times the fraction of the
   slice's sensitivity profile inside the section.
4. Each lesion: the SSP-weighted, pixel-averaged, time-averaged occupancy on a
   patch of the scan grid (bounding box over the motion, grown by the PSF and
   SSP supports), times ``dHU = k(kVp) x density``, blurred in-plane and added.
   Blur is linear, so this equals blurring the whole object.
5. Noise: ``phantoms.noise.noise_field`` (correlated, counter-based generator)
   added in place.

Seeds: ``numpy.random.SeedSequence(seed)`` spawns three children, for the
repositioning, the cardiac phase and the noise, so each part is reproducible
on its own; repeat ``index`` uses child ``index`` of ``SeedSequence(seed)``
(:func:`simulate_repeat` computes one repeat alone, :func:`repeat` several).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ._scene import _make_scan, _Scene
from .motion import ConstantVelocity
from .noise import noise_field
from .phantom import Lesion, Phantom
from .protocol import Protocol

#: Defaults of the interscan repositioning (see :func:`repeat`).
TRANSLATION_SD_MM = (1.5, 1.0, 1.0)
ROTATION_SD_DEG = 1.0
GATING_JITTER_SD = 0.02


def _check_inputs(phantom, protocol, seed):
    if not isinstance(phantom, Phantom):
        raise TypeError(f"phantom must be a phantoms.Phantom, got {type(phantom).__name__}")
    if not isinstance(protocol, Protocol):
        raise TypeError("protocol must be a phantoms.Protocol (e.g. "
                        f"get_protocol('calcium_scoring')), got {type(protocol).__name__}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}; pass e.g. seed=0")


def _check_options(n_time_samples, nsub):
    if not (isinstance(n_time_samples, (int, np.integer)) and 1 <= n_time_samples <= 256):
        raise ValueError(f"n_time_samples must be an integer in 1-256, got {n_time_samples!r}")
    if not (isinstance(nsub, (int, np.integer)) and 1 <= nsub <= 16):
        raise ValueError(f"nsub must be an integer in 1-16, got {nsub!r}")


def _seed_int(ss):
    return int(ss.generate_state(1, np.uint64)[0])


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
        rods = tuple(_move_rod(r, rot, float(trans[0]), about) for r in rods)
    scene = _Scene(phantom, protocol, phase=phase, lesions=lesions, rods=rods,
                   offset_yx=(float(trans[1]), float(trans[2])),
                   n_time_samples=n_time_samples, nsub=nsub)
    extra = dict(translation_z_mm=float(trans[0]), translation_y_mm=float(trans[1]),
                 translation_x_mm=float(trans[2]), rotation_deg=angle,
                 rotation_axis_z=float(axis[0]), rotation_axis_y=float(axis[1]),
                 rotation_axis_x=float(axis[2]))
    # where each calibration rod ends up (rotation, then the in-plane translation),
    # so that an analysis can place its ROIs without redoing the transform
    for i, rod in enumerate(rods):
        extra[f"rod_{i}_centre_y_mm"] = float(rod.centre_yx_mm[0] + trans[1])
        extra[f"rod_{i}_centre_x_mm"] = float(rod.centre_yx_mm[1] + trans[2])
        if rod.z_range_mm is not None:      # its axial section in this scan
            extra[f"rod_{i}_z_lo_mm"], extra[f"rod_{i}_z_hi_mm"] = rod.z_range_mm
    body = phantom.body
    if body.insert_diameter_mm is not None:   # the insert translates with the body
        extra.update(insert_diameter_mm=body.insert_diameter_mm,
                     insert_centre_y_mm=float(body.centre_yx_mm[0] + trans[1]),
                     insert_centre_x_mm=float(body.centre_yx_mm[1] + trans[2]),
                     insert_rotation_deg=body.insert_rotation_deg)
    return scene, extra


def _move_rod(rod, rot, shift_z, about):
    """A rod after the repositioning's rotation (about ``about``) and z shift.

    A rod cannot tilt: it follows the rotation of one point, its centre in the
    phantom's mid plane (a rod through the whole scan) or the centre of its axial
    section, whose z range moves with that point and the z shift. The in-plane
    translation is applied when rendering (as for the body).
    """
    if rod.z_range_mm is None:
        c = rot @ (np.array([about[0], *rod.centre_yx_mm]) - about) + about
        return dataclasses.replace(rod, centre_yx_mm=tuple(c[1:]))
    lo, hi = rod.z_range_mm
    mid = 0.5 * (lo + hi)
    c = rot @ (np.array([mid, *rod.centre_yx_mm]) - about) + about
    dz = float(c[0] - mid) + shift_z
    return dataclasses.replace(rod, centre_yx_mm=tuple(c[1:]), z_range_mm=(lo + dz, hi + dz))


def _full(phantom, protocol, ss, seed, noise, fraction_maps, **kw):
    scene, extra = _scene(phantom, protocol, ss, **kw)
    _, _, noise_ss = ss.spawn(3)
    shape = (len(scene.z), len(scene.y), len(scene.x))
    out = np.empty(shape, dtype=np.float32)
    scene.paint_background(out, 0, 0, 0)
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
    protocol : phantoms.Protocol
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
        Include the lesions' voxel fractions in the truth (default True; see
        :func:`phantoms.truth.fraction_map`).

    Returns
    -------
    scan : xarray.DataArray
        float32 HU, dims (z, y, x), mm coordinates, attrs from the protocol plus
        ``units``, ``seed``, ``phantom``, ``noise_added``, ``cardiac_phase`` (of
        the first slice's window centre, as a fraction of R-R) and, when the
        phantom has cardiac motion, ``heart_rate_bpm`` (the phantom's).
    truth : xarray.Dataset
        Indexed by ``lesion`` (schema in :mod:`phantoms.truth`): ``volume_mm3``,
        ``mass_mg``, ``density_mg_cm3``, ``hu``, ``delta_hu``, shape and motion
        parameters, ``centre_*_mm``, the scan grid and each lesion's voxel
        fractions. Read it with :func:`phantoms.truth.lesion_table` and
        :func:`phantoms.truth.fraction_map`.

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
    contribs = scene.lesion_contributions()
    cboxes = np.array([b for b, _ in contribs], dtype=np.int64).reshape(-1, 6)
    boxes = _patch_boxes(scene, float(margin_mm))
    attrs = scene.attrs(seed, noise, extra)
    nseed = _seed_int(noise_ss)
    patches = []
    for n, (k0, k1, j0, j1, i0, i1) in enumerate(boxes):
        p = np.empty((k1 - k0, j1 - j0, i1 - i0), dtype=np.float32)
        scene.paint_background(p, k0, j0, i0)
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


def _check_repeat_options(translation_sd_mm, rotation_sd_deg, gating_jitter_sd):
    t = np.asarray(translation_sd_mm, dtype=float)
    if t.shape != (3,) or np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError(f"translation_sd_mm must be 3 non-negative SDs (z, y, x) in mm, got "
                         f"{translation_sd_mm!r}")
    for name, v in (("rotation_sd_deg", rotation_sd_deg), ("gating_jitter_sd", gating_jitter_sd)):
        if isinstance(v, (bool, np.bool_)) or not (
                isinstance(v, (int, float, np.integer, np.floating)) and 0 <= v < 90):
            raise ValueError(f"{name} must be a non-negative number below 90, got {v!r}")
    return tuple(float(v) for v in t)


def _check_index(index):
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"index must be a non-negative integer (0-based repeat number), got "
                        f"{index!r}; pass e.g. index=0")
    if index < 0:
        raise ValueError(f"index must be >= 0 (0-based repeat number), got {index}")


def simulate_repeat(phantom, protocol, *, seed, index, reposition=True, noise=True,
                    translation_sd_mm=TRANSLATION_SD_MM, rotation_sd_deg=ROTATION_SD_DEG,
                    gating_jitter_sd=GATING_JITTER_SD, n_time_samples=16, nsub=4,
                    fraction_maps=True):
    """One repeated scan of a phantom, computed alone (a pure function of its arguments).

    Returns repeat ``index`` of :func:`repeat` with the same ``seed`` and
    options, bit for bit, without simulating the other repeats: a study can
    compute (or skip) each repeat as its own task.

    Parameters
    ----------
    phantom, protocol, noise, n_time_samples, nsub, fraction_maps
        As :func:`simulate`.
    seed : int
        Seed of the series of repeats; repeat ``index`` uses child ``index``
        of ``numpy.random.SeedSequence(seed)``.
    index : int
        0-based number of the repeat in the series:
        ``simulate_repeat(..., index=k)`` equals ``repeat(..., n_repeats=n)[k]``
        for every ``n > k``.
    reposition, translation_sd_mm, rotation_sd_deg, gating_jitter_sd
        As :func:`repeat`.

    Returns
    -------
    scan : xarray.DataArray
        As :func:`simulate`, plus attr ``repeat`` = ``index`` and the
        repositioning (``translation_*_mm``, ``rotation_deg``,
        ``rotation_axis_*``, ``rod_<i>_centre_*_mm``, for a rod limited to an
        axial section ``rod_<i>_z_lo_mm`` / ``rod_<i>_z_hi_mm``, and for a body
        with an insert ``insert_centre_*_mm``, ``insert_diameter_mm``,
        ``insert_rotation_deg``).
    truth : xarray.Dataset
        As :func:`simulate` (see :mod:`phantoms.truth`), positions after the
        repositioning; attr ``repeat`` = ``index``.

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0)],
    ...              z_extent_mm=(-9, 9))
    >>> p = get_protocol("calcium_scoring", matrix=64)
    >>> scan, truth = simulate_repeat(ph, p, seed=3, index=1, fraction_maps=False)
    >>> scan.attrs["repeat"], round(float(truth.mass_mg[0]), 3)
    (1, 13.404)
    """
    _check_inputs(phantom, protocol, seed)
    _check_options(n_time_samples, nsub)
    _check_index(index)
    t = _check_repeat_options(translation_sd_mm, rotation_sd_deg, gating_jitter_sd)
    # child ``index`` of SeedSequence(seed): the same object SeedSequence(seed).spawn(n)[index]
    # gives for any n > index (spawn keys are (0,), (1,), ...)
    child = np.random.SeedSequence(int(seed), spawn_key=(int(index),))
    scan, truth = _full(phantom, protocol, child, seed, noise, fraction_maps,
                        reposition=reposition, translation_sd_mm=t,
                        rotation_sd_deg=float(rotation_sd_deg),
                        gating_jitter_sd=float(gating_jitter_sd),
                        n_time_samples=n_time_samples, nsub=nsub)
    scan.attrs["repeat"] = int(index)
    truth.attrs["repeat"] = int(index)
    return scan, truth


def repeat(phantom, protocol, *, seed, n_repeats, reposition=True, noise=True,
           translation_sd_mm=TRANSLATION_SD_MM, rotation_sd_deg=ROTATION_SD_DEG,
           gating_jitter_sd=GATING_JITTER_SD, n_time_samples=16, nsub=4, fraction_maps=True):
    """Repeated scans of one phantom (interscan variation).

    Each repeat draws a new noise realisation, a new repositioning and a new
    cardiac phase; the truth (volumes, masses, densities) is unchanged, only
    positions are updated and the repositioning is recorded in the attrs.
    Repeat ``r`` is :func:`simulate_repeat` with ``index=r``; a study that
    computes repeats as separate tasks (or skips finished ones) calls that.

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
        rotation of their centre in the mid plane, or of the centre of their
        axial section (they stay parallel to z; the section also moves with the
        z translation); the body ellipses only translate.
    gating_jitter_sd : float, optional
        SD of the gated phase jitter as a fraction of R-R, default 0.02.
        Non-gated scans draw a uniformly random phase instead.

    Returns
    -------
    list of (scan, truth)
        ``n_repeats`` pairs in repeat order (a list, so that the repeats can
        be compared with each other; each is computed on its own).

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
    if isinstance(n_repeats, (bool, np.bool_)) or not (
            isinstance(n_repeats, (int, np.integer)) and n_repeats >= 1):
        raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}")
    _check_repeat_options(translation_sd_mm, rotation_sd_deg, gating_jitter_sd)
    return [simulate_repeat(phantom, protocol, seed=seed, index=r, reposition=reposition,
                            noise=noise, translation_sd_mm=translation_sd_mm,
                            rotation_sd_deg=rotation_sd_deg, gating_jitter_sd=gating_jitter_sd,
                            n_time_samples=n_time_samples, nsub=nsub, fraction_maps=fraction_maps)
            for r in range(int(n_repeats))]
