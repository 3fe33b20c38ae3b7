"""``em_partial_content``: partial calcium contents from an EM fit of a mixture model.

After Sprem et al. (PLoS ONE 2018), who build on Dehmeshki et al. (IEEE TMI
2007): the lesion is its core (voxels >= the clinical threshold) extended by
the voxels >= ``extend_hu`` (90 HU) connected to it and within ``extend_mm``
of it (a distance transform with the voxel spacing); each voxel gets a partial
calcium content in [0, 1]; the volume is the sum of the contents times the
voxel volume, and the mass follows from the contents and the calibration.

Here the contents are posterior means under the pure-class plus
uniform-mixing partial-volume mixture of Santago & Gage (IEEE TMI 1993),
fitted by EM (:mod:`pvcalc.methods._em_mixture`) on the lesion region: the
extension dilated by ``rim_mm`` in-plane and ``rim_slices`` along z inside
the ROI, where the blurred tail below 90 HU lies. The background class is the
shell's mean ``mu_b`` and SD ``s`` (floored at ``min_sd_hu``); EM fits the
class weights and the calcium HU ``mu_c``. With ``c_i`` the contents,

    volume_mm3 = sum_i c_i x V_voxel
    mass_mg    = c_HA x (mu_c - mu_b) x sum_i c_i x V_voxel / 1000

and ``excess_mass_mg = c_HA x sum_i (I_i - mu_b) x V_voxel / 1000`` over the same
voxels for comparison. Formulas, choices, failure modes and measured accuracy:
docs/methods/em_partial_content.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvcalc._validate import check_int, check_real
from pvcalc.methods._base import NO_CALIBRATION, MethodSpec
from pvcalc.methods._em_mixture import em_step, fit_mixture
from pvcalc.methods._noise import excess_test

__all__ = ["SPEC", "EmPartialContentParams", "em_step", "fit_mixture", "lesion_regions"]




@dataclass(frozen=True)
class EmPartialContentParams:
    """Parameters of ``em_partial_content``.

    Parameters
    ----------
    extend_hu : float, default 90
        Voxels >= this HU connected to the core extend the lesion (Sprem et al.
        2018, Fig. 3: "thresholding at 90 HU filtered with the distance transform").
    extend_mm : float, default 1.0
        The extension keeps only voxels within this Euclidean distance (mm,
        voxel spacing) of the core. The 90 HU contour of a blurred edge lies
        within 0.9 PSF sigma beyond the 130 HU contour for lesions of 250 HU
        contrast or more (under 0.5 mm with calcium-scoring kernels, PSF
        FWHM <= 1.6 mm); 1 mm leaves a margin and stops noise paths.
    rim_mm, rim_slices : float, int, default 1.0, 1
        The lesion region (whose contents are summed, and where the mixture is
        fitted) is the extension dilated by ``rim_mm`` in-plane (Euclidean) and
        by ``rim_slices`` slices along z, inside the ROI: the blurred tail
        below ``extend_hu`` still holds calcium (1 mm is 1.5 PSF sigma at
        FWHM 1.6 mm; one slice takes in the slice profile's spread). 0 and 0
        keep the extension alone, as in the paper.
    min_sd_hu : float, default 1.0
        Floor of the noise SD s (HU), for noise-free images (1 HU: the step of
        stored integer CT values).
    min_pure_voxels : float, default 8
        ``plateau_reached`` needs at least this many pure-calcium voxels (the
        sum of their posterior probabilities; 8 is a 2 x 2 x 2 block).
    min_pure_slices : int, default 3
        ... and that many consecutive slices each holding at least one
        pure-calcium voxel (posterior sum >= 1). Three: if the slices on both
        sides of a slice are pure calcium, that slice's profile lies inside
        the (convex) lesion; with fewer, every slice may be partly outside it
        in z, and an in-plane plateau can sit below the calcium HU. A lesion
        too small or too blurred for its peak to reach the calcium plateau
        has a fitted calcium HU below the true one and a volume that is too
        large; ``plateau_reached`` False says so.
    max_iter : int, default 500
        Most EM iterations.
    tol : float, default 1e-6
        Converged when no weight changes by more than ``tol`` and the contrast
        ``Delta = mu_c - mu_b`` by no more than ``tol x Delta`` in one iteration
        (the contents then change by about ``tol`` or less).
    alpha : float, default 0.05
        One-sided false-positive rate of the detection test (as ``integrated``).

    References
    ----------
    Sprem J et al. Coronary calcium scoring with partial volume correction in
    anthropomorphic thorax phantom and screening chest CT images. PLoS ONE
    2018;13(12):e0209318. doi:10.1371/journal.pone.0209318

    Examples
    --------
    >>> EmPartialContentParams(extend_hu=100).extend_hu
    100.0
    >>> EmPartialContentParams(rim_slices=-1)
    Traceback (most recent call last):
    ...
    ValueError: rim_slices must be an integer >= 0, got -1
    """

    extend_hu: float = 90.0
    extend_mm: float = 1.0
    rim_mm: float = 1.0
    rim_slices: int = 1
    min_sd_hu: float = 1.0
    min_pure_voxels: float = 8.0
    min_pure_slices: int = 3
    max_iter: int = 500
    tol: float = 1e-6
    alpha: float = 0.05

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "extend_hu", check_real("extend_hu", self.extend_hu))
        set_(self, "extend_mm", check_real("extend_mm", self.extend_mm, lo=0.0))
        set_(self, "rim_mm", check_real("rim_mm", self.rim_mm, lo=0.0))
        set_(self, "rim_slices", check_int("rim_slices", self.rim_slices, 0))
        set_(self, "min_sd_hu", check_real("min_sd_hu", self.min_sd_hu, lo=0.0, lo_open=True))
        set_(self, "min_pure_voxels", check_real("min_pure_voxels", self.min_pure_voxels, lo=0.0))
        set_(self, "min_pure_slices", check_int("min_pure_slices", self.min_pure_slices, 1))
        set_(self, "max_iter", check_int("max_iter", self.max_iter, 1))
        set_(self, "tol", check_real("tol", self.tol, lo=0.0, lo_open=True))
        set_(self, "alpha", check_real("alpha", self.alpha, lo=0.0, lo_open=True, hi=0.5))


@functools.lru_cache(maxsize=64)
def _disk(rim_mm, dy, dx):
    """In-plane structuring element (1, ny, nx): pixel centres within rim_mm of the centre."""
    ry, rx = int(rim_mm // dy), int(rim_mm // dx)
    yy = np.arange(-ry, ry + 1)[:, None] * dy
    xx = np.arange(-rx, rx + 1)[None, :] * dx
    return (yy * yy + xx * xx <= rim_mm * rim_mm * (1.0 + 1e-12))[None]


def _shift_or(mask, offsets):
    """Binary dilation of ``mask`` by the (symmetric) offsets, border 0, as shifted ORs."""
    out = mask.copy()
    for offset in offsets:
        dst, src = [], []
        for d, n in zip(offset, mask.shape):
            if abs(d) >= n:
                break
            dst.append(slice(d, n) if d >= 0 else slice(0, n + d))
            src.append(slice(0, n - d) if d >= 0 else slice(-d, n))
        else:
            out[tuple(dst)] |= mask[tuple(src)]
    return out


@functools.lru_cache(maxsize=64)
def _disk_offsets(rim_mm, dy, dx):
    """The non-zero (0, dy, dx) offsets of :func:`_disk`."""
    disk = _disk(rim_mm, dy, dx)[0]
    ry, rx = disk.shape[0] // 2, disk.shape[1] // 2
    return tuple((0, int(a) - ry, int(b) - rx) for a, b in np.argwhere(disk)
                 if (a, b) != (ry, rx))


def _lesion_box(region, params):
    """(box, extended, lesion) of :func:`lesion_regions` on a box of the crop, or None.

    The box is the core's bounding box grown by the reach of the extension and
    the rim, inside the ROI's bounding box (every mask lies in the ROI); None
    when the core is empty.
    """
    rbox = region.roi_box
    core_roi = region.core[rbox]
    if not core_roi.any():
        return None
    dz, dy, dx = region.spacing_mm
    reach_mm = (params.extend_mm + params.rim_mm, params.extend_mm + params.rim_mm)
    grow = (int(params.extend_mm // dz) + params.rim_slices + 1,
            int(reach_mm[0] // dy) + 1, int(reach_mm[1] // dx) + 1)
    box = []
    for axis, (r, g) in enumerate(zip(rbox, grow)):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(core_roi.any(axis=other)) + r.start
        box.append(slice(max(int(idx[0]) - g, r.start), min(int(idx[-1]) + g + 1, r.stop)))
    box = tuple(box)
    c, roi, hu = region.core[box], region.roi[box], region.hu[box]
    near = ndimage.distance_transform_edt(~c, sampling=region.spacing_mm) <= params.extend_mm
    cand = c | (roi & near & (hu >= params.extend_hu))
    comp, n = ndimage.label(cand, structure=region.structure)
    keep = np.zeros(n + 1, dtype=bool)     # the components that hold a core voxel
    keep[comp[c]] = True
    keep[0] = False
    ext = keep[comp]
    les = ext
    if params.rim_slices > 0:   # a cylinder = a z line (+) a disk: two cheap dilations
        les = _shift_or(les, [(k, 0, 0) for j in range(1, params.rim_slices + 1)
                              for k in (j, -j)])
    if params.rim_mm >= min(dy, dx):
        les = _shift_or(les, _disk_offsets(params.rim_mm, dy, dx))
    return box, ext, les & roi


def lesion_regions(region, params):
    """The extension and the lesion region of ``region`` (boolean masks on its crop).

    Returns
    -------
    extended : (Z, Y, X) ndarray of bool
        Core plus the ROI voxels >= ``extend_hu`` within ``extend_mm`` of the
        core (Euclidean, voxel spacing), keeping the components (the region's
        connectivity) that hold a core voxel.
    lesion : (Z, Y, X) ndarray of bool
        ``extended`` dilated by ``rim_mm`` in-plane and ``rim_slices`` along z,
        inside the ROI (the same dilation as ``volume_fraction``'s lesion mask).

    Both are empty when the core is. The work is done on the core's bounding
    box grown by the reach of the extension and the rim, inside the ROI's
    bounding box (both masks lie in the ROI); the dilations are ORs of shifted
    copies (a binary dilation with a zero border).
    """
    extended = np.zeros_like(region.core)
    lesion = np.zeros_like(region.core)
    found = _lesion_box(region, params)
    if found is not None:
        box, ext, les = found
        extended[box] = ext
        lesion[box] = les
    return extended, lesion


def compute(region, params, calibration):
    """Volume and mass of one lesion from its EM partial contents (module notes)."""
    bkg = region.background_hu
    s = max(float(region.background_sd_hu), params.min_sd_hu)
    out = {"noise_sd_hu": s}
    if not region.core.any():
        out.update(volume_mm3=0.0, detected=False, n_voxels=0, peak_hu=region.peak_hu,
                   mass_mg=0.0 if calibration is not None else float("nan"),
                   reason=(f"no core: no component of >= {region.threshold_hu:g} HU voxels in "
                           "the ROI, so no lesion was detected (volume and mass 0); lower "
                           "RegionParams(threshold_hu=...) or min_core_voxels to look for "
                           "fainter calcium"))
        if calibration is None:
            out["reason"] += "; " + NO_CALIBRATION
        return out
    box, extended, lesion = _lesion_box(region, params)
    hu = region.hu[box][lesion]     # the order of region.hu[lesion_regions(...)[1]]
    x = hu - bkg
    rbox = region.roi_box
    peak = float(region.hu[rbox][region.core[rbox]].max())
    out.update(n_voxels=int(x.size), peak_hu=peak, n_extended=int(np.count_nonzero(extended)))
    roi_hu = region.hu[rbox][region.roi[rbox]]
    z, _, detected = excess_test(region, float(roi_hu.sum() - roi_hu.size * bkg),
                                 int(roi_hu.size), params.alpha)
    out.update(detected=detected, z_score=z)
    nan = float("nan")
    if not peak - bkg > 0:
        out.update(volume_mm3=nan, mass_mg=nan,
                   reason=(f"no calcium contrast: the core's peak ({peak:.1f} HU) is not above "
                           f"the background ({bkg:.1f} HU); check the ROI and the background "
                           "shell (RegionParams)"))
        return out
    fit = fit_mixture(x, s, peak - bkg, max_iter=params.max_iter, tol=params.tol)
    delta = fit["delta"]
    out.update(n_iter=fit["n_iter"], converged=fit["converged"])
    if not np.isfinite(delta):
        out.update(volume_mm3=nan, mass_mg=nan,
                   reason=(f"EM lost the calcium class after {fit['n_iter']} iteration(s) (the "
                           "contrast left (0, inf)); the lesion region holds no calcium "
                           "distinguishable from the background at this noise"))
        return out
    w_b, w_c, w_p = (float(v) for v in fit["weights"])
    content = float(np.sum(fit["contents"]))
    out.update(volume_mm3=content * region.voxel_mm3, calcium_hu=bkg + delta,
               weight_background=w_b, weight_calcium=w_c, weight_pv=w_p,
               n_pure=fit["n_pure"], pure_slices=_pure_run(lesion, fit["p_calcium"]))
    out["plateau_reached"] = bool(out["n_pure"] >= params.min_pure_voxels
                                  and out["pure_slices"] >= params.min_pure_slices)
    if calibration is None:
        out.update(mass_mg=nan, reason=NO_CALIBRATION)
    else:
        vox = region.voxel_mm3
        out["mass_mg"] = calibration.mass_mg(hu_sum=delta * content, voxel_volume_mm3=vox)
        out["excess_mass_mg"] = calibration.mass_mg(hu_sum=float(x.sum()), voxel_volume_mm3=vox)
        out["density_mg_cm3"] = calibration.c_ha_mg_cm3_per_hu * delta
    return out


def _pure_run(lesion, p_calcium):
    """Longest run of consecutive slices each holding >= 1 pure-calcium voxel (posterior sum)."""
    z = np.nonzero(lesion)[0]          # the slice of each voxel, in hu[lesion] order
    per_slice = np.bincount(z, weights=p_calcium, minlength=lesion.shape[0]) >= 1.0
    best = run = 0
    for pure in per_slice:
        run = run + 1 if pure else 0
        best = max(best, run)
    return best


SPEC = MethodSpec(
    name="em_partial_content", params=EmPartialContentParams, compute=compute,
    requires_calibration=False, defines={"volume_mm3", "mass_mg"},
    summary="partial calcium content of each voxel from an EM fit of a background / calcium / "
            "partial-volume mixture; volume = sum of contents x voxel volume",
    reference="Sprem J et al., PLoS ONE 2018;13:e0209318, doi:10.1371/journal.pone.0209318; "
              "Santago P, Gage HD, IEEE Trans Med Imaging 1993;12:566-574")
