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


def spherical_roi_labels(scan, centres_mm, radius_mm, *, names=None, radius_z_mm=None,
                         overlap="raise") -> xr.DataArray:
    """Label image with one spherical (or ellipsoidal) ROI per lesion, on the scan's grid.

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
    radius_z_mm : float or (N,) array_like of float, optional
        Semi-axis along z in mm, for ROIs elongated or flattened along z (an
        ellipsoid with in-plane radius ``radius_mm``). Default: ``radius_mm``
        (a sphere). A voxel is inside when
        ``(dz / radius_z)^2 + (dy^2 + dx^2) / radius^2 <= 1``.
    overlap : {"raise", "report"}, optional
        What to do when two ROIs overlap: raise ``ValueError`` (default), or
        keep the shared voxels in the ROI listed first and list every
        overlapping pair of names in ``attrs["overlaps"]``.

    Returns
    -------
    labels : xarray.DataArray of int32
        0 outside every ROI, ``i + 1`` inside ROI ``i``.

    Raises
    ------
    ValueError
        If two ROIs overlap (a voxel would need two labels) and
        ``overlap="raise"``, if a radius is not positive, or if the shapes disagree.

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
    radii_z = radii if radius_z_mm is None else np.broadcast_to(
        np.asarray(radius_z_mm, dtype=np.float64), (n,))
    if not np.all(np.isfinite(radii_z) & (radii_z > 0)):
        raise ValueError(f"radius_z_mm must be positive, got {radius_z_mm!r}")
    if overlap not in ("raise", "report"):
        raise ValueError(f"overlap must be 'raise' or 'report', got {overlap!r}")
    overlaps = []
    if names is None:
        names = [f"roi_{i + 1}" for i in range(n)]
    names = [str(v) for v in names]
    if len(names) != n:
        raise ValueError(f"names has {len(names)} entries for {n} ROI centres; give one name per ROI")
    z, y, x = (np.asarray(scan.coords[d].values) for d in ("z", "y", "x"))
    labels = np.zeros(scan.shape, dtype=np.int32)
    for i in range(n):
        cz, cy, cx = centres[i]
        r, rz = radii[i], radii_z[i]
        # restrict the distance computation to the ROI's bounding box
        sz, sy, sx = (slice(np.searchsorted(c, lo - h), np.searchsorted(c, lo + h, side="right"))
                      for c, lo, h in ((z, cz, rz), (y, cy, r), (x, cx, r)))
        d2 = (((z[sz, None, None] - cz) * (r / rz)) ** 2 + (y[None, sy, None] - cy) ** 2
              + (x[None, None, sx] - cx) ** 2)
        inside = d2 <= r * r
        block = labels[sz, sy, sx]
        clash = inside & (block != 0)
        if np.any(clash):
            others = [names[int(v) - 1] for v in np.unique(block[clash])]
            if overlap == "raise":
                raise ValueError(
                    f"ROIs {others[0]!r} and {names[i]!r} overlap; use a smaller radius_mm "
                    f"(now {r:g} mm) so each voxel belongs to one ROI")
            overlaps += [(other, names[i]) for other in others]
            inside &= ~clash
        block[inside] = i + 1
    attrs = {"label_names": {i + 1: names[i] for i in range(n)}}
    if overlap == "report":
        attrs["overlaps"] = overlaps
    return xr.DataArray(labels, dims=scan.dims, coords=scan.coords, attrs=attrs)


def truth_roi_labels(scan, truth, *, margin_mm=2.0) -> xr.DataArray:
    """Label image of simulated lesions: each lesion's footprint grown by a margin.

    Parameters
    ----------
    scan : xarray.DataArray
        The simulated scan (see :func:`phantoms.simulate`).
    truth : xarray.Dataset
        Its truth, with fraction maps (see :mod:`phantoms.truth`).
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

    from phantoms.truth import fraction_boxes, lesion_table
    from pvcalc.scan import scan_spacing_mm

    validate_scan(scan)
    names = lesion_table(truth)["lesion"].tolist()
    spacing = np.asarray(scan_spacing_mm(scan))
    grow = np.ceil(float(margin_mm) / spacing).astype(int)
    labels = np.zeros(scan.shape, dtype=np.int32)
    for i, (index, fractions) in enumerate(fraction_boxes(truth, scan)):
        footprint = fractions > 0
        if not footprint.any():
            continue
        # the dilation stays within the stored box grown by ``grow`` (clipped to the scan)
        box = tuple(slice(max(s.start - g, 0), min(s.stop + g, size))
                    for s, g, size in zip(index, grow, scan.shape))
        padded = np.zeros(tuple(b.stop - b.start for b in box), dtype=bool)
        padded[tuple(slice(s.start - b.start, s.stop - b.start)
                     for s, b in zip(index, box))] = footprint
        # dilation by a box of (2 grow + 1) voxels: a separable running maximum
        grown = ndimage.maximum_filter(padded, size=tuple(2 * grow + 1), mode="constant",
                                       cval=False)
        block = labels[box]
        block[grown & (block == 0)] = i + 1
    return xr.DataArray(labels, dims=scan.dims, coords=scan.coords,
                        attrs={"label_names": {i + 1: n for i, n in enumerate(names)}})


