"""The truth of a simulated scan: schema, validation, lesion table, fraction maps.

:func:`phantoms.simulate` (and :func:`~phantoms.simulate_patches`,
:func:`~phantoms.simulate_repeat`, :func:`~phantoms.repeat`) return the truth
of a scan as an :class:`xarray.Dataset` with attr ``schema_version`` =
:data:`SCHEMA_VERSION`. Read it through the functions here rather than
by variable names: :func:`validate_truth` checks a Dataset against the schema,
:func:`lesion_table` gives one row per lesion, :func:`fraction_map` gives one
lesion's voxel fractions on a scan's grid and :func:`fraction_box` only the
part of the scan where they can be non-zero (:func:`fraction_boxes`: every
lesion's, with one validation). ``docs/dev/truth.md`` has the full
schema with every unit.

Schema (version 1)
------------------
Dims: ``lesion`` (one per lesion, coordinate ``lesion`` = 0-based index),
``grid_axis`` (3, coordinate ``"z", "y", "x"``) and, with fraction maps,
``fraction_voxel``.

* Per lesion (dims ``("lesion",)``): the variables of :data:`LESION_VARIABLES`
  (name, true volume and mass, density, HU, centre, shape and motion
  parameters), each with ``units`` and ``description`` attrs.
* The scan grid (dims ``("grid_axis",)``): ``grid_origin_mm`` (centre of voxel
  (0, 0, 0)), ``grid_spacing_mm`` (slice increment, pixel, pixel) and
  ``grid_shape`` (slices, rows, columns). Voxel ``(k, j, i)`` has its centre at
  ``grid_origin_mm + (k, j, i) * grid_spacing_mm``.
* Fraction maps (optional, ``fraction_maps=True``): each lesion's occupancy on
  a box of the grid, ``fraction_start`` (first voxel index) and
  ``fraction_shape`` (size) with dims ``("lesion", "grid_axis")``; the boxes'
  values, each box flattened in C order (z slowest), concatenated in lesion
  order as ``fraction`` (float32, dim ``fraction_voxel``); and per lesion
  ``fraction_volume_mm3`` = sum of its fractions x voxel volume (summed in
  float64). Outside its box a lesion's fraction is 0.

The boxes are stored whole (zeros included) rather than as a list of non-zero
voxels: a list needs an index beside every value, which costs more memory than
the zeros it saves (about half of a box is non-zero for a static lesion, most
of it for a moving one).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import xarray as xr

from .motion import CardiacMotion, ConstantVelocity
from .shapes import Blob, Cylinder, Ellipsoid, Sphere, Tube

__all__ = ["LESION_VARIABLES", "SCHEMA_VERSION", "fraction_box", "fraction_boxes",
           "fraction_map", "lesion_table", "validate_truth"]

#: Version of the truth schema, recorded in ``truth.attrs["schema_version"]``.
SCHEMA_VERSION = 1

#: Per-lesion variables: (name, kind, units, finite, description); kind is
#: "str", "float" or "int"; ``finite`` marks variables that may not be NaN.
LESION_VARIABLES = (
    ("name", "str", "", False, "lesion name (the phantom's, or lesion_<index>)"),
    ("volume_mm3", "float", "mm3", True, "true volume of the nominal shape"),
    ("mass_mg", "float", "mg", True, "true mass, density x volume / 1000"),
    ("density_mg_cm3", "float", "mg/cm3", True, "hydroxyapatite density"),
    ("delta_hu", "float", "HU", True, "lesion HU above its background, HU per mg HA x density"),
    ("hu", "float", "HU", True, "lesion HU before blur and noise, background_hu + delta_hu"),
    ("background_hu", "float", "HU", True, "HU of the tissue around the lesion"),
    ("centre_z_mm", "float", "mm", True, "shape centre z in the scan frame (after repositioning)"),
    ("centre_y_mm", "float", "mm", True, "shape centre y in the scan frame (after repositioning)"),
    ("centre_x_mm", "float", "mm", True, "shape centre x in the scan frame (after repositioning)"),
    ("shape", "str", "", False, "sphere, ellipsoid, cylinder, tube or blob"),
    ("radius_mm", "float", "mm", False,
     "sphere, cylinder, tube radius; blob: largest sphere radius; else NaN"),
    ("length_mm", "float", "mm", False, "cylinder length, tube centreline length; else NaN"),
    ("semi_axis_0_mm", "float", "mm", False, "ellipsoid semi-axis 0; else NaN"),
    ("semi_axis_1_mm", "float", "mm", False, "ellipsoid semi-axis 1; else NaN"),
    ("semi_axis_2_mm", "float", "mm", False, "ellipsoid semi-axis 2; else NaN"),
    ("axis_z", "float", "1", False,
     "cylinder axis / ellipsoid semi-axis 0 direction, z component (scan frame); else NaN"),
    ("axis_y", "float", "1", False, "as axis_z, y component"),
    ("axis_x", "float", "1", False, "as axis_z, x component"),
    ("n_parts", "int", "1", False, "tube segments, blob spheres, 1 otherwise"),
    ("shape_params", "str", "", False, "repr of the shape as scanned"),
    ("motion", "str", "", False, "static, constant_velocity or cardiac"),
    ("velocity_z_mm_s", "float", "mm/s", False, "constant velocity z component; else 0"),
    ("velocity_y_mm_s", "float", "mm/s", False, "constant velocity y component; else 0"),
    ("velocity_x_mm_s", "float", "mm/s", False, "constant velocity x component; else 0"),
    ("peak_velocity_mm_s", "float", "mm/s", False,
     "largest speed (constant velocity: the speed); 0 when static"),
    ("direction_z", "float", "1", False, "motion direction z component; NaN when static"),
    ("direction_y", "float", "1", False, "motion direction y component; NaN when static"),
    ("direction_x", "float", "1", False, "motion direction x component; NaN when static"),
    ("motion_heart_rate_bpm", "float", "beats/min", False, "cardiac motion heart rate; else NaN"),
)
_FRACTION_VOLUME = ("fraction_volume_mm3", "float", "mm3", True,
                    "sum of the lesion's fractions x voxel volume (its rendered volume)")
_FRACTION_VARIABLES = ("fraction", "fraction_start", "fraction_shape", "fraction_volume_mm3")
_GRID_AXES = ("z", "y", "x")
_FRACTION_DESCRIPTION = (
    "time-averaged voxel occupancy of the lesion (box slice profile of width = increment); "
    "sum x voxel volume = volume_mm3 when the lesion is inside the grid and, in non-gated "
    "helical scans, does not move along z (slices acquired at different times may then see "
    "it twice or miss part of it)")
#: Largest accepted fraction (float32 rounding of an occupancy of 1).
_FRACTION_MAX = 1.0 + 1e-6
_NAN = float("nan")
_FIX = "build truth with phantoms.simulate (or simulate_patches / simulate_repeat)"


# -- building (used by the simulator) --------------------------------------------
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


def _variable(spec, values):
    name, kind, units, _, description = spec
    dtype = {"str": str, "float": np.float64, "int": np.int64}[kind]
    return xr.Variable("lesion", np.array(values, dtype=dtype),
                       attrs=dict(units=units, description=description) if units else
                       dict(description=description))


def _build_truth(lesions, nominal, delta_hu, tissue_hu, fractions, grid, attrs):
    """Truth Dataset (private constructor of the simulator, no validation).

    ``lesions``: the lesions as scanned (after repositioning), which give the
    positions; ``nominal``: the phantom's lesions, which give volume and mass
    (so numeric volumes do not change with the pose); ``fractions``: per
    lesion ``(float array (K, J, I), (k0, j0, i0))``, the occupancy box and the
    grid index of its first voxel, or None; ``grid``: ``(origin_mm,
    spacing_mm, shape)`` of the scan grid, each 3 values (z, y, x).
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
        rows.append(row)
    data = {spec[0]: _variable(spec, [r[spec[0]] for r in rows]) for spec in LESION_VARIABLES}
    origin, spacing, shape = grid
    data["grid_origin_mm"] = ("grid_axis", np.array(origin, dtype=np.float64),
                              dict(units="mm", description="centre of voxel (0, 0, 0)"))
    data["grid_spacing_mm"] = ("grid_axis", np.array(spacing, dtype=np.float64),
                               dict(units="mm", description="voxel spacing"))
    data["grid_shape"] = ("grid_axis", np.array(shape, dtype=np.int64),
                          dict(description="voxels along each axis"))
    if fractions is not None:
        vox = float(np.prod(data["grid_spacing_mm"][1]))
        values = [np.ascontiguousarray(f, dtype=np.float32).ravel() for f, _ in fractions]
        data["fraction"] = ("fraction_voxel",
                            np.concatenate(values) if values else np.zeros(0, np.float32),
                            dict(units="1", description=_FRACTION_DESCRIPTION))
        data["fraction_start"] = (("lesion", "grid_axis"),
                                  np.array([s for _, s in fractions], np.int64).reshape(-1, 3),
                                  dict(description="grid index of the first voxel of the "
                                       "lesion's fraction box"))
        data["fraction_shape"] = (("lesion", "grid_axis"),
                                  np.array([f.shape for f, _ in fractions], np.int64)
                                  .reshape(-1, 3),
                                  dict(description="size of the lesion's fraction box"))
        data["fraction_volume_mm3"] = _variable(
            _FRACTION_VOLUME, [float(v.sum(dtype=np.float64)) * vox for v in values])
    ds = xr.Dataset(data, coords=dict(lesion=np.arange(len(rows)), grid_axis=list(_GRID_AXES)),
                    attrs=dict(attrs))
    ds.attrs["schema_version"] = SCHEMA_VERSION
    return ds


