"""Find the inserts of the QRM calcification insert: bright spots, spoke fit, measurements.

Private helpers of :func:`pvcalc.qrm.locate_cci`; every length in mm, every
position (z, y, x) in the scan's coordinates. The steps and their assumptions are
described in ``docs/real_phantom.md`` ("Locate the phantom").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvcalc._qrm_geometry import SPOKE_RADIUS_MM, angle_deg, fit_rigid, layout_points

#: Light in-plane smoothing of the detection image (Gaussian sigma, mm): keeps a 1 mm
#: insert while halving the pixel noise.
SMOOTH_SIGMA_MM = 0.5
#: Side of the square of the grey opening (mm) whose residue (white top-hat) holds the
#: bright structures narrower than it: the 5 mm inserts with their blur, not the 20 mm rods.
TOPHAT_SIDE_MM = 9.0
#: A bright spot is a connected region of the top-hat this many robust SDs above its median.
DETECT_SD = 5.0
#: Largest in-plane extent (mm) of a bright spot: a blurred 5 mm insert spans about 8 mm.
MAX_SPOT_EXTENT_MM = 10.0
#: Tolerances of the spoke fit: in-plane distance from the model position (mm), spacing
#: of a large-medium pair (12.5 mm nominal), and z distance from the insert plane.
FIT_TOL_MM = 2.5
PAIR_TOL_MM = 2.0
#: A spot or insert whose local background is below this (HU) lies in lung or air, not in
#: the insert body.
MIN_BACKGROUND_HU = -300.0
#: Contrast-to-noise ratio (peak above local background / noise SD of the smoothed image)
#: from which an insert is counted as seen at its expected position: the highest of the
#: few dozen independent noise values in a search window passes 4 SDs about once in a
#: thousand windows.
FOUND_CNR = 4.0


@dataclass
class Image:
    """The scan's arrays: HU, its light in-plane smoothing, coordinates, noise."""

    values: np.ndarray        # (Z, Y, X) float32 HU
    smooth: np.ndarray        # Gaussian sigma SMOOTH_SIGMA_MM in-plane
    z: np.ndarray
    y: np.ndarray
    x: np.ndarray
    spacing: tuple            # (dz, dy, dx) mm
    thickness_mm: float
    noise_sd_hu: float        # of ``values``
    smooth_sd_hu: float       # of ``smooth``


@dataclass
class Spot:
    """A measured bright spot (a candidate insert)."""

    z: float
    y: float
    x: float
    contrast_hu: float        # peak of the smoothed image above the local background
    peak_hu: float            # peak of the smoothed image
    background_hu: float
    integral_hu_mm3: float    # sum of (HU - background) x voxel volume around the spot
    cnr: float


def prepare(scan, spacing) -> Image:
    """Arrays and noise estimates of a validated scan."""
    values = np.ascontiguousarray(scan.values, dtype=np.float32)
    dz, dy, dx = spacing
    smooth = ndimage.gaussian_filter(values, (0.0, SMOOTH_SIGMA_MM / dy, SMOOTH_SIGMA_MM / dx),
                                     mode="nearest")
    coords = [np.asarray(scan.coords[d].values, dtype=np.float64) for d in "zyx"]
    return Image(values, smooth, *coords, spacing=tuple(spacing),
                 thickness_mm=float(scan.attrs.get("slice_thickness_mm", dz)),
                 noise_sd_hu=_noise_sd(values, spacing), smooth_sd_hu=_noise_sd(smooth, spacing))


def _noise_sd(vol, spacing):
    """Robust SD (1.4826 x MAD) of the image minus its 5 mm local mean, in soft tissue.

    Soft tissue: local mean between -200 and 300 HU and local SD below 3 times the
    median local SD (no edges). At most 8 slices, evenly spread, and every fourth of
    their voxels are used.
    """
    _, dy, dx = spacing
    size = (1, max(3, int(round(5.0 / dy))), max(3, int(round(5.0 / dx))))
    pick = np.unique(np.linspace(0, vol.shape[0] - 1, min(vol.shape[0], 8)).round().astype(int))
    v = vol[pick].astype(np.float64)
    mean = ndimage.uniform_filter(v, size=size, mode="nearest")
    var = ndimage.uniform_filter(v * v, size=size, mode="nearest") - mean * mean
    sd = np.sqrt(np.clip(var, 0.0, None))
    tissue = (mean > -200.0) & (mean < 300.0)
    if not tissue.any():
        tissue = np.ones(v.shape, dtype=bool)
    calm = tissue & (sd < 3.0 * np.median(sd[tissue]))
    if calm.sum() >= 100:
        tissue = calm
    hp = (v - mean)[tissue][::4]
    mad = float(np.median(np.abs(hp - np.median(hp))))
    return max(1.4826 * mad, 1e-3)


def _px(length_mm, step):
    return max(1, int(math.ceil(length_mm / step)))


