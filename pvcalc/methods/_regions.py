"""Per-lesion regions, computed once per scan and shared by every method.

A :class:`LesionRegion` is everything a partial-volume method may look at: a
crop of the scan around one lesion's region of interest (ROI), as float64 HU,
and boolean masks on that crop::

        +-----------------------------------------------+  crop (bounding box of the
        |   . . . . . . . . . . . . . . . . . . . . .   |  ROI grown by gap + width,
        |   .   background shell (width_mm)         .   |  clipped to the scan)
        |   .   . . . . . . . . . . . . . . . . .   .   |
        |   .   .  gap (shell_gap_mm), unused   .   .   |
        |   .   .   +-----------------------+   .   .   |
        |   .   .   |  roi (the user's ROI) |   .   .   |
        |   .   .   |   vicinity = roi-core |   .   .   |
        |   .   .   |     +-----------+     |   .   .   |
        |   .   .   |     | core: HU >= |   |   .   .   |
        |   .   .   |     | threshold   |   |   .   .   |
        |   .   .   |     +-----------+     |   .   .   |
        |   .   .   +-----------------------+   .   .   |
        |   .   . . . . . . . . . . . . . . . . .   .   |
        |   . . . . . . . . . . . . . . . . . . . . .   |
        +-----------------------------------------------+

- ``roi``: the voxels of the lesion's ROI (its label in the label image).
- ``core``: ROI voxels with HU >= ``threshold_hu`` (130 HU by default, the
  clinical threshold at 120 kVp), keeping only connected components (in the
  ``connectivity`` neighbourhood, 26 by default) of at least
  ``min_core_voxels`` voxels (default: the clinical minimum area of 1 mm2 in
  voxels, 5 at 0.49 mm pixels).
- ``vicinity``: ``roi & ~core``, the ROI voxels below threshold (where the
  blurred edge of a lesion lives).
- ``background``: a shell of voxels whose distance (in mm, Euclidean, with
  the scan's anisotropic spacing) from the nearest ROI voxel is in
  ``(shell_gap_mm, shell_gap_mm + shell_width_mm]``, minus other lesions'
  ROIs, minus bright structures (connected components of voxels >=
  ``threshold_hu`` outside the ROI with at least the core's minimum size that
  reach beyond the shell's median + ``clip_sd`` robust SDs: other calcium,
  bone, rods) and minus non-finite voxels; clipped to the scan. Noise above
  the threshold stays, single voxels and correlated blobs alike: removing it
  would truncate the noise distribution and bias the mean downwards (by 6 HU
  at 40 HU noise on a 75 HU body, measured). The gap keeps the blurred tail of a lesion that the ROI cut
  too tightly out of the background estimate.

``background_hu`` / ``background_sd_hu`` are by default (``"clipped"``) the
mean and sample SD (ddof=1) of the shell voxels within 4 robust SDs of the
shell's median (robust SD = 1.4826 x median absolute deviation). The
integrated-intensity methods subtract ``N x background_hu`` from an ROI sum, so
the estimate must be unbiased: for the symmetric noise of CT a symmetric clip
leaves the mean unbiased and nearly as efficient as the plain mean (it drops
0.006% of Gaussian samples), while a second tissue in the shell (lung or fat
beside the lesion, a rod's edge) falls outside the clip instead of dragging the
mean; a median would have about 1.57 times the mean's variance.
``background_statistic="mean"`` (plain mean and SD) and ``"robust"`` (median
and robust SD) are the alternatives.

A region that cannot be measured carries a non-empty ``reason`` (empty ROI,
ROI outside the scan, NaN in the ROI, overlapping ROIs, too few background
voxels); :func:`pvcalc.quantify` then reports NaN with that reason for every
method instead of calling it.

A region also holds a :class:`ScanContext` (the whole scan and label image,
with a cache) for methods that are defined on the whole scan rather than on
one crop, such as ``clinical`` (the clinical score of one label equals the
label's row of :func:`pvcalc.score` on the whole scan). Methods that work on
the crop must not use it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy import ndimage

from pvcalc._validate import check_int, check_real
from pvcalc.methods._kernels import _bounding_boxes

__all__ = ["LesionRegion", "RegionParams", "ScanContext", "build_regions"]

_CONNECTIVITY_RANK = {6: 1, 18: 2, 26: 3}
#: Minimum lesion area of clinical scoring (mm2), the default size of a core component.
CLINICAL_MIN_AREA_MM2 = 1.0
_STATISTICS = ("clipped", "mean", "robust")




@dataclass(frozen=True)
class RegionParams:
    """How the regions of every lesion are built (shared by all methods).

    Parameters
    ----------
    threshold_hu : float, default 130
        Calcium threshold of the core in HU (inclusive: HU >= threshold). 130 HU is
        the clinical threshold at 120 kVp (Agatston et al. 1990); at other tube
        voltages use the kVp-specific value of :data:`pvcalc.KVP_THRESHOLDS_HU`.
    connectivity : {26, 18, 6}, default 26
        3D neighbourhood of connected components (core size filter, and the
        region growing of the threshold methods). 26 matches the 3D linking of
        the clinical 8-connected scoring.
    min_core_voxels : int or None, default None
        Core components (3D, ``connectivity``) with fewer voxels are dropped.
        None: the clinical minimum lesion size of 1 mm2 (Agatston et al. 1990)
        in voxels, ``ceil(1 mm2 / (dy dx))`` (5 at 0.49 mm pixels), so that
        isolated noise voxels above the threshold do not make a core (in a
        1 mm slice with 26 HU noise, 16% of calcium-free 3 mm ROIs hold a
        voxel >= 130 HU). 1 keeps every voxel.
    shell_gap_mm : float, default 1.0
        Distance (mm) between the ROI and the inner edge of the background shell.
        With calcium-scoring kernels (PSF FWHM 1.0-1.6 mm, sigma <= 0.7 mm) a lesion
        edge inside the ROI has fallen to under 10% of its step 1 mm further out.
    shell_width_mm : float, default 3.0
        Radial width of the background shell (mm). 3 mm holds a few hundred
        voxels around a 5 mm ROI at 0.5 mm pixels, and reaches the neighbouring
        slices of a 3 mm reconstruction.
    min_background_voxels : int, default 30
        Fewer usable shell voxels than this make the region unusable (the SD
        of 30 samples is known to about 13%).
    background_statistic : {"clipped", "mean", "robust"}, default "clipped"
        "clipped": mean and sample SD (ddof=1) of the shell voxels within
        ``clip_sd`` robust SDs of the median; "mean": of all shell voxels;
        "robust": median and 1.4826 x median absolute deviation (see the module
        notes for the choice).
    clip_sd : float, default 4.0
        Half-width of the "clipped" window in robust SDs.

    Examples
    --------
    >>> RegionParams().shell_width_mm
    3.0
    >>> RegionParams(connectivity=5)
    Traceback (most recent call last):
    ...
    ValueError: connectivity must be one of [6, 18, 26] (3D neighbourhood), got 5
    """

    threshold_hu: float = 130.0
    connectivity: int = 26
    min_core_voxels: int | None = None
    shell_gap_mm: float = 1.0
    shell_width_mm: float = 3.0
    min_background_voxels: int = 30
    background_statistic: str = "clipped"
    clip_sd: float = 4.0

    def __post_init__(self):
        object.__setattr__(self, "threshold_hu", check_real("threshold_hu", self.threshold_hu))
        if self.connectivity not in _CONNECTIVITY_RANK or isinstance(self.connectivity, bool):
            raise ValueError(
                f"connectivity must be one of {sorted(_CONNECTIVITY_RANK)} (3D neighbourhood), "
                f"got {self.connectivity!r}")
        object.__setattr__(self, "connectivity", int(self.connectivity))
        if self.min_core_voxels is not None:
            object.__setattr__(self, "min_core_voxels",
                               check_int("min_core_voxels", self.min_core_voxels, 1))
        object.__setattr__(self, "shell_gap_mm",
                           check_real("shell_gap_mm", self.shell_gap_mm, lo=0.0))
        object.__setattr__(self, "shell_width_mm",
                           check_real("shell_width_mm", self.shell_width_mm, lo=0, lo_open=True))
        object.__setattr__(self, "min_background_voxels",
                           check_int("min_background_voxels", self.min_background_voxels, 2))
        object.__setattr__(self, "clip_sd", check_real("clip_sd", self.clip_sd, lo=0, lo_open=True))
        if self.background_statistic not in _STATISTICS:
            raise ValueError(
                f"background_statistic must be one of {list(_STATISTICS)}, "
                f"got {self.background_statistic!r}")


@dataclass(frozen=True, eq=False)
class ScanContext:
    """The whole scan behind a set of regions (for scan-level methods).

    Attributes
    ----------
    scan : xarray.DataArray
        The scan as given (it may hold non-finite voxels, see ``finite``).
    labels : (Z, Y, X) ndarray of int32
        The ROI label image on the scan's grid (0 outside every ROI).
    label_names : dict of int to str
    finite : bool
        True when every voxel of the scan is finite.
    cache : dict
        Scratch space for scan-level results shared between regions (for
        example one :func:`pvcalc.score` call per preset).
    """

    scan: xr.DataArray
    labels: np.ndarray
    label_names: dict
    finite: bool
    cache: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class LesionRegion:
    """One lesion's crop, masks and local background (see the module notes).

    Attributes
    ----------
    name : str
        Lesion name.
    label : int
        The lesion's value in the ROI label image (``context.labels``).
    crop : tuple of 3 slice
        Index ranges (z, y, x) of the crop in the scan.
    hu : (Z, Y, X) ndarray of float64
        HU of the crop.
    spacing_mm : (float, float, float)
        Voxel spacing (dz, dy, dx) in mm (dz = slice increment).
    voxel_mm3 : float
        dz x dy x dx.
    origin_mm : (float, float, float)
        Centre (z, y, x) of crop voxel (0, 0, 0) in the scan's mm frame.
    roi, core, vicinity, background : (Z, Y, X) ndarray of bool
        Masks on the crop (see the module notes).
    background_hu, background_sd_hu : float
        Local background level and noise SD in HU (NaN when unusable).
    n_background : int
        Number of shell voxels used.
    threshold_hu : float
        Threshold of the core (HU).
    connectivity : int
        3D connectivity used for components (6, 18 or 26).
    kvp, slice_thickness_mm, increment_mm : float
        Tube voltage, nominal slice thickness and slice increment (= dz).
    touches_border : bool
        True when the ROI reaches the first or last voxel of the scan along an
        axis (part of the lesion may be outside the scan).
    reason : str
        Empty, or why the region cannot be measured.
    context : ScanContext
        The whole scan (for scan-level methods only).
    """

    name: str
    label: int
    crop: tuple
    hu: np.ndarray
    spacing_mm: tuple
    voxel_mm3: float
    origin_mm: tuple
    roi: np.ndarray
    core: np.ndarray
    vicinity: np.ndarray
    background: np.ndarray
    background_hu: float
    background_sd_hu: float
    n_background: int
    threshold_hu: float
    connectivity: int
    kvp: float
    slice_thickness_mm: float
    increment_mm: float
    touches_border: bool
    reason: str
    context: ScanContext = field(repr=False)

    @property
    def n_roi(self) -> int:
        """Number of ROI voxels."""
        return int(np.count_nonzero(self.roi))

    @property
    def peak_hu(self) -> float:
        """Highest HU in the ROI (NaN for an empty ROI)."""
        return float(self.hu[self.roi].max()) if self.roi.any() else float("nan")

    @property
    def structure(self) -> np.ndarray:
        """3D structuring element of ``connectivity`` (for ``scipy.ndimage.label``)."""
        return _structure(self.connectivity)

    def grow(self, threshold_hu, *, inclusive=True) -> np.ndarray:
        """ROI voxels >= ``threshold_hu`` connected to the core (``connectivity``).

        The connected components of ``roi & (hu >= threshold_hu)`` (``>`` when
        ``inclusive`` is False) that contain at least one core voxel; empty
        when the core is empty. With a threshold at or above the core's, every
        such component lies inside the core's threshold set, so the result is
        ``roi & core & (hu >= threshold_hu)``.
        """
        box = self.roi_box   # the ROI's bounding box holds every candidate
        hu, core = self.hu[box], self.core[box]
        cand = self.roi[box] & (hu >= threshold_hu if inclusive else hu > threshold_hu)
        out = np.zeros_like(self.roi)
        if not core.any() or not cand.any():
            return out
        if threshold_hu >= self.threshold_hu:
            out[box] = cand & core
            return out
        comp, n = ndimage.label(cand, structure=self.structure)
        keep = np.zeros(n + 1, dtype=bool)
        keep[comp[core & cand]] = True
        keep[0] = False
        out[box] = keep[comp]
        return out

    @functools.cached_property
    def roi_box(self) -> tuple:
        """Bounding box (z, y, x slices) of the ROI on the crop (empty slices for an empty ROI)."""
        box = []
        for axis in range(self.roi.ndim):
            other = tuple(a for a in range(self.roi.ndim) if a != axis)
            idx = np.flatnonzero(self.roi.any(axis=other))
            box.append(slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0))
        return tuple(box)

    @functools.cached_property
    def noise_inflation(self) -> float:
        """Variance inflation of voxel sums by correlated noise (>= 1).

        ``Var(sum of n voxels) ~ n x background_sd_hu^2 x noise_inflation``;
        estimated once from the background shell (see
        :func:`pvcalc.methods._noise.noise_inflation`).
        """
        from pvcalc.methods._noise import noise_inflation

        return noise_inflation(self)

    def replace(self, **changes) -> LesionRegion:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def build_regions(context, lesion_labels, params, *, overlaps=None, outside=None):
    """Regions of the given labels of ``context.labels``, in the order given.

    Parameters
    ----------
    context : ScanContext
    lesion_labels : sequence of int
        Label values, one per lesion.
    params : RegionParams
    overlaps : dict of int to str, optional
        Labels whose ROI overlapped another ROI, with a message: such regions
        get that message as their ``reason``.
    outside : dict of int to str, optional
        Labels whose ROI lies outside the scan, with a message.

    Returns
    -------
    list of LesionRegion
    """
    overlaps = overlaps or {}
    outside = outside or {}
    scan = context.scan
    labels = context.labels
    values = scan.values
    from pvcalc.scan import scan_spacing_mm

    spacing = scan_spacing_mm(scan)
    voxel_mm3 = spacing[0] * spacing[1] * spacing[2]
    coords = [np.asarray(scan.coords[d].values, dtype=np.float64) for d in ("z", "y", "x")]
    attrs = {"kvp": float(scan.attrs["kvp"]),
             "slice_thickness_mm": float(scan.attrs["slice_thickness_mm"]),
             "increment_mm": float(spacing[0])}
    reach = params.shell_gap_mm + params.shell_width_mm
    min_core = params.min_core_voxels
    if min_core is None:
        min_core = max(1, math.ceil(CLINICAL_MIN_AREA_MM2 / (spacing[1] * spacing[2]) - 1e-9))
    grow = [int(np.ceil(reach / s)) + 1 for s in spacing]
    top = max([int(v) for v in lesion_labels] + [0])
    boxes = _bounding_boxes(np.ascontiguousarray(labels, dtype=np.int32), top)
    out = []
    for lab in lesion_labels:
        lab = int(lab)
        name = context.label_names.get(lab, f"label_{lab}")
        box = None
        if lab > 0 and boxes[lab - 1, 0] >= 0:
            box = tuple(slice(int(boxes[lab - 1, 2 * a]), int(boxes[lab - 1, 2 * a + 1]))
                        for a in range(3))
        reason = outside.get(lab) or overlaps.get(lab)
        if box is None:
            out.append(_empty(context, lab, name, spacing, voxel_mm3, params, attrs,
                              reason or f"empty ROI: label {lab} has no voxel in the scan"))
            continue
        crop = tuple(slice(max(b.start - g, 0), min(b.stop + g, n))
                     for b, g, n in zip(box, grow, labels.shape))
        lab_crop = labels[crop]
        roi = lab_crop == lab
        hu = np.asarray(values[crop], dtype=np.float64)
        finite = np.isfinite(hu) if not context.finite else None
        touches = any(b.start == 0 or b.stop == n for b, n in zip(box, labels.shape))
        origin = tuple(float(c[s.start]) for c, s in zip(coords, crop))
        core = roi & (hu >= params.threshold_hu)
        if min_core > 1 and core.any():
            comp, n = ndimage.label(core, structure=_structure(params.connectivity))
            sizes = np.bincount(comp.ravel(), minlength=n + 1)
            sizes[0] = 0
            core = (sizes >= min_core)[comp]
        dist2 = _distance2_mm2(roi, spacing, reach)
        shell = (dist2 > params.shell_gap_mm ** 2) & (dist2 <= reach * reach)
        shell &= lab_crop == 0
        if finite is not None:
            shell &= finite
        bright = shell & (hu >= params.threshold_hu)
        if bright.any():
            shell &= ~_bright_structures(hu, roi, shell, min_core, params)
        nb = int(np.count_nonzero(shell))
        if nb >= 2:
            bg, sd, keep = _background(hu[shell], params.background_statistic, params.clip_sd)
            if keep is not None:
                shell[shell] = keep
                nb = int(keep.sum())
        else:
            bg, sd = float("nan"), float("nan")
        if not reason and finite is not None and not finite[roi].all():
            bad = int(np.count_nonzero(~finite[roi]))
            reason = (f"NaN in the ROI: {bad} non-finite voxel(s) inside the ROI; replace "
                      "them (e.g. scan.fillna(-1024)) or move the ROI")
        if not reason and nb < params.min_background_voxels:
            where = "the ROI touches the scan border, " if touches else ""
            reason = (f"too few background voxels: {nb} in the shell (needs >= "
                      f"{params.min_background_voxels}); {where}other ROIs, bright structures (>= "
                      f"{params.threshold_hu:g} HU) or outliers fill it. Move or shrink the ROI, or lower "
                      "RegionParams(shell_gap_mm=..., min_background_voxels=...)")
        out.append(LesionRegion(
            name=name, label=lab, crop=crop, hu=hu, spacing_mm=tuple(spacing),
            voxel_mm3=voxel_mm3, origin_mm=origin, roi=roi, core=core,
            vicinity=roi & ~core, background=shell, background_hu=bg, background_sd_hu=sd,
            n_background=nb, threshold_hu=params.threshold_hu,
            connectivity=params.connectivity, touches_border=touches, reason=reason or "",
            context=context, **attrs))
        # the ROI's box on the crop is known here; fill the cache of LesionRegion.roi_box
        out[-1].__dict__["roi_box"] = tuple(slice(b.start - c.start, b.stop - c.start)
                                            for b, c in zip(box, crop))
    return out


@functools.cache
def _structure(connectivity):
    return ndimage.generate_binary_structure(3, _CONNECTIVITY_RANK[connectivity])


def _distance2_mm2(mask, spacing, reach):
    """Squared Euclidean distance (mm2) to the nearest ``mask`` voxel, exact up to ``reach``.

    The 3D distance is the minimum over slices z' of (in-plane distance to the
    mask in z')^2 + ((z - z') dz)^2; 2D transforms of each slice are much cheaper
    than one 3D transform of the crop. Beyond ``reach`` the result may be inf.
    """
    dz, dy, dx = spacing
    nz = mask.shape[0]
    plane = np.full(mask.shape, np.inf)
    for z in range(nz):
        if mask[z].any():
            plane[z] = ndimage.distance_transform_edt(~mask[z], sampling=(dy, dx)) ** 2
    out = plane.copy()
    for k in range(1, min(nz - 1, int(reach // dz)) + 1):
        step = (k * dz) ** 2
        np.minimum(out[k:], plane[:-k] + step, out=out[k:])
        np.minimum(out[:-k], plane[k:] + step, out=out[:-k])
    return out


def _bright_structures(hu, roi, shell, min_core, params):
    """Voxels of bright structures (calcium, bone, rods) to keep out of the background shell.

    A bright structure is a connected component of voxels >= the threshold outside
    the ROI with at least the core's minimum size that holds a voxel brighter than
    the shell's median + ``clip_sd`` robust SDs (robust SD = 1.4826 x MAD, taken over
    the whole shell, which a few bright voxels hardly move). Components of noise above
    the threshold stay: in noisy scans (e.g. 40 HU noise on a 75 HU body, where the
    threshold lies 1.4 SDs above the mean) correlated noise forms many such components,
    and removing them truncates the noise distribution and biases the mean low
    (measured: 6 HU at 40 HU noise). Whole components are dropped, so the blurred
    edge of a structure goes with its peak.
    """
    samples = hu[shell]
    med = float(np.median(samples))
    robust_sd = float(1.4826 * np.median(np.abs(samples - med)))
    comp, n = ndimage.label(~roi & (hu >= params.threshold_hu),
                            structure=_structure(params.connectivity))
    if n == 0:
        return np.zeros(hu.shape, dtype=bool)
    # a component's peak exceeds the cut when one of its voxels does (no per-label sort)
    structure = np.bincount(comp.ravel(), minlength=n + 1) >= min_core
    bright = np.zeros(n + 1, dtype=bool)
    bright[comp[hu > med + params.clip_sd * robust_sd]] = True
    structure &= bright
    structure[0] = False
    return structure[comp]


def _background(samples, statistic, clip_sd):
    """(level, SD, kept-mask or None) of the shell samples (see the module notes)."""
    if statistic == "mean":
        return float(samples.mean()), float(samples.std(ddof=1)), None
    med = float(np.median(samples))
    robust_sd = float(1.4826 * np.median(np.abs(samples - med)))
    if statistic == "robust":
        return med, robust_sd, None
    keep = np.abs(samples - med) <= clip_sd * robust_sd
    if np.count_nonzero(keep) < 2:
        return med, robust_sd, None
    kept = samples[keep]
    return float(kept.mean()), float(kept.std(ddof=1)), keep


def _empty(context, lab, name, spacing, voxel_mm3, params, attrs, reason):
    z = np.zeros((0, 0, 0), dtype=bool)
    return LesionRegion(
        name=name, label=lab, crop=(slice(0, 0),) * 3, hu=np.zeros((0, 0, 0)),
        spacing_mm=tuple(spacing), voxel_mm3=voxel_mm3, origin_mm=(np.nan,) * 3, roi=z,
        core=z, vicinity=z, background=z, background_hu=float("nan"),
        background_sd_hu=float("nan"), n_background=0, threshold_hu=params.threshold_hu,
        connectivity=params.connectivity, touches_border=False, reason=reason,
        context=context, **attrs)