# -- validation --------------------------------------------------------------------
def _fail(message, error=ValueError):
    raise error(f"not a valid phantoms truth Dataset: {message}")


def _check_kind(truth, name, kind, dims):
    if name not in truth.variables:
        _fail(f"variable {name!r} is missing; {_FIX}")
    var = truth.variables[name]
    if var.dims != dims:
        _fail(f"variable {name!r} has dims {var.dims}, expected {dims}")
    k = var.dtype.kind
    ok = {"str": k in "UO", "float": k == "f", "int": k in "iu"}[kind]
    if ok and k == "O":
        ok = all(isinstance(v, str) for v in var.values.ravel())
    if not ok:
        _fail(f"variable {name!r} has dtype {var.dtype}, expected {kind}", TypeError)
    return var.values


def validate_truth(truth) -> None:
    """Check that ``truth`` is a truth Dataset of the current schema.

    Parameters
    ----------
    truth : xarray.Dataset
        From :func:`phantoms.simulate` and friends, or read back from netCDF
        (``xarray.open_dataset`` / ``load_dataset``).

    Raises
    ------
    TypeError
        ``truth`` is not a Dataset, or a variable has the wrong dtype.
    ValueError
        A variable, dim or attr is missing or has a wrong shape or value; the
        message names it, says what was expected and how to fix it.

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> from phantoms.simulate import simulate
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0)],
    ...              z_extent_mm=(-6, 6))
    >>> _, truth = simulate(ph, get_protocol("calcium_scoring", matrix=64), seed=0, noise=False)
    >>> validate_truth(truth)
    >>> validate_truth(truth.drop_vars("mass_mg"))
    Traceback (most recent call last):
    ...
    ValueError: not a valid phantoms truth Dataset: variable 'mass_mg' is missing; build ...
    """
    if not isinstance(truth, xr.Dataset):
        _fail(f"expected an xarray.Dataset, got {type(truth).__name__}; {_FIX}", TypeError)
    version = truth.attrs.get("schema_version")
    if version is None:
        old = " (per-lesion fraction_<i> variables are an older layout)" \
            if "fraction_0" in truth.variables else ""
        _fail(f"attr 'schema_version' is missing{old}; {_FIX}")
    if not (isinstance(version, numbers.Integral) and int(version) == SCHEMA_VERSION):
        _fail(f"schema_version is {version!r}, this version of phantoms reads "
              f"{SCHEMA_VERSION}; simulate the scan again")
    if "lesion" not in truth.sizes:
        _fail(f"dim 'lesion' is missing; {_FIX}")
    n = truth.sizes["lesion"]
    index = _check_kind(truth, "lesion", "int", ("lesion",))
    if not np.array_equal(index, np.arange(n)):
        _fail("coordinate 'lesion' must be 0, 1, ..., n - 1 (the lesion's position); "
              "after selecting lesions, renumber with truth.assign_coords(lesion=range(n))")
    for name, kind, _, finite, _ in LESION_VARIABLES:
        values = _check_kind(truth, name, kind, ("lesion",))
        if finite and not np.all(np.isfinite(values)):
            _fail(f"variable {name!r} has non-finite values")
    axes = _check_kind(truth, "grid_axis", "str", ("grid_axis",))
    if tuple(axes) != _GRID_AXES:
        _fail(f"coordinate 'grid_axis' must be {list(_GRID_AXES)}, got {list(axes)}")
    origin = _check_kind(truth, "grid_origin_mm", "float", ("grid_axis",))
    spacing = _check_kind(truth, "grid_spacing_mm", "float", ("grid_axis",))
    shape = _check_kind(truth, "grid_shape", "int", ("grid_axis",))
    if not (np.all(np.isfinite(origin)) and np.all(np.isfinite(spacing)) and np.all(spacing > 0)):
        _fail(f"grid_origin_mm must be finite and grid_spacing_mm finite and > 0, got "
              f"{origin.tolist()} and {spacing.tolist()}")
    if np.any(shape < 1):
        _fail(f"grid_shape must be >= 1 voxel along each axis, got {shape.tolist()}")
    present = [v for v in _FRACTION_VARIABLES if v in truth.variables]
    if not present:
        return
    if len(present) < len(_FRACTION_VARIABLES):
        missing = sorted(set(_FRACTION_VARIABLES) - set(present))
        _fail(f"fraction maps are incomplete: {missing} missing beside {present}; keep all "
              f"of {list(_FRACTION_VARIABLES)} or drop all of them")
    start = _check_kind(truth, "fraction_start", "int", ("lesion", "grid_axis"))
    size = _check_kind(truth, "fraction_shape", "int", ("lesion", "grid_axis"))
    values = _check_kind(truth, "fraction", "float", ("fraction_voxel",))
    volume = _check_kind(truth, "fraction_volume_mm3", "float", ("lesion",))
    if np.any(start < 0) or np.any(size < 0) or np.any(start + size > shape):
        _fail(f"fraction boxes (fraction_start, fraction_shape) must lie inside the grid of "
              f"shape {shape.tolist()}")
    counts = np.prod(size, axis=1, dtype=np.int64)
    if int(counts.sum()) != values.size:
        _fail(f"dim 'fraction_voxel' has {values.size} values, the fraction boxes hold "
              f"{int(counts.sum())}")
    if values.size and not (np.all(np.isfinite(values)) and values.min() >= 0
                            and values.max() <= _FRACTION_MAX):
        _fail(f"variable 'fraction' must hold finite fractions in [0, 1], got values in "
              f"[{float(np.nanmin(values)):g}, {float(np.nanmax(values)):g}]")
    sums = np.array([v.sum(dtype=np.float64) for v in np.split(values, np.cumsum(counts)[:-1])]
                    ) if n else np.zeros(0)
    expected = sums * float(np.prod(spacing))
    if not np.allclose(volume, expected, rtol=1e-9, atol=1e-12):
        bad = int(np.flatnonzero(~np.isclose(volume, expected, rtol=1e-9, atol=1e-12))[0])
        _fail(f"fraction_volume_mm3 of lesion {bad} is {float(volume[bad])!r} mm3, its "
              f"fractions x voxel volume give {float(expected[bad])!r} mm3; recompute it or "
              "simulate the scan again")