def detect_spots(img: Image):
    """Bright compact spots of the whole scan, measured (a list of :class:`Spot`).

    White top-hat of the smoothed image by a square of :data:`TOPHAT_SIDE_MM` in every
    slice; connected regions (26-connected) above median + :data:`DETECT_SD` robust SDs
    of the top-hat in soft tissue; regions wider than :data:`MAX_SPOT_EXTENT_MM`
    in-plane, or longer along z than a 5 mm insert seen through the slice profile, are
    edges of larger structures and dropped. Overlapping slices (increment at most half
    the thickness) are searched every ``floor(thickness / increment)`` slices: the
    slices between see nothing the others do not.
    """
    dz, dy, dx = img.spacing
    stride = max(1, int(math.floor(img.thickness_mm / dz + 1e-6)))
    smooth = img.smooth[::stride]
    size = (1, _px(TOPHAT_SIDE_MM, dy) | 1, _px(TOPHAT_SIDE_MM, dx) | 1)
    tophat = smooth - ndimage.grey_opening(smooth, size=size, mode="nearest")
    tissue = (smooth > -200.0) & (smooth < 300.0)
    sample = tophat[tissue][::3] if tissue.any() else tophat.ravel()[::3]
    med = float(np.median(sample))
    sd = 1.4826 * float(np.median(np.abs(sample - med)))
    threshold = med + DETECT_SD * max(sd, 1e-3)
    labels, n = ndimage.label(tophat > threshold, structure=np.ones((3, 3, 3), dtype=bool))
    max_len_z = 5.0 + 1.5 * img.thickness_mm + dz * stride
    spots = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        ext_z = (box[0].stop - box[0].start) * dz * stride
        ext_y = (box[1].stop - box[1].start) * dy
        ext_x = (box[2].stop - box[2].start) * dx
        if max(ext_y, ext_x) > MAX_SPOT_EXTENT_MM or ext_z > max_len_z:
            continue
        region = labels[box] == index + 1
        local = np.where(region, tophat[box], -np.inf)
        k, j, i = np.unravel_index(int(np.argmax(local)), local.shape)
        zyx = (img.z[(box[0].start + k) * stride], img.y[box[1].start + j],
               img.x[box[2].start + i])
        spot = measure(img, zyx, diameter_mm=5.0, search_mm=1.0)
        if spot is not None and spot.background_hu >= MIN_BACKGROUND_HU:
            spots.append(spot)
    return spots


def _window(coord, centre, half):
    lo = int(np.searchsorted(coord, centre - half, side="left"))
    hi = int(np.searchsorted(coord, centre + half, side="right"))
    return lo, hi


def measure(img: Image, zyx, *, diameter_mm, search_mm):
    """Measure the spot nearest ``zyx``: peak, contrast, centroid, integral.

    The local background of each slice is the median HU of a ring from
    ``d/2 + 2.5`` to ``d/2 + 5`` mm around the spot. The peak is the highest value
    of the smoothed image minus that background within ``search_mm`` in-plane and
    the slices that can see an insert of length ``d`` centred near ``zyx[0]``. The
    centre: in-plane, the centroid of the smoothed contrast above half its peak;
    along z, the centroid of the per-slice sums of contrast in a disc of radius
    ``d/2 + 1`` mm over the slices within ``d/2 + 0.75 T`` of the current estimate
    (sums of sampled slice profiles: unbiased for contiguous slices). The integral
    sums the contrast in a disc of radius ``d/2 + 2`` mm over the whole window.
    Returns None when the window holds no voxel.
    """
    dz, dy, dx = img.spacing
    r_core = 0.5 * diameter_mm + 2.0
    r_z = 0.5 * diameter_mm + 1.0
    r_in, r_out = 0.5 * diameter_mm + 2.5, 0.5 * diameter_mm + 5.0
    see_z = 0.5 * diameter_mm + 0.75 * img.thickness_mm
    half_z = see_z + 0.5 * dz
    zc, yc, xc = (float(v) for v in zyx)
    for _ in range(2):
        k0, k1 = _window(img.z, zc, half_z)
        j0, j1 = _window(img.y, yc, r_out)
        i0, i1 = _window(img.x, xc, r_out)
        if k1 <= k0 or j1 <= j0 or i1 <= i0:
            return None
        zz, yy, xx = img.z[k0:k1], img.y[j0:j1], img.x[i0:i1]
        d2 = (yy[:, None] - yc) ** 2 + (xx[None, :] - xc) ** 2
        ring = (d2 >= r_in * r_in) & (d2 <= r_out * r_out)
        raw = img.values[k0:k1, j0:j1, i0:i1].astype(np.float64)
        sm = img.smooth[k0:k1, j0:j1, i0:i1].astype(np.float64)
        bg = np.median(raw[:, ring], axis=1) if ring.any() else np.zeros(k1 - k0)
        contrast = sm - bg[:, None, None]
        search = d2 <= max(search_mm, 0.5 * min(dy, dx)) ** 2
        masked = np.where(search[None], contrast, -np.inf)
        kp, jp, ip = np.unravel_index(int(np.argmax(masked)), masked.shape)
        peak = float(contrast[kp, jp, ip])
        yp, xp = yy[jp], xx[ip]
        dp2 = (yy[:, None] - yp) ** 2 + (xx[None, :] - xp) ** 2
        core = dp2 <= r_core * r_core
        excess = raw - bg[:, None, None]
        sums = (excess * core[None]).sum(axis=(1, 2))
        # z: per-slice sums in a tighter disc, over the slices that can see the insert
        tight = (excess * (dp2 <= r_z * r_z)[None]).sum(axis=(1, 2))
        w_z = np.where(np.abs(zz - zc) <= see_z, np.clip(tight, 0.0, None), 0.0)
        z_new = float((w_z * zz).sum() / w_z.sum()) if w_z.sum() > 0 else float(zz[kp])
        near = w_z >= 0.5 * w_z.max() if w_z.max() > 0 else np.arange(zz.size) == kp
        w = np.clip(contrast[near] - 0.5 * peak, 0.0, None) * core[None]
        if peak > 0 and w.sum() > 0:
            wy = w.sum(axis=(0, 2))
            wx = w.sum(axis=(0, 1))
            y_new = float((wy * yy).sum() / wy.sum())
            x_new = float((wx * xx).sum() / wx.sum())
        else:
            y_new, x_new = float(yp), float(xp)
        zc, yc, xc = z_new, y_new, x_new
        search_mm = min(search_mm, 1.0)     # second pass: stay on the spot just measured
    integral = float(sums.sum()) * dz * dy * dx
    background = float(np.median(bg))
    return Spot(z=zc, y=yc, x=xc, contrast_hu=peak, peak_hu=float(sm[kp, jp, ip]),
                background_hu=background, integral_hu_mm3=integral,
                cnr=peak / img.smooth_sd_hu)


