"""Regions of interest around known lesion positions.

Phantom analysis (and simulation studies, where the truth gives every lesion's
centre) scores each insert inside its own region of interest, so that a
fragment of one insert is never counted for another and a missed insert is
reported as a zero rather than silently absent.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pvcalc.scan import validate_scan


def spherical_roi_labels(scan, centres_mm, radius_mm, *, names=None) -> xr.DataArray:
    """Label image with one spherical ROI per lesion, on the scan's grid.

    Parameters
    ----------
    scan : xarray.DataArray
        The scan whose grid the labels follow (see :func:`pvcalc.make_scan`).
    centres_mm : (N, 3) array_like of float
        ROI centres (z, y, x) in mm, in the scan's coordinate frame.
    radius_mm : float or (N,) array_like of float
        ROI radii in mm. A voxel belongs to an ROI when its centre lies within
        the radius.
    names : sequence of str, optional
        A name per ROI, stored in ``attrs["label_names"]`` so that per-label
        score tables show them. Default: ``"roi_1"``, ``"roi_2"``, ...

    Returns
    -------
    labels : xarray.DataArray of int32
        0 outside every ROI, ``i + 1`` inside ROI ``i``.

    Raises
    ------
    ValueError
        If two ROIs overlap (a voxel would need two labels), if a radius is not
        positive, or if the shapes disagree.

    Examples
    --------
    >>> import numpy as np, pvcalc
    >>> scan = pvcalc.make_scan(np.zeros((3, 20, 20)), (3.0, 1.0, 1.0))
    >>> labels = spherical_roi_labels(scan, [(3.0, 5.0, 5.0), (3.0, 14.0, 14.0)], 2.0,
    ...                               names=["a", "b"])
    >>> int((labels == 1).sum()), labels.attrs["label_names"]
    (13, {1: 'a', 2: 'b'})
    """
    validate_scan(scan)
    centres = np.asarray(centres_mm, dtype=np.float64)
    if centres.ndim != 2 or centres.shape[1] != 3:
        raise ValueError(
            f"centres_mm must have shape (N, 3) holding (z, y, x) in mm, got shape {centres.shape}")
    n = centres.shape[0]
    radii = np.broadcast_to(np.asarray(radius_mm, dtype=np.float64), (n,))
    if not np.all(np.isfinite(radii) & (radii > 0)):
        raise ValueError(f"radius_mm must be positive, got {radius_mm!r}")
    if names is None:
        names = [f"roi_{i + 1}" for i in range(n)]
    names = [str(v) for v in names]
    if len(names) != n:
        raise ValueError(f"names has {len(names)} entries for {n} ROI centres; give one name per ROI")
    z, y, x = (np.asarray(scan.coords[d].values) for d in ("z", "y", "x"))
    labels = np.zeros(scan.shape, dtype=np.int32)
    for i in range(n):
        cz, cy, cx = centres[i]
        r = radii[i]
        # restrict the distance computation to the ROI's bounding box
        sz, sy, sx = (slice(np.searchsorted(c, lo - r), np.searchsorted(c, lo + r, side="right"))
                      for c, lo in ((z, cz), (y, cy), (x, cx)))
        d2 = ((z[sz, None, None] - cz) ** 2 + (y[None, sy, None] - cy) ** 2
              + (x[None, None, sx] - cx) ** 2)
        inside = d2 <= r * r
        block = labels[sz, sy, sx]
        clash = inside & (block != 0)
        if np.any(clash):
            other = names[int(block[clash][0]) - 1]
            raise ValueError(
                f"ROIs {other!r} and {names[i]!r} overlap; use a smaller radius_mm "
                f"(now {r:g} mm) so each voxel belongs to one ROI")
        block[inside] = i + 1
    return xr.DataArray(labels, dims=scan.dims, coords=scan.coords,
                        attrs={"label_names": {i + 1: names[i] for i in range(n)}})


def truth_roi_labels(scan, truth, *, margin_mm=2.0) -> xr.DataArray:
    """Label image of simulated lesions: each lesion's footprint grown by a margin.

    Parameters
    ----------
    scan : xarray.DataArray
        The simulated scan (see :func:`phantoms.simulate`).
    truth : xarray.Dataset
        Its truth, with a fraction map patch ``fraction_<i>`` per lesion on the
        scan grid (coordinates ``z_<i>``, ``y_<i>``, ``x_<i>``) and a ``name``.
    margin_mm : float, optional
        Growth of every footprint (voxels with a non-zero fraction) in mm, in
        all three directions, to hold the blurred edge. Default 2 mm.

    Returns
    -------
    labels : xarray.DataArray of int32
        ``i + 1`` around lesion ``i``, 0 elsewhere; names in
        ``attrs["label_names"]``. Where grown footprints of two lesions meet,
        the voxel goes to the lesion listed first.
    """
    from scipy import ndimage

    from pvcalc.scan import scan_spacing_mm

    validate_scan(scan)
    if "lesion" not in truth.dims:
        raise ValueError("truth must be a Dataset indexed by 'lesion' (from phantoms.simulate)")
    spacing = np.asarray(scan_spacing_mm(scan))
    grow = np.ceil(float(margin_mm) / spacing).astype(int)
    coords = [np.asarray(scan.coords[d].values) for d in ("z", "y", "x")]
    labels = np.zeros(scan.shape, dtype=np.int32)
    names = [str(v) for v in truth["name"].values]
    for i in range(truth.sizes["lesion"]):
        var = f"fraction_{i}"
        if var not in truth:
            raise ValueError(f"truth has no fraction map {var!r} for lesion {i}")
        patch = truth[var]
        starts = [_index_of(coords[a], float(patch.coords[patch.dims[a]].values[0]), scan.dims[a])
                  for a in range(3)]
        footprint = np.zeros(scan.shape, dtype=bool)
        region = tuple(slice(s, s + n) for s, n in zip(starts, patch.shape))
        footprint[region] = patch.values > 0
        lo = [max(s - g, 0) for s, g in zip(starts, grow)]
        hi = [min(s + n + g, size) for s, n, g, size in zip(starts, patch.shape, grow, scan.shape)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        structure = np.ones(tuple(2 * g + 1 for g in grow), dtype=bool)
        grown = ndimage.binary_dilation(footprint[box], structure=structure)
        block = labels[box]
        block[grown & (block == 0)] = i + 1
    return xr.DataArray(labels, dims=scan.dims, coords=scan.coords,
                        attrs={"label_names": {i + 1: n for i, n in enumerate(names)}})


def _index_of(axis_coords, value, dim):
    index = int(np.argmin(np.abs(axis_coords - value)))
    step = abs(axis_coords[1] - axis_coords[0]) if axis_coords.size > 1 else 1.0
    if abs(axis_coords[index] - value) > 1e-3 * step:
        raise ValueError(f"a truth fraction patch does not lie on the scan's {dim} grid")
    return index