# -- reading -------------------------------------------------------------------------
def lesion_table(truth) -> pd.DataFrame:
    """One row per lesion: every per-lesion variable of the truth.

    Parameters
    ----------
    truth : xarray.Dataset
        A valid truth Dataset (see :func:`validate_truth`).

    Returns
    -------
    pandas.DataFrame
        Rows in lesion order. Columns:

        - ``lesion`` (str): the lesion's name (variable ``name``);
        - ``lesion_index`` (int): its 0-based position (coordinate ``lesion``);
        - then every other variable with dims ``("lesion",)``, same name, units
          and values: ``volume_mm3`` (mm3, true), ``mass_mg`` (mg, true),
          ``density_mg_cm3`` (mg HA/cm3), ``delta_hu``, ``hu`` and
          ``background_hu`` (HU), ``centre_z_mm``, ``centre_y_mm``,
          ``centre_x_mm`` (mm, scan frame after repositioning), the shape
          (``shape``, ``radius_mm``, ``length_mm``, ``semi_axis_<i>_mm``,
          ``axis_z/y/x``, ``n_parts``, ``shape_params``), the motion
          (``motion``, ``velocity_z/y/x_mm_s``, ``peak_velocity_mm_s``,
          ``direction_z/y/x``, ``motion_heart_rate_bpm``) and, with fraction
          maps, ``fraction_volume_mm3`` (mm3, rendered).

        :data:`LESION_VARIABLES` and ``docs/dev/truth.md`` define each column.
        The fraction boxes and the grid are storage, not lesion properties,
        and are left out.

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> from phantoms.simulate import simulate
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0, name="a")],
    ...              z_extent_mm=(-6, 6))
    >>> _, truth = simulate(ph, get_protocol("calcium_scoring", matrix=64), seed=0, noise=False)
    >>> lesion_table(truth)[["lesion", "lesion_index", "shape", "radius_mm"]]
      lesion  lesion_index   shape  radius_mm
    0      a             0  sphere        2.0
    """
    validate_truth(truth)
    columns = {"lesion": [str(v) for v in truth["name"].values],
               "lesion_index": truth["lesion"].values.astype(np.int64)}
    # schema order first (files read back may list variables in another order), then extras
    known = [spec[0] for spec in (*LESION_VARIABLES, _FRACTION_VOLUME)]
    names = [v for v in known if v in truth.data_vars] + \
        [v for v in truth.data_vars if v not in known and truth[v].dims == ("lesion",)]
    for name in names:
        if name != "name":
            values = truth[name].values
            if values.dtype.kind in "UO":
                values = [str(v) for v in values]
            elif values.dtype.kind in "iu":     # netCDF3 files store int32
                values = values.astype(np.int64)
            columns[name] = values
    return pd.DataFrame(columns)


