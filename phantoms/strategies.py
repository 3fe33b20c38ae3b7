"""Hypothesis strategies for property-based tests of calcium-scoring code.

Composable, importable strategies in the style of ``xarray.testing.strategies``:

- :func:`lesions` -- one :class:`~phantoms.phantom.Lesion` (shape kind, size,
  density, orientation, optional motion);
- :func:`phantoms` -- a :class:`~phantoms.phantom.Phantom` with non-overlapping
  lesions in the soft tissue of a thorax body;
- :func:`protocols` -- a :class:`~phantoms.protocol.Protocol` within physical
  ranges, starting from a preset;
- :func:`scans` -- ``(scan, truth)`` from :func:`phantoms.simulate_patches`
  (default, a few ms per example) or :func:`phantoms.simulate`.

The strategies need `hypothesis <https://hypothesis.readthedocs.io>`_, which
is only in pvcalc's ``test`` extra: ``pip install "pvcalc[test]"`` (or ``pip
install hypothesis``). ``import phantoms`` does not need it; importing this
module without it raises an ``ImportError`` that says so.

Every strategy shrinks towards the simplest case: a static sphere of 400 mg
HA/cm3, the ``calcium_scoring`` preset (3 mm contiguous slices, 120 kVp),
noise-free, seed 0. Geometry: lesions are placed in the mediastinum of the
default :class:`~phantoms.body.ThoraxBody` (|x| <= 22 mm, |y| <= 28 mm around
the body centre), on slots far enough apart that they never overlap.

Examples
--------
>>> from hypothesis import given, settings
>>> from phantoms import strategies as pst
>>> @settings(max_examples=5, database=None)
... @given(pst.scans(protocol=pst.protocols(noise=False)))
... def test_scan_is_finite(pair):
...     scan, truth = pair
...     assert bool(np.isfinite(scan).all()) and float(truth.volume_mm3[0]) > 0
>>> test_scan_is_finite()
"""

from __future__ import annotations

import math

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as err:  # hypothesis is an optional (test) dependency
    raise ImportError(
        "phantoms.strategies needs hypothesis, which is not installed; install it with "
        "pip install \"pvcalc[test]\" (or pip install hypothesis). The rest of phantoms "
        "works without it.") from err

from phantoms.body import ThoraxBody
from phantoms.motion import CardiacMotion, ConstantVelocity, Static
from phantoms.phantom import Lesion, Phantom
from phantoms.protocol import PROTOCOLS, Protocol
from phantoms.shapes import Blob, Cylinder, Ellipsoid, Sphere, Tube

#: Shape kinds in shrinking order (simplest first).
SHAPE_KINDS = ("sphere", "cylinder", "ellipsoid", "tube", "blob")
#: Largest extent of a lesion of size d (its bounding box fits in a cube of this side).
EXTENT_PER_SIZE = 1.5
#: Half-widths (y, x) in mm of the region of the default body where lesion
#: centres are placed (soft tissue between the lungs and in front of the spine).
PLACEMENT_HALF_YX_MM = (28.0, 22.0)
_PRESET_ORDER = ("calcium_scoring", "thin_slice_cscT", "low_dose_chest")


def _range(name, value, lo, hi):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (min, max) pair of numbers, got {value!r}") from None
    if not (lo <= a <= b <= hi):
        raise ValueError(f"{name} must satisfy {lo} <= min <= max <= {hi}, got {value!r}")
    return a, b


def _simple_first(default, lo, hi):
    """Floats in [lo, hi] that shrink to ``default`` (inside the range) first."""
    inner = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if lo <= default <= hi:
        return st.one_of(st.just(float(default)), inner)
    return inner


@st.composite
def _unit_vectors(draw, *, default=(1.0, 0.0, 0.0)):
    """Unit vectors (z, y, x); shrink to ``default``."""
    if not draw(st.booleans()):
        return tuple(default)
    v = draw(st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3))
    n = math.sqrt(sum(c * c for c in v))
    if n < 1e-3:
        return tuple(default)
    return tuple(c / n for c in v)


def _rotation_matrix(axis, angle):
    """Rodrigues' rotation matrix about a unit axis (z, y, x)."""
    k = np.asarray(axis, dtype=float)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


