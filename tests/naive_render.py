"""Slow, obviously-correct references for the simulator's render kernels.

Nothing here uses ``phantoms._render_kernels``: inside tests are written from
the shapes' definitions, and occupancies are plain averages over dense point
grids (in-plane sub-pixel grid x fine z samples weighted by the SSP density).
"""

from __future__ import annotations

import math

import numpy as np

from phantoms.shapes import Blob, Cylinder, Ellipsoid, Sphere, Tube


def _seg_dist(p, a, b):
    ab = b - a
    L2 = float(ab @ ab)
    if L2 == 0:
        return np.linalg.norm(p - a, axis=-1)
    t = np.clip(((p - a) @ ab) / L2, 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def inside(shape, pts):
    """Boolean (...,) mask of points (..., 3) (z, y, x) inside the shape, by definition."""
    p = np.asarray(pts, dtype=float)
    if isinstance(shape, Sphere):
        return np.linalg.norm(p - np.asarray(shape.centre_mm), axis=-1) <= shape.radius_mm
    if isinstance(shape, Ellipsoid):
        R = np.asarray(shape.rotation)
        u = (p - np.asarray(shape.centre_mm)) @ R / np.asarray(shape.semi_axes_mm)
        return np.sum(u * u, axis=-1) <= 1.0
    if isinstance(shape, Cylinder):
        a = np.asarray(shape.axis)
        d = p - np.asarray(shape.centre_mm)
        s = d @ a
        rad = np.linalg.norm(d - s[..., None] * a, axis=-1)
        return (np.abs(s) <= shape.length_mm / 2) & (rad <= shape.radius_mm)
    if isinstance(shape, Tube):
        c = np.asarray(shape.centreline_mm)
        out = np.zeros(p.shape[:-1], bool)
        for a, b in zip(c[:-1], c[1:]):
            out |= _seg_dist(p, a, b) <= shape.radius_mm
        return out
    if isinstance(shape, Blob):
        out = np.zeros(p.shape[:-1], bool)
        for c, r in zip(shape.centres_mm, shape.radii_mm):
            out |= np.linalg.norm(p - np.asarray(c), axis=-1) <= r
        return out
    raise TypeError(type(shape))


def ssp_pdf(u, thickness_mm, kind, edge_fraction=0.5):
    """Unit-area SSP density (kind 0 trapezoid, 1 gaussian, 2 box), from its definition."""
    u = np.asarray(u, dtype=float)
    T = thickness_mm
    if kind == 2:
        return np.where(np.abs(u) <= T / 2, 1.0 / T, 0.0)
    if kind == 1:
        s = T / (2 * math.sqrt(2 * math.log(2)))
        return np.exp(-0.5 * (u / s) ** 2) / (s * math.sqrt(2 * math.pi))
    w = edge_fraction * T
    base = (T + w) / 2
    return np.clip((base - np.abs(u)) / w, 0.0, 1.0) / T   # 1/T on the top, linear edges


def occupancy(shape, z, y, x, pixel_mm, thickness_mm, kind, *, n_inplane=24, dz_mm=0.01,
              displacements=None):
    """SSP-weighted, pixel-averaged occupancy (K, J, I) by dense sampling.

    ``displacements``: optional (M, 3) shifts (z, y, x) averaged over (time samples).
    """
    z = np.asarray(z, float)
    y = np.asarray(y, float)
    x = np.asarray(x, float)
    disp = np.zeros((1, 3)) if displacements is None else np.asarray(displacements, float)
    sub = (np.arange(n_inplane) + 0.5) / n_inplane * pixel_mm - pixel_mm / 2
    lo, hi = shape.bounding_box_mm()
    out = np.zeros((len(z), len(y), len(x)))
    for d in disp:
        zs = np.arange(lo[0] + d[0] - dz_mm, hi[0] + d[0] + dz_mm, dz_mm) + dz_mm / 2
        wz = ssp_pdf(zs[None, :] - z[:, None], thickness_mm, kind) * dz_mm   # (K, Z')
        for j, yc in enumerate(y):
            ys = yc + sub
            for i, xc in enumerate(x):
                xs = xc + sub
                P = np.stack(np.meshgrid(zs - d[0], ys - d[1], xs - d[2], indexing="ij"), -1)
                occ = inside(shape, P).mean(axis=(1, 2))                     # (Z',)
                out[:, j, i] += wz @ occ
    return out / len(disp)
