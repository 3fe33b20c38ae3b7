"""Build the truth Dataset of a simulated scan (private helper of ``simulate``)."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from .motion import CardiacMotion, ConstantVelocity
from .shapes import Blob, Cylinder, Ellipsoid, Sphere, Tube

_NAN = float("nan")


def _shape_row(shape):
    row = dict(shape=shape.kind, radius_mm=_NAN, length_mm=_NAN,
               semi_axis_0_mm=_NAN, semi_axis_1_mm=_NAN, semi_axis_2_mm=_NAN,
               axis_z=_NAN, axis_y=_NAN, axis_x=_NAN, n_parts=1)
    if isinstance(shape, Sphere):
        row["radius_mm"] = shape.radius_mm
    elif isinstance(shape, Ellipsoid):
        for i, a in enumerate(shape.semi_axes_mm):
            row[f"semi_axis_{i}_mm"] = a
        r = np.asarray(shape.rotation)[:, 0]
        row.update(axis_z=r[0], axis_y=r[1], axis_x=r[2])
    elif isinstance(shape, Cylinder):
        row.update(radius_mm=shape.radius_mm, length_mm=shape.length_mm,
                   axis_z=shape.axis[0], axis_y=shape.axis[1], axis_x=shape.axis[2])
    elif isinstance(shape, Tube):
        row.update(radius_mm=shape.radius_mm, length_mm=shape.length_mm,
                   n_parts=len(shape.centreline_mm) - 1)
    elif isinstance(shape, Blob):
        row.update(radius_mm=max(shape.radii_mm), n_parts=len(shape.radii_mm))
    row["shape_params"] = repr(shape)
    return row


def _motion_row(motion):
    row = dict(motion=motion.kind, velocity_z_mm_s=0.0, velocity_y_mm_s=0.0,
               velocity_x_mm_s=0.0, peak_velocity_mm_s=0.0, direction_z=_NAN,
               direction_y=_NAN, direction_x=_NAN, motion_heart_rate_bpm=_NAN)
    if isinstance(motion, ConstantVelocity):
        v = motion.velocity_mm_s
        row.update(velocity_z_mm_s=v[0], velocity_y_mm_s=v[1], velocity_x_mm_s=v[2],
                   peak_velocity_mm_s=motion.speed_mm_s)
        s = motion.speed_mm_s
        if s > 0:
            row.update(direction_z=v[0] / s, direction_y=v[1] / s, direction_x=v[2] / s)
    elif isinstance(motion, CardiacMotion):
        d = motion.direction
        row.update(peak_velocity_mm_s=motion.peak_velocity_mm_s, direction_z=d[0],
                   direction_y=d[1], direction_x=d[2],
                   motion_heart_rate_bpm=motion.heart_rate_bpm)
    return row


def build_truth(lesions, nominal, delta_hu, tissue_hu, fractions, voxel_mm3, attrs):
    """Truth Dataset indexed by ``lesion``.

    ``lesions``: the lesions as scanned (after repositioning), which give the
    positions; ``nominal``: the phantom's lesions, which give volume and mass
    (so numeric volumes do not change with the pose); ``fractions``: per
    lesion ``(array (Kf, Jf, If), z, y, x)`` or None.
    """
    rows = []
    for i, (les, nom) in enumerate(zip(lesions, nominal)):
        c = les.shape.centre
        row = dict(name=les.name or f"lesion_{i}", volume_mm3=nom.volume_mm3,
                   mass_mg=nom.mass_mg, density_mg_cm3=les.density_mg_cm3,
                   delta_hu=delta_hu[i], hu=tissue_hu[i] + delta_hu[i],
                   background_hu=tissue_hu[i],
                   centre_z_mm=c[0], centre_y_mm=c[1], centre_x_mm=c[2])
        row.update(_shape_row(les.shape))
        row.update(_motion_row(les.motion))
        if fractions is not None:
            f = fractions[i][0]
            row["fraction_volume_mm3"] = float(f.sum() * voxel_mm3)
        rows.append(row)
    data = {}
    if rows:
        for key in rows[0]:
            vals = [r[key] for r in rows]
            if isinstance(vals[0], str):
                data[key] = ("lesion", np.array(vals, dtype=object).astype(str))
            else:
                data[key] = ("lesion", np.asarray(vals))
    patch_coords = {}
    if fractions is not None:
        desc = ("time-averaged voxel occupancy of the lesion (box slice profile of width = "
                "increment); sum x voxel volume = volume_mm3 when the lesion is inside the grid "
                "and, in non-gated helical scans, does not move along z (slices acquired at "
                "different times may then see it twice or miss part of it)")
        for i, (f, z, y, x) in enumerate(fractions):
            data[f"fraction_{i}"] = ((f"z_{i}", f"y_{i}", f"x_{i}"), f.astype(np.float32),
                                     dict(units="1", description=desc))
            for d, v in (("z", z), ("y", y), ("x", x)):
                patch_coords[f"{d}_{i}"] = (f"{d}_{i}", np.asarray(v))
    # patch coordinates without pandas indexes: building hundreds of indexes costs
    # ~10 ms per lesion in xarray; read them with .values (or set_xindex to select)
    coords = xr.Coordinates(patch_coords, indexes={})
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs))
    ds = ds.assign_coords(lesion=np.arange(len(rows)))
    if not math.isfinite(voxel_mm3):
        raise ValueError("voxel volume must be finite")
    return ds
