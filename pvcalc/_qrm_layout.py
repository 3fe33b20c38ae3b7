"""From a spoke fit to the table of the nine inserts (private to :mod:`pvcalc.qrm`).

Every insert is measured at its fitted position; the spokes get their densities from
the HA per volume of their inserts; positions combine the measurement with the
refitted layout; z comes from the insert plane fitted through the inserts found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pvcalc import _qrm_geometry as geo
from pvcalc._qrm_inserts import FIT_TOL_MM, FOUND_CNR, MIN_BACKGROUND_HU, measure

#: Columns of :attr:`pvcalc.qrm.CCILayout.inserts`.
INSERT_COLUMNS = ("lesion", "diameter_mm", "density_mg_cm3", "centre_z_mm", "centre_y_mm",
                  "centre_x_mm", "found", "confidence", "peak_hu", "contrast_hu", "cnr")
#: The fitted layout counts as much as a measurement with this contrast-to-noise ratio
#: when the two are averaged (inverse-variance weights cnr^2 and LAYOUT_CNR^2): the
#: centroid of a spot at CNR 20 scatters by about 0.3 mm, as much as the layout may
#: differ from the nominal geometry of a real insert.
LAYOUT_CNR = 20.0
#: Prior SD (degrees) of the insert plane's tilt in its fit: a phantom lies flat on the
#: table to a few degrees.
TILT_PRIOR_DEG = 2.0
#: SD of a spot's z centroid, as a multiple of slice thickness / cnr (mm).
Z_SCATTER = 3.0
#: Each insert is searched within this distance of its fitted position (mm).
SEARCH_MM = {"large": 2.0, "medium": 2.0, "small": 1.5}


@dataclass
class Inserts:
    """The inserts' table and the refitted layout (axis, hd spoke angle, plane z, RMS)."""

    table: pd.DataFrame
    centre_yx: tuple
    rotation_deg: float
    z_mm: float
    rms_mm: float


def inserts_table(img, fit, spots) -> Inserts:
    """Measure, identify and place the nine inserts given the spoke fit."""
    matched = set(fit.matches)
    measured = {}
    for m in range(3):
        for size, d in geo.SIZES.items():
            pred = geo.point_at(fit.centre_yx, geo.SPOKE_RADIUS_MM[size], fit.angle0_deg + 120.0 * m)
            spot = measure(img, (fit.z_mm, *pred), diameter_mm=d, search_mm=SEARCH_MM[size])
            dev = math.inf if spot is None else math.hypot(spot.y - pred[0], spot.x - pred[1])
            seen = spot is not None and spot.background_hu >= MIN_BACKGROUND_HU and (
                (m, size) in matched or (spot.cnr >= FOUND_CNR and dev <= (
                    SEARCH_MM[size] if size == "small" else FIT_TOL_MM)))
            measured[(m, size)] = (spot, bool(seen))
    big = [(m, s) for m in range(3) for s in ("large", "medium") if measured[(m, s)][1]]
    model = {key: geo.point_at((0.0, 0.0), geo.SPOKE_RADIUS_MM[key[1]], 120.0 * key[0])
             for key in measured}
    # refit the layout to the measured centres, weighted by cnr^2 (capped at 50^2)
    centre, angle0 = fit.centre_yx, fit.angle0_deg
    if len(big) >= 3:
        w = np.array([min(measured[k][0].cnr, 50.0) ** 2 for k in big])
        centre, angle0, _ = geo.fit_rigid([model[k] for k in big],
                                          [(measured[k][0].y, measured[k][0].x) for k in big], w)
    layout = {key: geo.point_at(centre, geo.SPOKE_RADIUS_MM[key[1]], angle0 + 120.0 * key[0])
              for key in measured}
    rms = float(np.sqrt(np.mean([math.hypot(measured[k][0].y - layout[k][0],
                                            measured[k][0].x - layout[k][1]) ** 2
                                 for k in big]))) if big else fit.rms_mm
    order, density_conf = _spoke_densities(measured)
    plane = _insert_plane(centre, [measured[k][0] for k in big], img.thickness_mm, fit.z_mm)
    layout_conf = (len(big) / 6.0) * math.exp(-0.5 * rms ** 2)
    spoke_of = dict(zip(geo.DENSITIES, order))
    rows = []
    for name, d, rho in geo.INSERTS:
        size, dens = name.split("_")
        key = (spoke_of[dens], size)
        spot, seen = measured[key]
        dconf = density_conf[list(geo.DENSITIES).index(dens)]
        ly, lx = layout[key]
        if seen:
            wm, wl = spot.cnr ** 2, LAYOUT_CNR ** 2
            y = (wm * spot.y + wl * ly) / (wm + wl)
            x = (wm * spot.x + wl * lx) / (wm + wl)
            dev = math.hypot(spot.y - ly, spot.x - lx)
            conf = (1.0 - math.exp(-(spot.cnr / 5.0) ** 2)) * math.exp(-0.5 * dev ** 2) * dconf
        else:
            y, x = ly, lx
            conf = layout_conf * dconf
        rows.append({"lesion": name, "diameter_mm": d, "density_mg_cm3": rho,
                     "centre_z_mm": plane(y, x), "centre_y_mm": y, "centre_x_mm": x,
                     "found": seen, "confidence": float(np.clip(conf, 0.0, 1.0)),
                     "peak_hu": np.nan if spot is None else spot.peak_hu,
                     "contrast_hu": np.nan if spot is None else spot.contrast_hu,
                     "cnr": np.nan if spot is None else spot.cnr})
    table = pd.DataFrame(rows, columns=list(INSERT_COLUMNS))
    table["found"] = table["found"].astype(bool)
    rotation = (angle0 + 120.0 * spoke_of["hd"]) % 360.0
    return Inserts(table=table, centre_yx=(float(centre[0]), float(centre[1])),
                   rotation_deg=float(rotation), z_mm=plane(*centre), rms_mm=rms)