@st.composite
def lesions(draw, *, kinds=SHAPE_KINDS, size_mm=(1.0, 6.0),
            density_mg_cm3=(100.0, 1000.0), centre_mm=(0.0, 0.0, 0.0), motion=False,
            max_velocity_mm_s=30.0):
    """A lesion: shape kind, size, density, orientation and (optionally) motion.

    Parameters
    ----------
    kinds : sequence of str
        Allowed shapes among ``SHAPE_KINDS`` ("sphere", "cylinder",
        "ellipsoid", "tube", "blob"); shrinks to the first.
    size_mm : (float, float)
        Range of the nominal size d in mm: sphere diameter; cylinder diameter
        (length 0.5-1 d, shrinking to d as in the QRM inserts); ellipsoid
        largest diameter (other axes 0.5-1 d); capsule of radius d/4 and total
        length d; blob of two overlapping spheres (radii 0.27-0.35 d) spanning
        d, plus optionally a third inside. Every lesion fits in a cube of side
        1.5 d, and its smallest dimension is at least d / 2.
    density_mg_cm3 : (float, float)
        HA density range; shrinks to 400 mg/cm3 (if inside).
    centre_mm : 3 floats
        Nominal centre (z, y, x) in mm.
    motion : bool
        Allow motion (static remains the shrink target): constant velocity or
        cardiac-like, in-plane, up to ``max_velocity_mm_s``. Cardiac motion beats
        at ``CardiacMotion``'s default 60 bpm, so the lesions of one drawn phantom
        share one heart rate (a :class:`~phantoms.phantom.Phantom` has one heart).
    max_velocity_mm_s : float
        Largest speed drawn (mm/s).

    Examples
    --------
    >>> from hypothesis import find, settings, Phase
    >>> quick = settings(database=None, phases=[Phase.generate, Phase.shrink])
    >>> find(lesions(), lambda lesion: True, settings=quick).shape
    Sphere(centre_mm=(0.0, 0.0, 0.0), radius_mm=0.5)
    """
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in SHAPE_KINDS]
    if not kinds or bad:
        raise ValueError(f"kinds must be a non-empty subset of {SHAPE_KINDS}, got {kinds!r}")
    d_lo, d_hi = _range("size_mm", size_mm, 0.2, 50.0)
    rho_lo, rho_hi = _range("density_mg_cm3", density_mg_cm3, 1.0, 3000.0)
    c = tuple(float(v) for v in centre_mm)
    kind = draw(st.sampled_from(tuple(k for k in SHAPE_KINDS if k in kinds)))
    d = draw(st.floats(d_lo, d_hi, allow_nan=False))
    rotated = kind != "sphere" and draw(st.booleans())
    if kind == "sphere":
        shape = Sphere(c, d / 2)
    elif kind == "cylinder":
        ratio = draw(_simple_first(1.0, 0.5, 1.0))
        axis = draw(_unit_vectors()) if rotated else (1.0, 0.0, 0.0)
        shape = Cylinder(c, d / 2, d * ratio, axis)
    elif kind == "ellipsoid":
        b = draw(_simple_first(1.0, 0.5, 1.0))
        e = draw(_simple_first(1.0, 0.5, 1.0))
        rot = None
        if rotated:
            rot = _rotation_matrix(draw(_unit_vectors()), draw(st.floats(0.0, math.pi)))
        shape = Ellipsoid(c, (d / 2, d / 2 * b, d / 2 * e), rot)
    elif kind == "tube":
        r = d / 4
        u = np.asarray(draw(_unit_vectors()) if rotated else (1.0, 0.0, 0.0))
        half = (d / 2 - r) * u
        shape = Tube([tuple(np.asarray(c) - half), tuple(np.asarray(c) + half)], r)
    else:
        # two end spheres span exactly d along a direction (z unless rotated) and
        # overlap (radii 0.27-0.35 d); an optional third sphere lies inside
        u = np.asarray(draw(_unit_vectors()) if rotated else (1.0, 0.0, 0.0))
        r1 = d * draw(_simple_first(0.3, 0.27, 0.35))
        r2 = d * draw(_simple_first(0.3, 0.27, 0.35))
        cc = np.asarray(c)
        centres = [tuple(cc - (d / 2 - r1) * u), tuple(cc + (d / 2 - r2) * u)]
        radii = [r1, r2]
        if draw(st.booleans()):
            r3 = d * draw(st.floats(0.2, 0.3))
            off = np.asarray(draw(st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3)))
            nrm = np.linalg.norm(off)
            off = off / nrm * (d / 2 - r3) * min(1.0, nrm) if nrm > 0 else off
            centres.append(tuple(cc + off))
            radii.append(r3)
        shape = Blob(centres, radii)
    density = draw(_simple_first(400.0, rho_lo, rho_hi))
    mot = Static()
    if motion and draw(st.booleans()):
        speed = draw(st.floats(1.0, max(1.0, float(max_velocity_mm_s))))
        ang = draw(st.floats(0.0, 2 * math.pi))
        direction = (0.0, math.sin(ang), math.cos(ang))
        if draw(st.booleans()):
            mot = ConstantVelocity(tuple(speed * v for v in direction))
        else:
            mot = CardiacMotion(direction, speed)
    return Lesion(shape, density, motion=mot, name=kind)