def _lesion_position(truth, lesion):
    """0-based position of a lesion given by name (str) or index (int)."""
    n = truth.sizes["lesion"]
    if isinstance(lesion, str):
        names = [str(v) for v in truth["name"].values]
        hits = [i for i, v in enumerate(names) if v == lesion]
        if not hits:
            raise ValueError(f"lesion {lesion!r} is not in the truth; its lesions are {names}")
        if len(hits) > 1:
            raise ValueError(f"lesion name {lesion!r} is shared by lesions {hits}; pass the "
                             "0-based index instead")
        return hits[0]
    if isinstance(lesion, (bool, np.bool_)) or not isinstance(lesion, numbers.Integral):
        raise TypeError(f"lesion must be a lesion name (str) or 0-based index (int), got "
                        f"{type(lesion).__name__} {lesion!r}")
    if not 0 <= int(lesion) < n:
        raise ValueError(f"lesion index must be in 0-{n - 1} (the truth has {n} lesions), "
                         f"got {lesion}")
    return int(lesion)


def _grid_indices(truth, scan, axis):
    """Grid index of the first voxel of ``scan`` along ``axis`` (the scan must lie on the grid)."""
    a = _GRID_AXES.index(axis)
    origin = float(truth["grid_origin_mm"].values[a])
    step = float(truth["grid_spacing_mm"].values[a])
    c = np.asarray(scan.coords[axis].values, dtype=np.float64)
    pos = (c - origin) / step
    idx = np.rint(pos)
    if np.any(np.abs(pos - idx) > 1e-3) or np.any(np.diff(idx) != 1):
        raise ValueError(
            f"the scan's {axis} coordinates do not lie on the truth's grid (voxel centres at "
            f"{origin:g} + k x {step:g} mm, increasing by one voxel); pass the scan simulated "
            f"with this truth, or a cut-out of it")
    return int(idx[0]) if idx.size else 0