def _spoke_densities(measured):
    """Spokes in the order hd, md, ld, and the confidence of each rank.

    HA per volume of a spoke: the integrated contrast of its large and medium inserts
    found over their nominal volume (blur moves HU around but keeps their sum). A spoke
    without any found takes the lowest rank left.
    """
    q = np.full(3, np.nan)
    for m in range(3):
        num = den = 0.0
        for size in ("large", "medium"):
            spot, seen = measured[(m, size)]
            if seen:
                num += spot.integral_hu_mm3
                den += geo.insert_volume_mm3(geo.SIZES[size])
        if den > 0:
            q[m] = num / den
    order = sorted(range(3), key=lambda m: (np.isnan(q[m]), -np.nan_to_num(q[m])))
    return order, _density_confidence(q[order])


def _density_confidence(q_sorted):
    """Confidence of each rank (hd, md, ld): min(1, log2 of the ratio to its neighbours);
    the nominal ratio is 2 (800 / 400 / 200 mg/cm3), 0.5 where a ratio is unknown."""
    def term(a, b):
        if not (np.isfinite(a) and np.isfinite(b)) or b <= 0:
            return 0.5
        return float(np.clip(math.log2(a / b), 0.0, 1.0))
    t01, t12 = term(q_sorted[0], q_sorted[1]), term(q_sorted[1], q_sorted[2])
    return (t01, min(t01, t12), t12)


def _insert_plane(centre, spots, thickness_mm, z_default):
    """z of the insert plane as a function of (y, x).

    Weighted least squares through the spots' z centroids, with weights 1 / sd^2 for
    ``sd = Z_SCATTER x thickness / cnr`` (at least 0.05 mm) and a Gaussian prior of SD
    :data:`TILT_PRIOR_DEG` on each tilt slope (a ridge penalty); axial through the
    weighted mean with fewer than 3 spots (``z_default`` without any).
    """
    cy, cx = centre
    if not spots:
        return lambda y, x: float(z_default)
    z = np.array([s.z for s in spots])
    sd = np.maximum(Z_SCATTER * thickness_mm / np.array([s.cnr for s in spots]), 0.05)
    w = 1.0 / sd ** 2
    if len(spots) < 3:
        flat = float(np.sum(w * z) / np.sum(w))
        return lambda y, x: flat
    a = np.column_stack([np.ones(len(spots)), [s.y - cy for s in spots], [s.x - cx for s in spots]])
    prior = 1.0 / math.tan(math.radians(TILT_PRIOR_DEG)) ** 2
    lhs = (a * w[:, None]).T @ a + np.diag([0.0, prior, prior])
    coef = np.linalg.solve(lhs, (a * w[:, None]).T @ z)
    return lambda y, x: float(coef[0] + coef[1] * (y - cy) + coef[2] * (x - cx))


#: The insert body is measured this far from the axis (mm): inside the 100 mm insert,
#: clear of the lungs of a thorax phantom without one (the compact replica).
BODY_ANNULUS_MM = (4.0, 32.0)


def insert_body_hu(img, centre_yx, z_mm, inserts, rods=()):
    """Median HU of the insert plane in :data:`BODY_ANNULUS_MM` around the axis, 4 mm
    clear of every insert and 2 mm clear of ``rods``, in the slices within half a slice
    thickness + 2.5 mm of the plane."""
    half = 0.5 * img.thickness_mm + 2.5
    ks = np.flatnonzero(np.abs(img.z - z_mm) <= max(half, 0.5 * img.spacing[0]))
    if ks.size == 0:
        ks = np.array([int(np.argmin(np.abs(img.z - z_mm)))])
    cy, cx = centre_yx
    r_in, r_out = BODY_ANNULUS_MM
    j0, j1 = np.searchsorted(img.y, [cy - r_out, cy + r_out])
    i0, i1 = np.searchsorted(img.x, [cx - r_out, cx + r_out])
    yy, xx = img.y[j0:j1], img.x[i0:i1]
    d2 = (yy[:, None] - cy) ** 2 + (xx[None, :] - cx) ** 2
    keep = (d2 >= r_in ** 2) & (d2 <= r_out ** 2)
    clear = [(row.centre_y_mm, row.centre_x_mm, 0.5 * row.diameter_mm + 4.0)
             for row in inserts.itertuples()] + [(r.y, r.x, r.radius_mm + 2.0) for r in rods]
    for y0, x0, r in clear:
        keep &= ((yy[:, None] - y0) ** 2 + (xx[None, :] - x0) ** 2) > r * r
    if not keep.any():
        return float("nan")
    return float(np.median(img.values[ks][:, j0:j1, i0:i1][:, keep]))