@st.composite
def phantoms(draw, *, min_lesions=1, max_lesions=4, size_mm=(1.0, 6.0), kinds=SHAPE_KINDS,
             density_mg_cm3=(100.0, 1000.0), motion=False, z_extent_mm=(-12.0, 12.0),
             body=None):
    """A phantom: a thorax body with non-overlapping lesions in its soft tissue.

    Lesions sit on a grid of slots with pitch ``1.5 * max size + 1 mm`` in the
    mediastinum (``PLACEMENT_HALF_YX_MM``), each with a sub-voxel jitter, so they
    never overlap; z centres are spread within ``z_extent_mm`` keeping every
    lesion inside it.

    Parameters
    ----------
    min_lesions, max_lesions : int
        Number of lesions (shrinks to ``min_lesions``).
    size_mm, kinds, density_mg_cm3, motion
        Passed to :func:`lesions`.
    z_extent_mm : (float, float)
        Scanned z range (mm).
    body : ThoraxBody, optional
        Default ``ThoraxBody()`` (300 x 200 mm with lungs and spine).

    Examples
    --------
    >>> from hypothesis import find
    >>> from hypothesis import find, settings, Phase
    >>> quick = settings(database=None, phases=[Phase.generate, Phase.shrink])
    >>> ph = find(phantoms(min_lesions=2), lambda ph: True, settings=quick)
    >>> [les.shape.centre_mm for les in ph.lesions]
    [(0.0, 0.0, -5.0), (0.0, 0.0, 5.0)]
    """
    d_lo, d_hi = _range("size_mm", size_mm, 0.2, 20.0)
    z0, z1 = _range("z_extent_mm", z_extent_mm, -1e4, 1e4)
    ext = EXTENT_PER_SIZE * d_hi
    if z1 - z0 < ext + 1.0:
        raise ValueError(f"z_extent_mm {z_extent_mm!r} is too short for lesions up to "
                         f"{d_hi} mm (needs > {ext + 1.0:.1f} mm)")
    pitch = ext + 1.0
    hy, hx = PLACEMENT_HALF_YX_MM
    ny = max(1, int((2 * hy - ext) // pitch) + 1)
    nx = max(1, int((2 * hx - ext) // pitch) + 1)
    if not (isinstance(min_lesions, int) and isinstance(max_lesions, int)
            and 0 <= min_lesions <= max_lesions):
        raise ValueError(f"need integers 0 <= min_lesions <= max_lesions, got "
                         f"{min_lesions!r}, {max_lesions!r}")
    if max_lesions > nx * ny:
        raise ValueError(f"max_lesions={max_lesions} does not fit: lesions up to {d_hi} mm "
                         f"leave room for {nx * ny} in the mediastinum; lower size_mm or "
                         "max_lesions")
    n = draw(st.integers(min_lesions, max_lesions))
    # slots ordered from the centre outwards, so small phantoms stay central
    ys = (np.arange(ny) - (ny - 1) / 2) * pitch
    xs = (np.arange(nx) - (nx - 1) / 2) * pitch
    slots = sorted(((y, x) for y in ys for x in xs), key=lambda p: (p[0] ** 2 + p[1] ** 2, p))
    chosen = sorted(draw(st.lists(st.integers(0, len(slots) - 1), min_size=n, max_size=n,
                                  unique=True))) if n else []
    zmid, zroom = 0.5 * (z0 + z1), max(0.0, 0.5 * (z1 - z0) - 0.5 * ext - 0.1)
    out = []
    for i in range(n):
        y, x = slots[chosen[i]]
        jitter = draw(st.tuples(st.floats(-zroom, zroom) if zroom > 0 else st.just(0.0),
                                st.floats(-0.25, 0.25), st.floats(-0.25, 0.25)))
        centre = (zmid + jitter[0], y + jitter[1], x + jitter[2])
        out.append(draw(lesions(kinds=kinds, size_mm=(d_lo, d_hi),
                                density_mg_cm3=density_mg_cm3, centre_mm=centre,
                                motion=motion)))
    return Phantom(ThoraxBody() if body is None else body, tuple(out),
                   z_extent_mm=(z0, z1), name="hypothesis")


@st.composite
def protocols(draw, *, presets=_PRESET_ORDER, noise=True, vary=True, matrix=None):
    """A protocol within physical ranges, starting from a preset.

    Parameters
    ----------
    presets : sequence of str
        Preset names to start from; shrinks to the first ("calcium_scoring").
    noise : bool
        Allow noise; the noise SD shrinks to 0 (noise-free), else 5-60 HU.
    vary : bool
        Also vary kVp (70/80/100/120/140), slice thickness (3, 2.5, 2, 1.5,
        1.25, 1, 0.75 mm), contiguous or half-overlapping increment, profile
        (trapezoid/gaussian), PSF FWHM (0.6-2.0 mm); each shrinks to the preset.
    matrix : int, optional
        Fix the in-plane matrix (e.g. small for full-mode scans).

    Examples
    --------
    >>> from hypothesis import find, settings, Phase
    >>> quick = settings(database=None, phases=[Phase.generate, Phase.shrink])
    >>> p = find(protocols(), lambda p: True, settings=quick)
    >>> p.name, p.slice_thickness_mm, p.noise_sd_hu
    ('calcium_scoring', 3.0, 0.0)
    """
    names = tuple(presets)
    bad = [p for p in names if p not in PROTOCOLS]
    if not names or bad:
        raise ValueError(f"presets must be names from {sorted(PROTOCOLS)}, got {names!r}")
    base = PROTOCOLS[draw(st.sampled_from(names))]
    changes = {}
    if vary:
        changes["kvp"] = draw(st.one_of(st.just(base.kvp),
                                        st.sampled_from((70.0, 80.0, 100.0, 120.0, 140.0))))
        t = draw(st.one_of(st.just(base.slice_thickness_mm),
                           st.sampled_from((3.0, 2.5, 2.0, 1.5, 1.25, 1.0, 0.75))))
        changes["slice_thickness_mm"] = t
        if t != base.slice_thickness_mm:
            changes["increment_mm"] = t * draw(st.sampled_from((1.0, 0.5)))
        changes["slice_profile"] = draw(st.sampled_from(
            (base.slice_profile,) + tuple(p for p in ("trapezoid", "gaussian")
                                          if p != base.slice_profile)))
        changes["psf_fwhm_mm"] = draw(_simple_first(base.psf_fwhm_mm, 0.6, 2.0))
    changes["noise_sd_hu"] = draw(st.one_of(st.just(0.0), st.floats(5.0, 60.0))) if noise \
        else 0.0
    if matrix is not None:
        changes["matrix"] = int(matrix)
    return base.replace(**changes)


@st.composite
def scans(draw, *, phantom=None, protocol=None, mode="patch", seed=None, noise=True,
          n_time_samples=8, fraction_maps=True, **lesion_options):
    """``(scan, truth)`` of a drawn (or given) phantom under a drawn (or given) protocol.

    Parameters
    ----------
    phantom : Phantom or strategy, optional
        Default: ``phantoms(max_lesions=1, **lesion_options)`` in patch mode,
        ``phantoms(**lesion_options)`` in full mode.
    protocol : Protocol or strategy, optional
        Default ``protocols(noise=noise)`` with ``matrix=160`` in patch mode
        and ``matrix=128`` in full mode: a smaller field of view on the same
        pixel lattice (even matrix, centred grid), which covers the lesion
        region and makes the background cross-section cheap; a patch is
        identical to the one cut from a 512 matrix.
    mode : {"patch", "full"}
        "patch": :func:`phantoms.simulate_patches` on a one-lesion phantom; the
        scan is that lesion's patch (fast: hundreds of examples per test).
        "full": :func:`phantoms.simulate`.
    seed : int, optional
        Simulation seed; default drawn, shrinking to 0.
    noise : bool
        Allow noise in the default protocol strategy.
    n_time_samples, fraction_maps
        Passed to the simulator.
    **lesion_options
        Passed to :func:`phantoms` (``size_mm``, ``kinds``, ``motion``, ...).

    Returns
    -------
    (xarray.DataArray, xarray.Dataset)
    """
    if mode not in ("patch", "full"):
        raise ValueError(f"mode must be 'patch' or 'full', got {mode!r}")
    from phantoms.simulate import simulate, simulate_patches
    if phantom is None:
        opts = dict(lesion_options)
        if mode == "patch":
            opts.setdefault("max_lesions", 1)
            opts.setdefault("min_lesions", 1)
        ph = draw(phantoms(**opts))
    elif isinstance(phantom, Phantom):
        ph = phantom
    else:
        ph = draw(phantom)
    if mode == "patch" and len(ph.lesions) != 1:
        raise ValueError(f"mode='patch' needs a phantom with exactly one lesion, got "
                         f"{len(ph.lesions)}; use mode='full' or max_lesions=1")
    if protocol is None:
        prot = draw(protocols(noise=noise, matrix=128 if mode == "full" else 160))
    elif isinstance(protocol, Protocol):
        prot = protocol
    else:
        prot = draw(protocol)
    s = draw(st.integers(0, 2 ** 32 - 1)) if seed is None else seed
    if mode == "patch":
        patches, truth = simulate_patches(ph, prot, seed=s, noise=noise,
                                          n_time_samples=n_time_samples,
                                          fraction_maps=fraction_maps)
        return patches[0], truth
    return simulate(ph, prot, seed=s, noise=noise, n_time_samples=n_time_samples,
                    fraction_maps=fraction_maps)