def candidate_labels(scan, *, threshold_hu=130.0, mask=None, min_voxels=3,
                     margin_mm=2.0) -> xr.DataArray:
    """Lesion ROIs for a scan without any: connected components at a threshold, grown.

    Parameters
    ----------
    scan : xarray.DataArray
        Scan in HU (see :func:`pvcalc.make_scan`).
    threshold_hu : float, optional
        Calcium threshold (inclusive, HU >= threshold). Default 130 HU.
    mask : (Z, Y, X) int or bool array or xarray.DataArray, optional
        Only voxels with mask > 0 can be candidates (for example a heart or
        artery label image); components never cross a boundary between two
        mask labels, and grown ROIs stay inside the mask.
    min_voxels : int, optional
        Smallest component kept, in voxels. Default 3 (isolated noise voxels
        above threshold are dropped).
    margin_mm : float, optional
        Each component is grown by this distance (mm, Euclidean with the scan's
        spacing) to hold its blurred edge; where two grown components meet, a
        voxel goes to the nearer one. Default 2 mm.

    Returns
    -------
    labels : xarray.DataArray of int32
        ``i + 1`` in candidate ``i`` (numbered in raster order of their first
        voxel, slice by slice), 0 elsewhere; names ``candidate_1``, ... in
        ``attrs["label_names"]``.

    Notes
    -----
    Components are those of the clinical scoring (:func:`pvcalc.score`):
    8-connected in each axial slice and linked across neighbouring slices
    (26-connected in 3D), found by the same labelling kernels.

    Examples
    --------
    >>> import numpy as np, pvcalc
    >>> a = np.zeros((3, 30, 30)); a[1, 5:8, 5:8] = 300.0; a[1, 20, 20] = 300.0
    >>> labels = candidate_labels(pvcalc.make_scan(a, (3.0, 0.5, 0.5)), margin_mm=1.0)
    >>> labels.attrs["label_names"], int((labels == 1).sum())   # 7 x 7 square minus 3 per corner
    ({1: 'candidate_1'}, 37)
    """
    from skimage.segmentation import expand_labels

    from pvcalc.scan import scan_spacing_mm
    from pvcalc.scoring import _label_kernels as _k
    from pvcalc.scoring._agatston import _validate_labels, label_components

    validate_scan(scan)
    thr = float(threshold_hu)
    if not np.isfinite(thr):
        raise ValueError(f"threshold_hu must be a finite HU value, got {threshold_hu!r}")
    if isinstance(min_voxels, bool) or not isinstance(min_voxels, (int, np.integer)) \
            or min_voxels < 1:
        raise ValueError(f"min_voxels must be an integer >= 1, got {min_voxels!r}")
    margin = float(margin_mm)
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin_mm must be a non-negative length in mm, got {margin_mm!r}")
    lab, _ = _validate_labels(scan, mask)
    vol = np.ascontiguousarray(scan.values, dtype=np.float32)
    c = label_components(vol, lab, thr, connectivity=8)
    n_comp = c["n_voxels"].size
    lesion = c["lesion_3d"]
    n3 = int(lesion.max()) + 1 if n_comp else 0
    size = np.bincount(lesion, weights=c["n_voxels"], minlength=n3)
    keep3 = size >= min_voxels
    new_id = np.zeros(n3, dtype=np.int32)
    new_id[keep3] = np.arange(1, int(keep3.sum()) + 1, dtype=np.int32)
    comp_map = _k._paint_components(vol.shape[0], vol.shape[1], vol.shape[2], c["row_start"],
                                    c["run_x0"], c["run_x1"], c["run_comp"],
                                    np.ones(n_comp, dtype=np.bool_))
    lut = np.concatenate([[0], new_id[lesion]]).astype(np.int32)  # index comp + 1
    labels = lut[comp_map + 1]
    if margin > 0 and labels.any():
        labels = expand_labels(labels, distance=margin, spacing=scan_spacing_mm(scan))
        if lab is not None:
            labels[lab == 0] = 0
    n = int(keep3.sum())
    return xr.DataArray(labels.astype(np.int32), dims=scan.dims, coords=scan.coords,
                        attrs={"label_names": {i + 1: f"candidate_{i + 1}" for i in range(n)}})