def fraction_map(truth, lesion, scan) -> xr.DataArray:
    """Voxel fractions of one lesion on the grid of a scan.

    Parameters
    ----------
    truth : xarray.Dataset
        A valid truth with fraction maps (``simulate(..., fraction_maps=True)``).
    lesion : str or int
        The lesion's name or 0-based index.
    scan : xarray.DataArray
        A scan on the truth's grid, dims ``("z", "y", "x")``: the simulated
        scan, one of its patches or any cut-out of them.

    Returns
    -------
    xarray.DataArray of float32
        Same dims and coordinates as ``scan``: the time-averaged fraction of
        each voxel occupied by the lesion (0 outside its box), attrs
        ``units="1"``, ``lesion`` (name) and ``lesion_index``. Where the scan
        covers the whole box, ``sum x voxel volume = fraction_volume_mm3``.

    Raises
    ------
    ValueError
        The truth has no fraction maps, the lesion is not in the truth, or
        the scan does not lie on the truth's grid.

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> from phantoms.simulate import simulate
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0)],
    ...              z_extent_mm=(-6, 6))
    >>> scan, truth = simulate(ph, get_protocol("calcium_scoring", matrix=64), seed=0,
    ...                        noise=False)
    >>> f = fraction_map(truth, 0, scan)
    >>> f.dims == scan.dims, round(float(f.sum()) * 3.0 * 0.49 ** 2, 1)   # 4/3 pi 2^3 = 33.51
    (True, 33.5)
    """
    index, box = fraction_box(truth, lesion, scan)
    i = _lesion_position(truth, lesion)
    out = np.zeros(scan.shape, dtype=np.float32)
    out[index] = box
    return xr.DataArray(out, dims=scan.dims, coords=scan.coords, name="fraction",
                        attrs=dict(units="1", lesion=str(truth["name"].values[i]),
                                   lesion_index=i))


