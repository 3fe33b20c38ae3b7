"""Checks of a spec's ``[grid]``: the axes, their values and every protocol of the product."""

from __future__ import annotations

import itertools
import math

from pvcalc.study._spec_base import _got, _is_int, _is_number, _suggest

__all__ = ["AXES", "AXIS_PARAM", "BODY_SIZES", "PHANTOM_AXES", "check_axis_use", "check_grid",
           "protocol_overrides", "takes_axis"]

#: Grid axes that change the phantom, and the phantom kinds that take each.
PHANTOM_AXES = {"body": ("cci", "motion", "patients"),
                "heart_rate_bpm": ("motion", "patients"),
                "velocity_mm_s": ("motion",)}
#: The phantom parameter each phantom axis sets (a phantom entry must not set it too).
AXIS_PARAM = {"body": "extension_ring", "heart_rate_bpm": "heart_rate_bpm",
              "velocity_mm_s": "velocities_mm_s"}
BODY_SIZES = {"standard": False, "large": True}
#: Every grid axis in canonical order: the preset, the phantom axes, then the protocol
#: fields (phantoms.Protocol) with the derived ones beside the field they set
#: (``slice`` = [thickness, increment] pairs, ``mtf50_per_mm``, ``kernel_psf`` =
#: [kernel, psf_fwhm_mm] pairs, ``mas`` = dose).
AXES = ("protocol", "body", "heart_rate_bpm", "velocity_mm_s", "kvp", "hu_per_mg_ha", "slice",
        "slice_thickness_mm", "increment_mm", "slice_profile", "psf_fwhm_mm", "mtf50_per_mm",
        "kernel", "kernel_psf", "noise_sd_hu", "mas", "nps_peak_freq_per_mm", "nps_radial",
        "temporal_resolution_ms",
        "gated", "gating_phase", "rotation_time_s", "pitch", "collimation_mm", "pixel_mm",
        "matrix")
_EXCLUSIVE = (("psf_fwhm_mm", "mtf50_per_mm"), ("noise_sd_hu", "mas"),
              ("slice", "slice_thickness_mm"), ("slice", "increment_mm"),
              ("kernel_psf", "kernel"), ("kernel_psf", "psf_fwhm_mm"),
              ("kernel_psf", "mtf50_per_mm"), ("nps_peak_freq_per_mm", "nps_radial"))
#: Axes whose values are pairs (one pair may be given without the outer array).
_PAIRED = ("slice", "kernel_psf")
_MAX_PROTOCOL_COMBINATIONS = 100_000


def takes_axis(kind, params, axis):
    """Whether a phantom of ``kind`` with ``params`` takes the grid axis ``axis``."""
    if kind not in PHANTOM_AXES[axis]:
        return False
    if axis == "heart_rate_bpm":
        if kind == "motion":
            return params.get("profile", "constant") == "cardiac"
        return bool(params.get("motion", True))
    return True


def _axis_values(problems, name, value):
    path = f"grid.{name}"
    values = value if isinstance(value, list) else [value]
    if not values:
        problems.add(path, "expected a value or a non-empty array of values, got an empty array")
        return None
    if name in _PAIRED and values and not isinstance(values[0], list):
        values = [values]            # one pair given without the outer array
    if name == "nps_radial" and values and isinstance(values[0], list) and values[0] \
            and not isinstance(values[0][0], list):
        values = [values]            # one table of [frequency, value] pairs
    out = []
    for i, v in enumerate(values):
        where = f"{path}[{i}]" if isinstance(value, list) and len(values) > 1 else path
        converted = _axis_value(problems, name, where, v)
        if converted is not None:
            if converted in out:
                problems.add(where, f"{v!r} is listed twice; list each value once")
            else:
                out.append(converted)
    return tuple(out) or None    # the valid values, so that later checks still run


def _axis_value(problems, name, where, v):
    from phantoms import PROTOCOLS

    if name == "protocol":
        if isinstance(v, str) and v in PROTOCOLS:
            return v
        problems.add(where, f"expected a protocol preset ({', '.join(PROTOCOLS)}), {_got(v)}"
                     + _suggest(v, PROTOCOLS))
    elif name == "body":
        if v in BODY_SIZES:
            return v
        problems.add(where, f"expected 'standard' (300 x 200 mm) or 'large' (400 x 300 mm, "
                     f"the extension ring), {_got(v)}" + _suggest(v, BODY_SIZES))
    elif name == "slice":
        if isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v):
            return (float(v[0]), float(v[1]))
        problems.add(where, f"expected a pair [slice_thickness_mm, increment_mm], {_got(v)}")
    elif name == "kernel_psf":
        if (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and v[0].strip()
                and _is_number(v[1])):
            return (v[0], float(v[1]))
        problems.add(where, "expected a pair [kernel, psf_fwhm_mm], a kernel label and the "
                     f"in-plane PSF FWHM in mm (e.g. [\"soft\", 1.3]), {_got(v)}")
    elif name == "nps_radial":
        if isinstance(v, list) and len(v) >= 3 and all(
                isinstance(q, list) and len(q) == 2 and all(_is_number(x) for x in q) for q in v):
            return tuple((float(a), float(b)) for a, b in v)
        problems.add(where, "expected a measured in-plane NPS shape: at least 3 "
                     "[frequency_per_mm, relative_nps] pairs, e.g. [[0.0, 0.0], [0.2, 1.0], "
                     f"[0.5, 0.3], [0.8, 0.0]] (an array of such tables for several), {_got(v)}")
    elif name == "gated":
        if isinstance(v, bool):
            return v
        problems.add(where, f"expected true (ECG-gated) or false, {_got(v)}")
    elif name in ("kernel", "slice_profile"):
        if isinstance(v, str):
            return v
        problems.add(where, f"expected a string, {_got(v)}")
    elif name == "matrix":
        if _is_int(v):
            return v
        problems.add(where, f"expected an integer number of pixels, {_got(v)}")
    elif _is_number(v):
        if name == "mtf50_per_mm" and v <= 0:
            problems.add(where, f"expected an MTF50 > 0 cycles/mm (calcium-scoring kernels: "
                         f"0.28-0.42), {_got(v)}")
            return None
        return float(v)
    else:
        problems.add(where, f"expected a finite number, {_got(v)}")
    return None