@dataclass
class SpokeFit:
    """The best three-spoke pattern: spoke m points to ``angle0_deg + 120 m``."""

    centre_yx: tuple
    angle0_deg: float
    z_mm: float
    rms_mm: float
    matches: dict            # (spoke m, "large" / "medium") -> index into the spots


_MODEL_SIZES = ("large", "medium")


def _match(spots_yx, spots_z, pred, z0, tol_z):
    """Greedy one-to-one matching of predicted points to spots (nearest first)."""
    d = np.sqrt(((pred[:, None, :] - spots_yx[None, :, :]) ** 2).sum(axis=2))
    d[:, np.abs(spots_z - z0) > tol_z] = np.inf
    matches = {}
    used = set()
    for flat in np.argsort(d, axis=None):
        p, s = np.unravel_index(int(flat), d.shape)
        if not np.isfinite(d[p, s]) or d[p, s] > FIT_TOL_MM:
            break
        if p in matches or s in used:
            continue
        matches[int(p)] = int(s)
        used.add(int(s))
    return matches


def fit_spokes(spots, *, tol_z):
    """Best fit of the 3 x (large, medium) pattern to the spots, or None when no pair fits.

    Hypotheses: every pair of spots 12.5 +- :data:`PAIR_TOL_MM` mm apart in-plane,
    within ``tol_z`` in z, the outer one with the larger integral (a 5 mm insert
    holds 4.6 times the HA of a 3 mm one of the same density) is a large-medium pair
    of one spoke; it fixes the centre (37.5 mm from the large insert, through the
    medium one) and the angle. Each hypothesis is refined three times: match the
    six model points to spots within :data:`FIT_TOL_MM`, then a least-squares rigid
    fit. The fit with most matches wins, then the smallest RMS residual.
    """
    if len(spots) < 2:
        return None
    yx = np.array([(s.y, s.x) for s in spots])
    zs = np.array([s.z for s in spots])
    integral = np.array([s.integral_hu_mm3 for s in spots])
    model0 = layout_points((0.0, 0.0), 0.0, _MODEL_SIZES)
    step = SPOKE_RADIUS_MM["large"] - SPOKE_RADIUS_MM["medium"]
    best, best_key = None, None
    for a in range(len(spots)):
        for b in range(len(spots)):
            if a == b or integral[a] <= integral[b] or abs(zs[a] - zs[b]) > tol_z:
                continue
            sep = float(np.hypot(*(yx[b] - yx[a])))
            if abs(sep - step) > PAIR_TOL_MM:
                continue
            u = (yx[b] - yx[a]) / sep
            centre = yx[a] + SPOKE_RADIUS_MM["large"] * u
            angle0 = angle_deg(centre, yx[a])
            z0 = 0.5 * (zs[a] + zs[b])
            matches, rms = {}, math.inf
            for _ in range(3):
                pred = layout_points(centre, angle0, _MODEL_SIZES)
                found = _match(yx, zs, pred, z0, tol_z)
                if len(found) < 2:
                    break
                keys = sorted(found)
                c, angle0, rms = fit_rigid(model0[keys], yx[[found[p] for p in keys]])
                centre = c
                z0 = float(np.median(zs[[found[p] for p in keys]]))
                matches = found
            if len(matches) < 2:
                continue
            key = (len(matches), -rms)
            if best_key is None or key > best_key:
                best_key = key
                best = SpokeFit(centre_yx=(float(centre[0]), float(centre[1])),
                                angle0_deg=float(angle0 % 360.0), z_mm=z0, rms_mm=float(rms),
                                matches={(p // 2, _MODEL_SIZES[p % 2]): s
                                         for p, s in matches.items()})
    return best
