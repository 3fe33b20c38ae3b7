"""``mesh``: a surface mesh of the lesion moved to the half-maximum edge of its profiles.

After ACCURATUM (Saur et al., Eur Radiol 2009;19:591): a closed triangle mesh
of the lesion whose vertices move along their normals to where the local
intensity profile crosses half-way between the local peak and the
background; the volume is that of the closed mesh. docs/methods/mesh.md has
the formulas, the source of every default and the measured accuracy:

1. Seed: the ROI voxels >= ``T0 = bkg + f (peak - bkg)`` connected to the
   core (``peak`` = the core's highest HU), holes filled. Marching cubes of
   ``HU - T0``, clamped to the seed's sign, gives the initial mesh: the
   lesion's global half-maximum isosurface
   (:func:`~pvcalc.methods._mesh_geometry.surface_mesh`).
2. Profiles along every vertex normal, sampled every ``step_mm`` from
   ``reach_out_mm`` outside to ``reach_in_mm`` inside by trilinear
   interpolation (:func:`scipy.ndimage.map_coordinates`, order 1, mm
   converted to voxels per axis), all vertices at once.
3. Edge: the local peak is the profile's maximum inside; the vertex moves to
   the crossing of ``L = b + f (peak - b)`` nearest the peak (b: the
   region's background or the profile's outer plateau), interpolated
   linearly between the two samples around it; optionally the displacements
   are smoothed over the 1-ring.
4. Blur correction (not in the paper): the half-maximum surface of a blurred
   curved object lies inside it by ``tr(K Sigma_t) / 2``
   (:meth:`~pvcalc.methods._mesh_geometry.TriMesh.blur_shift`); the blur
   covariance Sigma is measured from the profiles' own 25-75% rise. Applied
   only when the profiles reach a plateau.
5. Volume of the closed mesh by the divergence theorem, after checking that
   it is watertight.

The mass does not use the mesh: it is the calcium excess integrated over the
ROI, ``c_HA x sum_ROI (HU - bkg) x V_voxel / 1000``, which blur, partial
volume and the slice profile preserve, whereas the HU inside any boundary
miss the blurred tail outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvcalc._validate import check_int, check_real
from pvcalc.methods._base import NO_CALIBRATION, MethodSpec, local_mass_mg
from pvcalc.methods._mesh_geometry import (
    TriMesh,
    check_watertight,
    mesh_volume,
    surface_mesh,
)

__all__ = ["SPEC", "MeshParams"]

_BACKGROUNDS = ("region", "profile")
_NO_PLATEAU = ("report", "nan")
#: Phi^-1(0.75): a Gaussian edge rises from 25% to 75% over 2 x 0.6745 sigma.
_QUARTILE_Z = 0.6744897501960817
#: Fewest profiles of a bin of n_z^2 for the blur fit (the plateau test takes any).
_MIN_BIN = 5
#: Bins of n_z^2 (in-plane, oblique, along z) for the blur fit and the plateau test.
_NZ2_BINS = ((0.0, 0.25), (0.25, 0.75), (0.75, 1.5))


@dataclass(frozen=True)
class MeshParams:
    """Parameters of ``mesh`` (reasoning and sources in docs/methods/mesh.md).

    Parameters
    ----------
    fraction : float, default 0.5
        Edge level ``b + fraction x (peak - b)``, in (0, 1): 0.5 is the
        half-maximum criterion of ACCURATUM (a blurred straight step crosses
        half-way at the true edge, for any symmetric blur).
    step_mm : float, default 0.1
        Sampling step of the profiles (mm): a fifth of a 0.49 mm pixel.
    reach_in_mm, reach_out_mm : float, default 3.0 and 1.5
        Profile length inside and outside the initial surface (mm). Inside it
        must reach the plateau (3 mm: the half-width of a 6 mm lesion, 5
        sigma of a 1.3 mm FWHM kernel); outside, it bounds how far a vertex
        moves out (1.5 mm: the initial surface lies at the lesion's global
        half maximum, so a local edge further out than the blur's reach of
        2.7 sigma would need a local peak far below the lesion's).
    background : {"region", "profile"}, default "region"
        b: the region's ``background_hu`` (the shell mean: hundreds of
        voxels, unbiased), or the mean of each profile's outermost
        ``outer_plateau_mm`` (for inhomogeneous surroundings, noisier).
    outer_plateau_mm : float, default 0.5
        Length of the outer profile end averaged when ``background="profile"``.
    smoothing_iterations : int, default 0
        Passes of 1-ring smoothing of the displacements,
        ``d <- (1 - w) d + w x mean(d over the neighbours)``; 0: none, as in
        the paper.
    smoothing_weight : float, default 0.5
        w of the smoothing, in (0, 1].
    curvature_correction : bool, default True
        Move the half-maximum surface out by the blur shift ``tr(K Sigma_t) /
        2`` when the profiles reach a plateau (not part of the paper); the plain
        half-maximum volume is reported as ``volume_half_max_mm3`` either way.
    min_contrast_sd : float, default 5.0
        The half level must stand 2.5 noise SD clear of the background and of
        the peak: a core whose peak is less than ``min_contrast_sd x
        background_sd_hu`` above the background gets a NaN volume.
    plateau_tolerance : float, default 0.1
        The flat top of a mean edge profile (see ``plateau_ratio``): where it
        lies within ``plateau_tolerance`` of its contrast below its maximum.
    plateau_ratio : float, default 2.0
        The profiles are averaged, aligned at their edges, in three bins of
        the normal's direction (``n_z^2`` in [0, 1/4), [1/4, 3/4), [3/4, 1]:
        in-plane, oblique, along z; averaging removes the noise). The lesion
        reaches a plateau when in every bin that holds a profile the flat
        top is at least ``plateau_ratio`` times as long as the rise from the
        edge to the top. For an isotropically blurred sphere the ratio reaches
        2 at a radius of 3 sigma, where the centre is within 3% of the true
        contrast; for a blurred slab at a half-thickness of 2.5 sigma (1%).
    min_slices : int, default 3
        A lesion spanning fewer slices at its half maximum (seed voxels) is
        "no plateau" too: a z profile shows a plateau only through a slice
        inside the lesion between its two edge slices.
    no_plateau : {"report", "nan"}, default "report"
        What a "no plateau" lesion gets: the plain half-maximum volume with the
        reason, or NaN with the reason.
    max_unresolved_fraction : float, default 0.1
        More vertices than this without a crossing within reach (they keep
        their initial position) add a reason.
    max_folded_fraction : float, default 0.01
        Surface fraction of faces whose orientation flips when the vertices
        move, above which the mesh counts as folded: the volume then falls
        back to the surface before that move, with a reason.

    Examples
    --------
    >>> MeshParams(fraction=0.4).fraction
    0.4
    >>> MeshParams(background="shell")
    Traceback (most recent call last):
    ...
    ValueError: background must be one of ['region', 'profile'], got 'shell'
    """

    fraction: float = 0.5
    step_mm: float = 0.1
    reach_in_mm: float = 3.0
    reach_out_mm: float = 1.5
    background: str = "region"
    outer_plateau_mm: float = 0.5
    smoothing_iterations: int = 0
    smoothing_weight: float = 0.5
    curvature_correction: bool = True
    min_contrast_sd: float = 5.0
    plateau_tolerance: float = 0.1
    plateau_ratio: float = 2.0
    min_slices: int = 3
    no_plateau: str = "report"
    max_unresolved_fraction: float = 0.1
    max_folded_fraction: float = 0.01

    def __post_init__(self):
        limits = {
            "fraction": {"lo": 0.0, "lo_open": True},
            "step_mm": {"lo": 0.0, "lo_open": True},
            "reach_in_mm": {"lo": 0.0, "lo_open": True, "hi": 20.0},
            "reach_out_mm": {"lo": 0.0, "lo_open": True, "hi": 20.0},
            "outer_plateau_mm": {"lo": 0.0, "lo_open": True},
            "smoothing_weight": {"lo": 0.0, "lo_open": True, "hi": 1.0},
            "min_contrast_sd": {"lo": 0.0},
            "plateau_tolerance": {"lo": 0.0, "lo_open": True, "hi": 0.5},
            "plateau_ratio": {"lo": 0.0},
            "max_unresolved_fraction": {"lo": 0.0, "hi": 1.0},
            "max_folded_fraction": {"lo": 0.0, "hi": 1.0},
        }
        for name, lim in limits.items():
            object.__setattr__(self, name, check_real(name, getattr(self, name), **lim))
        if self.fraction >= 1.0:
            raise ValueError(
                f"fraction must be < 1 (the level lies below the peak), got "
                f"{self.fraction!r}"
            )
        if self.step_mm > min(self.reach_in_mm, self.reach_out_mm):
            raise ValueError(
                f"step_mm ({self.step_mm:g}) must not exceed reach_in_mm and "
                f"reach_out_mm ({self.reach_in_mm:g}, {self.reach_out_mm:g})"
            )
        if self.outer_plateau_mm > self.reach_out_mm:
            raise ValueError(
                f"outer_plateau_mm ({self.outer_plateau_mm:g}) must not exceed "
                f"reach_out_mm ({self.reach_out_mm:g})"
            )
        for name, lo in (("smoothing_iterations", 0), ("min_slices", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), lo))
        if not isinstance(self.curvature_correction, (bool, np.bool_)):
            raise TypeError(
                f"curvature_correction must be True or False, got "
                f"{self.curvature_correction!r}"
            )
        for name, valid in (("background", _BACKGROUNDS), ("no_plateau", _NO_PLATEAU)):
            if getattr(self, name) not in valid:
                raise ValueError(
                    f"{name} must be one of {list(valid)}, got {getattr(self, name)!r}"
                )


# --- profiles -----------------------------------------------------------------------------


def _crossing(s, prof, level, lo, hi, *, last):
    """Where each profile crosses ``level`` within its index range [lo, hi].

    ``last=True``: after the last index j with ``prof[j] < level`` (between j
    and j + 1); ``last=False``: before the first j with ``prof[j] >= level``
    (between j - 1 and j). Linear interpolation between the two samples.
    Returns the positions (NaN where there is no such j) and the indices j.
    """
    n, m = prof.shape
    idx = np.arange(m)[None, :]
    inside = (idx >= lo[:, None]) & (idx <= hi[:, None])
    if last:
        hit = inside & (prof < level[:, None])
        j = m - 1 - np.argmax(hit[:, ::-1], axis=1)
        j0, j1 = j, np.minimum(j + 1, m - 1)
    else:
        hit = inside & (prof >= level[:, None])
        j = np.argmax(hit, axis=1)
        j0, j1 = np.maximum(j - 1, 0), j
    found = hit.any(axis=1) & (j1 > j0)
    rows = np.arange(n)
    p0, p1 = prof[rows, j0], prof[rows, j1]
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = s[j0] + (level - p0) / (p1 - p0) * (s[1] - s[0])
    return np.where(found, pos, np.nan), j


def _profiles(hu, verts, normals, spacing, bkg, params):
    """Sampled profiles and their edges.

    Returns ``prof`` (V, m) in HU at ``s`` (m,) mm along the inward normal
    (s = 0 at the vertex), the background ``b`` (V,), ``s50`` (the edge, NaN
    where unresolved) and ``sigma`` (the 25-75% rise / 1.349, mm).
    """
    h = params.step_mm
    j_out = round(params.reach_out_mm / h)
    m = j_out + round(params.reach_in_mm / h) + 1
    s = (np.arange(m) - j_out) * h  # > 0 inwards
    coords = (verts / spacing).T[:, :, None] - (normals / spacing).T[:, :, None] * s[
        None, None, :
    ]  # (3, V, m) voxels
    prof = ndimage.map_coordinates(
        hu, coords.reshape(3, -1), order=1, mode="nearest", prefilter=False
    ).reshape(len(verts), m)
    if params.background == "profile":
        b = prof[:, : max(1, round(params.outer_plateau_mm / h))].mean(axis=1)
    else:
        b = np.full(len(verts), bkg)
    rows = np.arange(len(verts))
    k = j_out + np.argmax(prof[:, j_out:], axis=1)  # the local peak, inside
    contrast = prof[rows, k] - b
    start = np.zeros(len(verts), dtype=np.int64)
    s50, c = _crossing(s, prof, b + params.fraction * contrast, start, k - 1, last=True)
    ok = np.isfinite(s50) & (contrast > 0)
    c = np.where(ok, c, 0)
    s25, _ = _crossing(s, prof, b + 0.25 * contrast, start, c, last=True)
    s75, _ = _crossing(s, prof, b + 0.75 * contrast, c + 1, k, last=False)
    sigma = (s75 - s25) / (2.0 * _QUARTILE_Z)
    return prof, s, b, np.where(ok, s50, np.nan), np.where(ok, sigma, np.nan)


def _direction_bins(normals, usable, minimum):
    """Index arrays of the usable vertices in the bins of n_z^2 (with >= minimum members)."""
    x = normals[:, 0] ** 2
    bins = [np.flatnonzero(usable & (x >= lo) & (x < hi)) for lo, hi in _NZ2_BINS]
    return [b for b in bins if b.size >= max(minimum, 1)]


def _plateau_ratio(prof, s, b, s50, bins, params):
    """Smallest, over the direction bins, flat-top length / rise of the mean edge profile.

    Each bin's profiles are shifted (to the nearest sample) so their edges
    coincide, minus their background, and averaged; the flat top is where
    the mean lies within ``plateau_tolerance`` of its contrast below its
    maximum, the rise the distance from the edge to the first such sample.
    Inf when the top starts at the edge; NaN without a bin.
    """
    h = s[1] - s[0]
    m = prof.shape[1]
    lags = np.arange(-round(0.5 / h), m)  # from 0.5 mm outside
    ratios = []
    for idx in bins:
        idx = idx[np.isfinite(s50[idx])]   # the bins hold resolved vertices; never cast NaN
        if not idx.size:
            continue
        # sample of each edge (clipped to the profile, so that the cast is defined)
        j_edge = np.rint(np.clip((s50[idx] - s[0]) / h, -1.0, float(m))).astype(np.int64)
        cols = j_edge[:, None] + lags[None, :]
        inside = (cols >= 0) & (cols < m)
        vals = (
            np.take_along_axis(prof[idx], np.clip(cols, 0, m - 1), axis=1)
            - b[idx, None]
        )
        count = inside.sum(axis=0)
        mean = np.where(inside, vals, 0.0).sum(axis=0) / np.maximum(count, 1)
        mean = mean[count > 0]
        lag = lags[count > 0]
        top = mean.max() * (1.0 - params.plateau_tolerance)
        inward = lag > 0
        flat = np.count_nonzero(inward & (mean >= top)) * h
        first = lag[inward & (mean >= top)]
        rise = first.min() * h if first.size else np.inf
        ratios.append(flat / rise if rise > 0 else np.inf)
    return min(ratios) if ratios else float("nan")


def _blur_covariance(sigma, normals, bins):
    """Diagonal blur variances (z, y, x) in mm2 from the profiles' rise widths.

    ``sigma_n^2 = n' Sigma n = s_xy + (s_z - s_xy) n_z^2`` for a PSF that is
    rotationally symmetric in-plane: least squares, weighted by count, through
    the medians of n_z^2 and sigma_n^2 in each direction bin (medians: robust
    to the profiles that noise spoils). One bin gives an isotropic Sigma.
    """
    x, y = normals[:, 0] ** 2, sigma**2
    px = np.array([np.median(x[i]) for i in bins])
    py = np.array([np.median(y[i]) for i in bins])
    w = np.sqrt([i.size for i in bins])
    if len(bins) == 1:
        s_xy = s_z = float(py[0])
    else:
        design = np.stack([1.0 - px, px], axis=1) * w[:, None]
        s_xy, s_z = np.linalg.lstsq(design, py * w, rcond=None)[0]
    s_xy, s_z = max(float(s_xy), 0.0), max(float(s_z), 0.0)
    return np.array([s_z, s_xy, s_xy])


# --- the method ---------------------------------------------------------------------------


def _seed(region, level):
    """Box (slices) around the seed, the seed on it, and whether it reaches the ROI's edge.

    The seed: ROI voxels >= ``level`` connected to the core, with its holes
    (components of the rest not connected to the box's border) filled. It
    reaches the edge when a seed voxel has a face neighbour outside the ROI
    or outside the crop.
    """
    grown = region.grow(level)
    idx = np.argwhere(grown)
    lo = np.maximum(idx.min(axis=0) - 2, 0)
    hi = np.minimum(idx.max(axis=0) + 3, grown.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    rest, _ = ndimage.label(np.pad(~grown[box], 1, constant_values=True))
    seed = (rest != rest[0, 0, 0])[1:-1, 1:-1, 1:-1]  # the pad frame is one component
    roi = np.pad(region.roi, 1, constant_values=False)[
        tuple(slice(b.start, b.stop + 2) for b in box)
    ]  # the box and a 1-voxel frame
    inner = roi[1:-1, 1:-1, 1:-1].copy()
    for axis in range(3):
        for step in (slice(0, -2), slice(2, None)):
            sl = [slice(1, -1)] * 3
            sl[axis] = step
            inner &= roi[tuple(sl)]
    return box, seed, bool(np.any(seed & ~inner))


def compute(region, params, calibration):
    """Mesh volume at the local half-maximum edge; mass from the ROI's calcium excess."""
    nan = float("nan")
    bkg, sd = region.background_hu, region.background_sd_hu
    noise = sd if np.isfinite(sd) else 0.0
    out = {
        "n_voxels": region.n_roi,
        "volume_half_max_mm3": nan,
        "n_vertices": 0,
        "plateau_ratio": nan,
        "unresolved_fraction": nan,
        "sigma_xy_mm": nan,
        "sigma_z_mm": nan,
    }
    mass = local_mass_mg(calibration, region.hu[region.roi], bkg, region.voxel_mm3)
    out["mass_mg"] = nan if mass is None else mass
    tail = [] if mass is not None else [NO_CALIBRATION]

    def done(volume, why=()):
        out["volume_mm3"] = volume
        out["reason"] = "; ".join(list(why) + tail)
        return out

    if not region.core.any():
        out.update(detected=False, peak_hu=region.peak_hu)
        return done(0.0)
    peak = float(region.hu[region.core].max())
    contrast = peak - bkg
    out.update(detected=True, peak_hu=peak)
    if not contrast > 0 or contrast < params.min_contrast_sd * noise:
        return done(
            nan,
            [
                (
                    f"low contrast: the core's peak ({peak:.1f} HU) is "
                    f"{contrast / noise if noise > 0 else 0.0:.1f} background SD above the background "
                    f"({bkg:.1f} HU), under min_contrast_sd = {params.min_contrast_sd:g}; the "
                    "half-maximum edge would follow the noise"
                )
            ],
        )
    level = bkg + params.fraction * contrast
    box, seed, at_edge = _seed(region, level)
    if at_edge:
        return done(
            nan,
            [
                (
                    f"lesion reaches the ROI's edge: voxels >= its half-maximum level ({level:.1f} HU) "
                    "touch the ROI boundary, so the ROI cuts the lesion; enlarge radius_mm (or the "
                    "label) by 2 mm or more"
                )
            ],
        )
    spacing = np.asarray(region.spacing_mm, dtype=np.float64)
    excess = region.hu[box] - level
    tiny = 1e-6 * contrast
    field = np.where(seed, np.maximum(excess, tiny), np.minimum(excess, -tiny))
    verts0, faces = surface_mesh(field, spacing)
    verts0 += np.array([b.start for b in box]) * spacing
    leak = check_watertight(faces, len(verts0))
    if leak:
        return done(nan, [f"mesh not closed: {leak}"])
    mesh = TriMesh(faces, len(verts0))
    out["n_vertices"] = len(verts0)
    normals = mesh.vertex_normals(verts0)
    prof, s, b, s50, sigma = _profiles(region.hu, verts0, normals, spacing, bkg, params)
    resolved = np.isfinite(s50)
    out["unresolved_fraction"] = float(1.0 - resolved.mean())
    bins = _direction_bins(normals, resolved, 1)
    ratio = out["plateau_ratio"] = _plateau_ratio(prof, s, b, s50, bins, params)
    n_slices = int(np.count_nonzero(seed.any(axis=(1, 2))))
    reached = bool(ratio >= params.plateau_ratio) and n_slices >= params.min_slices
    move = mesh.smooth(
        np.where(resolved, -s50, 0.0),
        params.smoothing_iterations,
        params.smoothing_weight,
    )
    verts = verts0 + move[:, None] * normals
    why = []
    if mesh.folded_fraction(verts0, verts) > params.max_folded_fraction:
        why.append(
            "mesh folded: faces flip on more than "
            f"{100 * params.max_folded_fraction:g}% of the surface when the vertices "
            "move to their local edges; the volume is that of the lesion's global "
            "half-maximum surface"
        )
        verts = verts0
    volume = out["volume_half_max_mm3"] = mesh_volume(verts, faces)
    blur_bins = _direction_bins(normals, resolved & np.isfinite(sigma), _MIN_BIN)
    cov = _blur_covariance(sigma, normals, blur_bins) if reached and blur_bins else None
    if cov is not None:
        out["sigma_z_mm"], out["sigma_xy_mm"] = (
            float(np.sqrt(cov[0])),
            float(np.sqrt(cov[1])),
        )
    if not params.curvature_correction:
        pass
    elif cov is None and reached:
        why.append(
            "no blur estimate: fewer than 5 profiles with a measurable 25-75% rise; "
            "the volume is the plain half-maximum surface's"
        )
    elif cov is not None:
        corrected = verts + mesh.blur_shift(verts, cov)[:, None] * mesh.vertex_normals(
            verts
        )
        if mesh.folded_fraction(verts, corrected) > params.max_folded_fraction:
            why.append(
                "mesh folded by the blur correction; the volume is the plain "
                "half-maximum surface's"
            )
        else:
            volume = mesh_volume(corrected, faces)
    if out["unresolved_fraction"] > params.max_unresolved_fraction:
        why.append(
            f"unresolved edges: {100 * out['unresolved_fraction']:.0f}% of the profiles "
            "cross no half-maximum level within reach_out_mm = "
            f"{params.reach_out_mm:g} mm (a bright neighbour?); those vertices kept "
            "their initial position"
        )
    if not reached:
        if n_slices < params.min_slices:
            what = (
                f"the lesion spans {n_slices} slice(s) at its half maximum (min_slices = "
                f"{params.min_slices}), too few for its z profile to show a plateau"
            )
        elif not np.isfinite(ratio):
            what = (
                "no vertex profile crosses its half-maximum level within reach, so there is "
                "no edge profile to test for a flat top"
            )
        else:
            what = (
                f"the mean edge profile's flat top is {ratio:.2f} times its rise in the "
                f"worst direction (plateau_ratio = {params.plateau_ratio:g} needed)"
            )
        why.append(
            f"no plateau: {what}; the lesion is small or thin against the blur and slice "
            "thickness, its peak lies below its true HU and the half-maximum volume is biased "
            "(docs/methods/mesh.md)"
        )
        if params.no_plateau == "nan":
            volume = nan
    return done(volume, why)


SPEC = MethodSpec(
    name="mesh",
    params=MeshParams,
    compute=compute,
    requires_calibration=False,
    defines={"volume_mm3", "mass_mg"},
    summary="surface mesh moved along its normals to the profiles' half-maximum edge, "
    "blur-corrected; mass from the ROI's calcium excess",
    reference="Saur SC, Alkadhi H, Desbiolles L, Szekely G, Cattin PC, Eur Radiol "
    "2009;19(3):591-598",
)