def protocol_overrides(axis_values):
    """Protocol field overrides of one combination of protocol axes."""
    from phantoms.psf import MTF50_TIMES_FWHM

    out = {}
    for name, v in axis_values.items():
        if name == "slice":
            out["slice_thickness_mm"], out["increment_mm"] = v
        elif name == "kernel_psf":
            out["kernel"], out["psf_fwhm_mm"] = v
        elif name == "mtf50_per_mm":
            out["psf_fwhm_mm"] = MTF50_TIMES_FWHM / v
        elif name != "mas":
            out[name] = v
    return out


def _check_protocols(problems, grid):
    """Build every protocol of the grid (each axis value alone first, then the product)."""
    from phantoms import get_protocol, noise_sd_from_mas

    presets = grid.get("protocol", ())
    fields = [a for a in AXES if a in grid and a not in ("protocol", *PHANTOM_AXES)]
    for value in grid.get("mas", ()):
        try:
            noise_sd_from_mas(value)
        except (TypeError, ValueError) as exc:
            problems.add("grid.mas", f"{exc}")
    fields = [a for a in fields if a != "mas"]
    n = len(presets) * math.prod(len(grid[a]) for a in fields)
    if n > _MAX_PROTOCOL_COMBINATIONS:
        problems.add("grid", f"{n} protocol combinations, more than "
                     f"{_MAX_PROTOCOL_COMBINATIONS}; split the study")
        return
    alone_bad = set()
    for name in fields:
        for i, v in enumerate(grid[name]):
            errors = []
            for preset in presets:
                try:
                    get_protocol(preset, **protocol_overrides({name: v}))
                except (TypeError, ValueError) as exc:
                    errors.append(str(exc))
            if presets and len(errors) == len(presets):
                where = f"grid.{name}[{i}]" if len(grid[name]) > 1 else f"grid.{name}"
                problems.add(where, errors[0])
                alone_bad.add((name, v))
    for preset in presets:
        for combo in itertools.product(*(grid[a] for a in fields)):
            values = dict(zip(fields, combo))
            if any((a, v) in alone_bad for a, v in values.items()):
                continue
            try:
                get_protocol(preset, **protocol_overrides(values))
            except (TypeError, ValueError) as exc:
                shown = ", ".join(f"{a} = {v!r}" for a, v in values.items())
                problems.add("grid", f"protocol {preset!r} with {shown}: {exc}")


def check_grid(problems, table):
    if "protocol" not in table:
        problems.add("grid.protocol", "missing; give the protocol preset(s), e.g. protocol = "
                     "[\"calcium_scoring\"]")
    valid = AXES
    for key in table:
        if key not in valid:
            hint = _suggest(key, valid)
            if key == "heart_rate" or key == "velocity":
                hint = f"; did you mean {key + ('_bpm' if key == 'heart_rate' else '_mm_s')!r}?"
            problems.add(f"grid.{key}", "unknown grid axis; expected protocol, a protocol field "
                         "(kvp, slice_thickness_mm, psf_fwhm_mm, noise_sd_hu, gated, ...) or one "
                         "of slice, mtf50_per_mm, kernel_psf, mas, body, heart_rate_bpm, "
                         "velocity_mm_s" + hint)
    for a, b in _EXCLUSIVE:
        if a in table and b in table:
            problems.add(f"grid.{b}", f"grid.{a} and grid.{b} both set the same protocol field; "
                         "give one of them")
    grid = {}
    for name in AXES:
        if name in table:
            values = _axis_values(problems, name, table[name])
            if values is not None:
                grid[name] = values
    if "heart_rate_bpm" in grid:
        from phantoms.motion import check_heart_rate

        for i, v in enumerate(grid["heart_rate_bpm"]):
            try:
                check_heart_rate(v)
            except ValueError as exc:
                problems.add(f"grid.heart_rate_bpm[{i}]", str(exc))
    if "velocity_mm_s" in grid:
        for i, v in enumerate(grid["velocity_mm_s"]):
            if not 0.0 <= v <= 500.0:
                problems.add(f"grid.velocity_mm_s[{i}]", f"expected a speed in [0, 500] mm/s "
                             f"(coronary arteries move at up to about 110 mm/s), got {v!r}")
    if "protocol" in grid:
        _check_protocols(problems, grid)
    return grid


def check_axis_use(problems, grid, phantoms):
    for axis in PHANTOM_AXES:
        if axis in grid and not any(takes_axis(p["name"], p["params"], axis) for p in phantoms):
            takers = {"body": "every phantom",
                      "heart_rate_bpm": "the motion phantom with profile = \"cardiac\" and "
                                        "patients with motion = true",
                      "velocity_mm_s": "the motion phantom"}[axis]
            problems.add(f"grid.{axis}", f"no phantom of the study takes it (taken by {takers}); "
                         "remove the axis or add such a phantom")