def fraction_box(truth, lesion, scan):
    """One lesion's voxel fractions on the part of a scan its stored box covers.

    The same values as :func:`fraction_map` without a scan-sized array: the
    fractions are 0 outside the returned block, so ``fraction_map(truth,
    lesion, scan).values[index]`` equals ``fractions`` and is 0 elsewhere.

    Parameters
    ----------
    truth : xarray.Dataset
        A valid truth with fraction maps (``simulate(..., fraction_maps=True)``).
    lesion : str or int
        The lesion's name or 0-based index.
    scan : xarray.DataArray
        A scan on the truth's grid, dims ``("z", "y", "x")`` (the simulated
        scan, one of its patches or any cut-out of them).

    Returns
    -------
    index : tuple of three slices
        Into the scan's array, ``(z, y, x)``: the block where the lesion's box
        and the scan overlap (empty slices where they do not).
    fractions : numpy.ndarray of float32
        The lesion's time-averaged voxel fractions on that block (shape of
        ``scan.values[index]``; size 0 where the box and the scan do not overlap).

    Raises
    ------
    ValueError
        The truth has no fraction maps, the lesion is not in the truth, or
        the scan does not lie on the truth's grid.

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> from phantoms.simulate import simulate
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0)],
    ...              z_extent_mm=(-6, 6))
    >>> scan, truth = simulate(ph, get_protocol("calcium_scoring", matrix=64), seed=0,
    ...                        noise=False)
    >>> index, f = fraction_box(truth, 0, scan)
    >>> f.shape == scan.values[index].shape, f.size < scan.size
    (True, True)
    >>> round(float(f.sum()) * 3.0 * 0.49 ** 2, 1)   # 4/3 pi 2^3 = 33.51
    33.5
    """
    _check_fraction_boxes(truth, scan)
    return _fraction_boxes(truth, scan, [_lesion_position(truth, lesion)])[0]


