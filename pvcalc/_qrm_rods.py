"""Find the calibration rods of the QRM calcification insert.

Private helper of :func:`pvcalc.qrm.locate_cci`. The rods are discs, 7 to 30 mm
across, within :data:`ROD_SEARCH_MM` of the insert's axis: the 200 mg HA/cm3 rod at
least :data:`HA_MIN_CONTRAST_HU` brighter than the insert body, the water-equivalent
rod darker than it. They are searched slice by slice in every slice of the scan (the
physical insert keeps them in their own axial section; the compact replica runs them
through the insert plane), linked into tracks along z, and measured on the track.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvcalc._qrm_inserts import _noise_sd

#: Rod centres lie within this distance (mm) of the insert axis.
ROD_SEARCH_MM = 45.0
#: Smoothing (Gaussian sigma, mm, in-plane) of the image the rods are searched in, and of
#: the one their radius is measured in (less smoothed: a sharper edge).
ROD_SEARCH_SMOOTH_MM = 2.5
ROD_SMOOTH_MM = 1.5
#: Range of equivalent diameters (mm) of a rod's cross-section.
ROD_DIAMETER_RANGE_MM = (7.0, 30.0)
#: The HA rod reads at least this much above the insert body (HU); a 200 mg HA/cm3 rod
#: reads 220-280 HU above water at 120 kVp, 150-240 HU above a 40-75 HU insert body.
HA_MIN_CONTRAST_HU = 80.0
#: The water rod reads at least this much below the insert body (HU) (real scans: 30-50
#: HU in a 70-80 HU body), and at least WATER_MIN_SD noise SDs of the search image.
WATER_MIN_CONTRAST_HU = 12.0
WATER_MIN_SD = 3.0
#: Cross-sections must be round: eccentricity at most, solidity at least.
MAX_ECCENTRICITY = 0.75
MIN_SOLIDITY = 0.85


@dataclass
class RodFit:
    """A located rod."""

    name: str
    z_lo: float
    z_hi: float
    y: float
    x: float
    radius_mm: float
    plateau_hu: float
    off_hu: float
    confidence: float


def _crop(img, centre_yx, half_mm):
    j0 = int(np.searchsorted(img.y, centre_yx[0] - half_mm))
    j1 = int(np.searchsorted(img.y, centre_yx[0] + half_mm, side="right"))
    i0 = int(np.searchsorted(img.x, centre_yx[1] - half_mm))
    i1 = int(np.searchsorted(img.x, centre_yx[1] + half_mm, side="right"))
    return slice(j0, j1), slice(i0, i1)


def _sections(mask, dist, yy, xx, spacing, reach_mm):
    """Round components of a 2D mask: [(y, x, area_mm2, solidity, eccentricity)]."""
    from skimage.measure import regionprops

    _, dy, dx = spacing
    lab, n = ndimage.label(mask)
    out = []
    if n == 0:
        return out
    lo, hi = ROD_DIAMETER_RANGE_MM
    for prop in regionprops(lab):
        area = prop.area * dy * dx
        d_eq = 2.0 * math.sqrt(area / math.pi)
        if not lo <= d_eq <= hi:
            continue
        coords = prop.coords
        if dist[coords[:, 0], coords[:, 1]].max() >= reach_mm - max(dy, dx):
            continue   # cut by the search disc: part of a larger structure
        cy, cx = prop.centroid
        y = float(np.interp(cy, np.arange(yy.size), yy))
        x = float(np.interp(cx, np.arange(xx.size), xx))
        out.append((y, x, area, float(prop.solidity), float(prop.eccentricity)))
    return out


def _tracks(per_slice):
    """Link per-slice sections into tracks along z (centres within 3 mm in adjacent slices)."""
    tracks = []
    open_tracks = []
    for k, sections in enumerate(per_slice):
        next_open = []
        for sec in sections:
            for tr in open_tracks:
                ky, (y, x, *_) = tr[-1]
                if ky == k - 1 and math.hypot(sec[0] - y, sec[1] - x) <= 3.0:
                    tr.append((k, sec))
                    next_open.append(tr)
                    open_tracks.remove(tr)
                    break
            else:
                tr = [(k, sec)]
                tracks.append(tr)
                next_open.append(tr)
        open_tracks = next_open
    return tracks


def _volume(track):
    return sum(sec[2] for _, sec in track)


def find_rods(img, centre_yx, body_hu, inserts):
    """Locate the HA and the water rod: a dict name -> :class:`RodFit` (missing ones absent).

    ``inserts`` (the table of :func:`pvcalc._qrm_layout.inserts_table`) are left out
    of the search: a disc of radius d/2 + 6 mm around each, in the slices within
    d/2 + the slice thickness of its centre (a blurred 5 mm insert of 800 mg/cm3 is
    a bright disc about 11 mm across in the smoothed image).
    """
    reach = ROD_SEARCH_MM + 0.5 * ROD_DIAMETER_RANGE_MM[1] + 2.0
    sy, sx = _crop(img, centre_yx, reach)
    yy, xx = img.y[sy], img.x[sx]
    if yy.size < 3 or xx.size < 3:
        return {}
    _, dy, dx = img.spacing
    crop = img.values[:, sy, sx]
    smooth = ndimage.gaussian_filter(crop, (0.0, ROD_SMOOTH_MM / dy, ROD_SMOOTH_MM / dx),
                                     mode="nearest")
    search = ndimage.gaussian_filter(crop, (0.0, ROD_SEARCH_SMOOTH_MM / dy,
                                            ROD_SEARCH_SMOOTH_MM / dx), mode="nearest")
    dist = np.sqrt((yy[:, None] - centre_yx[0]) ** 2 + (xx[None, :] - centre_yx[1]) ** 2)
    disc = np.broadcast_to(dist < reach, smooth.shape).copy()
    for row in inserts.itertuples():
        near = np.abs(img.z - row.centre_z_mm) <= 0.5 * row.diameter_mm + img.thickness_mm
        r = 0.5 * row.diameter_mm + 6.0
        disc[near] &= ((yy[:, None] - row.centre_y_mm) ** 2
                       + (xx[None, :] - row.centre_x_mm) ** 2) > r * r
    sd = _noise_sd(smooth, img.spacing)
    dark_step = max(WATER_MIN_CONTRAST_HU, WATER_MIN_SD * _noise_sd(search, img.spacing))
    found = {}
    for name, mask_of in (("ha200", lambda s: s > body_hu + HA_MIN_CONTRAST_HU),
                          ("water", lambda s: s < body_hu - dark_step)):
        per_slice = []
        for k in range(search.shape[0]):
            secs = _sections(mask_of(search[k]) & disc[k], dist, yy, xx, img.spacing, reach)
            per_slice.append([s for s in secs if s[3] >= MIN_SOLIDITY and s[4] <= MAX_ECCENTRICITY
                              and math.hypot(s[0] - centre_yx[0], s[1] - centre_yx[1])
                              <= ROD_SEARCH_MM])
        tracks = _tracks(per_slice)
        if name == "water" and "ha200" in found and tracks:
            ha = found["ha200"]

            def overlap(tr, ha=ha):
                zs = [img.z[k] for k, _ in tr]
                return max(0.0, min(max(zs), ha.z_hi) - max(min(zs), ha.z_lo))
            # the water rod shares the HA rod's section and lies beside it
            near = [tr for tr in tracks if overlap(tr) > 0
                    and math.hypot(tr[0][1][0] - ha.y, tr[0][1][1] - ha.x) > ha.radius_mm]
            tracks = near or tracks
        if not tracks:
            continue
        best = max(tracks, key=_volume)
        found[name] = _measure(img, (sy, sx), smooth, best, body_hu, name, sd)
    return found


def _measure(img, crop, smooth, track, body_hu, name, sd_smooth):
    """Centre, radius, plateau and z extent of a rod from its track."""
    yy, xx = img.y[crop[0]], img.x[crop[1]]
    ks = np.array([k for k, _ in track])
    areas = np.array([sec[2] for _, sec in track])
    y = float(np.average([sec[0] for _, sec in track], weights=areas))
    x = float(np.average([sec[1] for _, sec in track], weights=areas))
    inner = ks[1:-1] if ks.size >= 3 else ks
    r_eq = math.sqrt(float(np.median(areas)) / math.pi)
    d2 = (yy[:, None] - y) ** 2 + (xx[None, :] - x) ** 2
    core = d2 <= max(r_eq - 2.0, 1.0) ** 2
    block = img.values[:, crop[0], crop[1]]
    profile = np.array([float(block[k][core].mean()) for k in range(block.shape[0])])
    plateau = float(np.median(profile[inner]))
    outside = np.setdiff1d(np.arange(profile.size), ks)
    off = float(np.median(profile[outside])) if outside.size >= 2 else float(body_hu)
    half = 0.5 * (plateau + off)
    sign = 1.0 if plateau > off else -1.0
    # radius: the area past the level half-way to the ring around the rod, slice by slice;
    # the half-level contour of a disc blurred by a Gaussian (sigma s) lies about
    # s^2 / (2 r) inside its edge, which is added back
    # and the centre: the centroid of that area (in the less smoothed image a neighbour's
    # blurred edge does not shift it)
    radii, centres = [], []
    reach = d2 <= (r_eq + 3.0) ** 2
    ring = (d2 >= (r_eq + 3.0) ** 2) & (d2 <= (r_eq + 6.0) ** 2)
    for k in inner:
        level = 0.5 * (float(np.median(block[k][core])) + float(np.median(block[k][ring])))
        inside = (sign * (smooth[k] - level) > 0) & reach
        lab, _ = ndimage.label(inside)
        centre_label = lab[np.unravel_index(int(np.argmin(d2)), d2.shape)]
        if centre_label:
            region = lab == centre_label
            radii.append(math.sqrt(region.sum() * img.spacing[1] * img.spacing[2] / math.pi))
            j, i = np.nonzero(region)
            centres.append((float(yy[j].mean()), float(xx[i].mean())))
    radius = float(np.median(radii)) if radii else r_eq
    if centres:
        y, x = (float(v) for v in np.median(np.array(centres), axis=0))
    radius += ROD_SMOOTH_MM ** 2 / (2.0 * radius)
    z_lo = _crossing(img.z, profile, int(ks[ks.size // 2]), half, sign, -1)
    z_hi = _crossing(img.z, profile, int(ks[ks.size // 2]), half, sign, +1)
    contrast = abs(plateau - off) / max(sd_smooth, 1e-3)
    shape = float(np.mean([sec[3] * math.sqrt(max(0.0, 1.0 - sec[4] ** 2)) for _, sec in track]))
    span = np.sum((img.z >= z_lo) & (img.z <= z_hi))
    coverage = min(1.0, ks.size / span) if span else 1.0
    confidence = (1.0 - math.exp(-(contrast / 3.0) ** 2)) * shape * coverage
    return RodFit(name=name, z_lo=z_lo, z_hi=z_hi, y=y, x=x, radius_mm=radius,
                  plateau_hu=plateau, off_hu=off, confidence=float(np.clip(confidence, 0, 1)))


def _crossing(z, profile, k, half, sign, step):
    """z where the profile, walking from slice k by ``step``, crosses ``half`` (interpolated)."""
    j = k
    while 0 <= j + step < z.size and sign * (profile[j + step] - half) > 0:
        j += step
    if not 0 <= j + step < z.size:
        return float(z[j])
    a, b = profile[j] - half, profile[j + step] - half
    t = a / (a - b) if a != b else 0.5
    return float(z[j] + t * (z[j + step] - z[j]))
