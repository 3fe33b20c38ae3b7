"""NIfTI-1 input and output with the pvcalc (z, y, x) LPS convention.

Scan coordinates are DICOM patient coordinates (LPS: x towards the patient's
left, y towards posterior, z towards the head). NIfTI affines map voxels to
RAS (x towards the right, y towards anterior), so x_LPS = -x_RAS and
y_LPS = -y_RAS, with z shared.
"""

from __future__ import annotations

import json
import os

import numpy as np

from pvcalc.io._errors import ScanFileError

#: Largest off-diagonal affine element, relative to the voxel size, accepted
#: as an axis-aligned (non-oblique) grid.
OBLIQUE_TOL = 1e-3
NIFTI_SUFFIXES = (".nii.gz", ".nii")
_UNIT_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 1e-3, "unknown": 1.0}
_SIDECAR_KIND = "pvcalc scan sidecar"


def is_nifti_path(path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def sidecar_path(path) -> str:
    """``scan.nii.gz`` -> ``scan.json`` (same folder)."""
    p = os.fspath(path)
    for suffix in NIFTI_SUFFIXES:
        if p.lower().endswith(suffix):
            return p[: -len(suffix)] + ".json"
    return p + ".json"


def read_nifti(path):
    """Read a NIfTI file into ``(values, origin_mm, spacing_mm, attrs)``.

    ``values`` is a float32 (z, y, x) array; origin and spacing are (z, y, x)
    in LPS mm.
    """
    import nibabel as nib

    try:
        img = nib.load(path)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds
        raise ScanFileError(path, f"cannot be read as NIfTI ({' '.join(str(exc).split())})",
                            "check that the file is a complete .nii or .nii.gz") from exc
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = nib.funcs.squeeze_image(img)
    if len(img.shape) != 3:
        raise ScanFileError(
            path, f"NIfTI image has shape {img.shape}, not 3D",
            "give one 3D volume (split 4D series, e.g. with nibabel.four_to_three)")
    try:
        img = nib.as_closest_canonical(img)
        data = img.get_fdata(dtype=np.float32)  # may be a view of a memory-mapped file
    except Exception as exc:  # noqa: BLE001
        raise ScanFileError(path, f"NIfTI data cannot be decoded ({' '.join(str(exc).split())})",
                            "check that the file is complete") from exc
    affine = np.asarray(img.affine, dtype=np.float64)
    lin = affine[:3, :3]
    size = np.abs(np.diag(lin))
    off = np.abs(lin - np.diag(np.diag(lin)))
    if np.any(np.diag(lin) <= 0) or np.any(off > OBLIQUE_TOL * size[None, :]):
        raise ScanFileError(
            path, "NIfTI affine is oblique (voxel axes are not aligned with the patient "
            f"axes: {np.array2string(lin, precision=4, separator=',')})".replace("\n", ""),
            "resample the image onto an axis-aligned grid (e.g. with nibabel.processing."
            "resample_to_output) before reading")
    unit = img.header.get_xyzt_units()[0]
    scale = _UNIT_TO_MM.get(unit, 1.0)
    nx, ny, _ = data.shape
    dx, dy, dz = (float(v) * scale for v in np.diag(lin))
    ox = -(affine[0, 3] + (nx - 1) * affine[0, 0]) * scale
    oy = -(affine[1, 3] + (ny - 1) * affine[1, 1]) * scale
    oz = affine[2, 3] * scale
    # RAS -> LPS (flip x, y), then (x, y, z) -> (z, y, x); np.array copies into
    # memory (for our own files the flips cancel and the copy is sequential)
    values = np.array(data[::-1, ::-1, :].transpose(2, 1, 0), order="C")
    origin, spacing = (float(oz), float(oy), float(ox)), (dz, dy, dx)
    attrs, origin, spacing = _apply_sidecar(path, values.shape, origin, spacing)
    attrs["source_path"] = os.path.abspath(path)
    return values, origin, spacing, attrs


def _apply_sidecar(path, shape, origin, spacing):
    """Attrs and exact geometry from the JSON sidecar written by write_nifti."""
    side = sidecar_path(path)
    attrs = {}
    if os.path.isfile(side):
        try:
            with open(side, encoding="utf-8") as fh:
                meta = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ScanFileError(side, f"JSON sidecar cannot be read ({exc})",
                                "fix or delete the sidecar file") from exc
        if isinstance(meta, dict) and meta.get("kind") == _SIDECAR_KIND:
            attrs = {k: tuple(v) if isinstance(v, list) else v
                     for k, v in dict(meta.get("attrs", {})).items()}
            o, s = meta.get("origin_mm_zyx"), meta.get("spacing_mm_zyx")
            if (list(meta.get("shape_zyx", [])) == list(shape) and o and s
                    and np.allclose(o, origin, rtol=0, atol=1e-3)
                    and np.allclose(s, spacing, rtol=1e-5, atol=1e-6)):
                # float32 affines lose digits; the sidecar keeps the float64 grid
                origin, spacing = tuple(map(float, o)), tuple(map(float, s))
    if "kvp" not in attrs:
        attrs["kvp"] = 120.0
        attrs["kvp_source"] = "default"
    if "slice_thickness_mm" not in attrs:
        attrs["slice_thickness_mm"] = float(spacing[0])
        attrs["slice_thickness_source"] = "increment"
    attrs.pop("source_path", None)
    return attrs, origin, spacing


def _json_safe(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return [_json_safe(v) for v in value]
    return value


def write_nifti(scan, path, origin, spacing):
    """Write a validated scan as float32 NIfTI-1 plus a JSON sidecar."""
    import nibabel as nib

    (oz, oy, ox), (dz, dy, dx) = origin, spacing
    data = np.asarray(scan.values, dtype=np.float32).transpose(2, 1, 0)
    affine = np.diag([-dx, -dy, dz, 1.0])
    affine[:3, 3] = (-ox, -oy, oz)
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    nib.save(img, path)
    attrs = {}
    for k, v in scan.attrs.items():
        v = _json_safe(v)
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue  # not representable in JSON; documented
        attrs[str(k)] = v
    meta = {"kind": _SIDECAR_KIND, "shape_zyx": list(scan.shape),
            "origin_mm_zyx": [float(v) for v in origin],
            "spacing_mm_zyx": [float(v) for v in spacing], "attrs": attrs}
    side = sidecar_path(path)
    with open(side, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    return side