def fraction_boxes(truth, scan):
    """Every lesion's voxel fractions on the part of a scan its stored box covers.

    :func:`fraction_box` of each lesion in order, with the truth validated once.

    Parameters
    ----------
    truth : xarray.Dataset
        A valid truth with fraction maps (``simulate(..., fraction_maps=True)``).
    scan : xarray.DataArray
        A scan on the truth's grid, dims ``("z", "y", "x")``.

    Returns
    -------
    list of (index, fractions)
        One pair per lesion, in the order of the truth's ``lesion`` dim, as
        :func:`fraction_box` returns them.

    Raises
    ------
    ValueError
        The truth has no fraction maps, or the scan does not lie on its grid.
    TypeError
        The scan is not an ``xarray.DataArray`` with dims ``("z", "y", "x")``.

    Examples
    --------
    >>> from phantoms import Phantom, ThoraxBody, Lesion, Sphere, get_protocol
    >>> from phantoms.simulate import simulate
    >>> ph = Phantom(ThoraxBody(), [Lesion(Sphere((0, 0, 0), 2.0), 400.0),
    ...                             Lesion(Sphere((0, 8, 0), 1.0), 400.0)],
    ...              z_extent_mm=(-6, 6))
    >>> scan, truth = simulate(ph, get_protocol("calcium_scoring", matrix=64), seed=0,
    ...                        noise=False)
    >>> [round(float(f.sum()) * 3.0 * 0.49 ** 2, 1) for _, f in fraction_boxes(truth, scan)]
    [33.5, 4.2]
    """
    _check_fraction_boxes(truth, scan)
    return _fraction_boxes(truth, scan, range(truth.sizes["lesion"]))


def _check_fraction_boxes(truth, scan):
    validate_truth(truth)
    if "fraction" not in truth.variables:
        raise ValueError("the truth has no fraction maps (simulated with fraction_maps=False); "
                         "simulate with fraction_maps=True")
    if not isinstance(scan, xr.DataArray) or scan.dims != _GRID_AXES:
        raise TypeError(f"scan must be an xarray.DataArray with dims {_GRID_AXES}, got "
                        f"{type(scan).__name__} {getattr(scan, 'dims', '')}")


def _fraction_boxes(truth, scan, positions):
    """:func:`fraction_box` of the lesion positions given (the truth's arrays read once)."""
    first = np.array([_grid_indices(truth, scan, d) for d in _GRID_AXES], dtype=np.int64)
    size = truth["fraction_shape"].values.astype(np.int64)
    starts = truth["fraction_start"].values.astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(np.prod(size, axis=1))])
    values = truth["fraction"].values
    out = []
    for i in positions:
        start, box_shape = starts[i], size[i]
        box = values[offsets[i]:offsets[i + 1]].reshape(box_shape)
        lo = np.maximum(start, first)
        hi = np.maximum(np.minimum(start + box_shape, first + scan.shape), lo)
        index = tuple(slice(int(a - f), int(b - f)) for a, b, f in zip(lo, hi, first))
        block = box[tuple(slice(int(a - s), int(b - s)) for a, b, s in zip(lo, hi, start))]
        out.append((index, np.array(block, dtype=np.float32)))
    return out
