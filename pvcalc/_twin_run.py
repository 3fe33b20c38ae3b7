"""The scanner twin: simulate the measured protocol and compare it with the real scan.

See :func:`pvcalc.twin.simulate_twin`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pvcalc._twin_measure import measure
from pvcalc._validate import check_int, positive_float
from pvcalc.scan import scan_spacing_mm, validate_scan

__all__ = ["COMPARISON_COLUMNS", "NOISE_COLUMNS", "NOISE_QUANTITIES", "TwinResult",
           "extension_ring_from", "run_twin", "twin_phantom"]

#: Columns of ``TwinResult.comparison`` (``twin.csv``).
COMPARISON_COLUMNS = ("insert", "method", "quantity", "nominal", "real", "twin_mean", "twin_sd",
                      "n_twin", "z", "outside")
#: Columns of ``TwinResult.noise`` (``twin_noise.csv``).
NOISE_COLUMNS = ("quantity", "unit", "real", "real_se", "twin_mean", "twin_sd", "n_twin", "z",
                 "outside")
#: Report quantities compared between the real scan and the twin's repeats.
NOISE_QUANTITIES = ("noise_sd_hu", "lag1_autocorrelation", "nps_peak_freq_per_mm",
                    "nps_mean_freq_per_mm", "mtf50_per_mm", "mtf10_per_mm", "psf_fwhm_mm",
                    "hu_per_mg_ha", "insert_body_hu", "water_rod_hu", "ha_rod_hu")
#: Body heights (mm) of the QRM thorax phantom without / with its extension ring.
BODY_HEIGHTS_MM = (200.0, 300.0)


@dataclass(frozen=True, eq=False)
class TwinResult:
    """The twin of one real scan (see :func:`pvcalc.twin.simulate_twin`).

    Attributes
    ----------
    protocol : phantoms.Protocol
        The measured protocol the twin was simulated with.
    report : DataFrame
        :func:`pvcalc.twin.measure_protocol`'s report of the real scan.
    phantom : phantoms.Phantom
        The twin phantom.
    layout : CCILayout
        The real scan's layout.
    real : DataFrame
        :func:`pvcalc.quantify` of the real scan (one row per insert and method).
    twin : DataFrame
        The same for every twin repeat, with a ``repeat`` column.
    comparison : DataFrame
        ``twin.csv``: one row per insert, method and quantity (:data:`COMPARISON_COLUMNS`).
    noise : DataFrame
        ``twin_noise.csv``: image-quality quantities of both (:data:`NOISE_COLUMNS`).
    twin_reports : list of DataFrame
        :func:`pvcalc.twin.measure_protocol`'s report of each twin repeat.
    failures : DataFrame
        ``repeat``, ``step``, ``error`` of twin repeats that could not be analysed.
    notes : list of str
        Choices made (body size, orientation, z range) and what was not measured.
    tolerance_sd : float
        A real value outside twin mean +- ``tolerance_sd`` x twin SD is flagged.
    """

    protocol: object
    report: pd.DataFrame
    phantom: object
    layout: object
    real: pd.DataFrame
    twin: pd.DataFrame
    comparison: pd.DataFrame
    noise: pd.DataFrame
    twin_reports: list
    failures: pd.DataFrame
    notes: list = field(default_factory=list)
    tolerance_sd: float = 2.0

    @property
    def outside(self) -> pd.DataFrame:
        """Rows of ``comparison`` and ``noise`` where the real value is outside the twin's range."""
        a = self.comparison[self.comparison["outside"].fillna(False).astype(bool)]
        b = self.noise[self.noise["outside"].fillna(False).astype(bool)]
        return pd.concat([a.assign(table="twin.csv"), b.assign(table="twin_noise.csv")],
                         ignore_index=True)

    def write(self, out, *, scan_label="the scan"):
        """Write ``twin.csv``, ``twin_noise.csv``, ``twin.png``, ``report.md``,
        ``measured.csv`` (the report) and ``protocol.json`` to the folder ``out``.

        Returns {file name: path}.
        """
        from pvcalc._twin_report import write_outputs

        return write_outputs(self, out, scan_label)


def _value(report, quantity):
    row = report.loc[report["quantity"] == quantity]
    return float(row["value"].iloc[0]) if len(row) else float("nan")


def extension_ring_from(report):
    """(extension_ring, reason) from the measured body height (200 mm vs 300 mm)."""
    height = _value(report, "body_height_mm")
    cut = bool(report.attrs.get("body_height_cut", False))
    mid = 0.5 * sum(BODY_HEIGHTS_MM)
    if not math.isfinite(height):
        return False, "body height not measurable; the 300 x 200 mm body assumed"
    if not cut:
        ring = height > mid
        return ring, (f"body height {height:.0f} mm: the {'400 x 300' if ring else '300 x 200'} "
                      "mm body")
    if height > BODY_HEIGHTS_MM[0] + 10.0:
        return True, (f"body height at least {height:.0f} mm (cut by the field of view): the "
                      "400 x 300 mm body with its extension ring")
    return False, (f"body height at least {height:.0f} mm (cut by the field of view), too "
                   "small a field to tell the bodies apart: the 300 x 200 mm body assumed; pass "
                   "extension_ring=True for the large one")


def twin_phantom(scan, layout, report, *, extension_ring=None):
    """(phantom, notes): the physical CCI replica placed like the real scan's insert."""
    import phantoms

    notes = []
    if extension_ring is None:
        extension_ring, why = extension_ring_from(report)
        notes.append(why)
    elif not isinstance(extension_ring, (bool, np.bool_)):
        raise TypeError(f"extension_ring must be True, False or None (from the body size), got "
                        f"{extension_ring!r}")
    else:
        notes.append(f"extension_ring={bool(extension_ring)} given")
    z, y, x = (np.asarray(scan.coords[d].values, dtype=np.float64) for d in "zyx")
    dz = scan_spacing_mm(scan)[0]
    zi = float(layout.insert_z_mm)
    rod_z = float(np.mean([0.5 * (float(r.z_lo_mm) + float(r.z_hi_mm))
                           for r in layout.rods.itertuples(index=False)]))
    if rod_z >= zi:
        extent = (z[0] - zi - 0.5 * dz, z[-1] - zi + 0.5 * dz)
    else:
        extent = (zi - z[-1] - 0.5 * dz, zi - z[0] + 0.5 * dz)
        notes.append("the real rods lie at z below the insert plane; the twin's z axis runs the "
                     "other way (its rods lie at z = +30 to +45 mm from its insert plane)")
    centre = (float(layout.centre_yx_mm[0]) - 0.5 * (y[0] + y[-1]),
              float(layout.centre_yx_mm[1]) - 0.5 * (x[0] + x[-1]))
    insert_hu = _value(report, "insert_body_hu")
    rotation = float(layout.rotation_deg) - HD_SPOKE_DEG
    phantom = phantoms.cci_phantom(geometry="physical", extension_ring=bool(extension_ring),
                                   insert_hu=insert_hu, rotation_deg=rotation,
                                   centre_yx_mm=centre, z_extent_mm=extent)
    notes.append(f"twin phantom: physical CCI geometry, insert body {insert_hu:.1f} HU, spokes "
                 f"rotated by {rotation:.1f} degrees, insert centre at (y, x) = ({centre[0]:.1f}, "
                 f"{centre[1]:.1f}) mm from the field of view's centre, z {extent[0]:.1f} to "
                 f"{extent[1]:.1f} mm from the insert plane (the real scan's range)")
    return phantom, notes


#: Angle (degrees, phantoms.library convention) of the HD spoke at rotation_deg = 0.
HD_SPOKE_DEG = 90.0


def _quantities(method):
    from pvcalc.methods import METHODS

    spec = METHODS[method]
    out = [q for q in ("agatston", "volume_mm3", "mass_mg") if q in spec.defines]
    return out + (["swcs"] if method == "swcs" else [])


def pipeline(scan, layout, methods):
    """locate (given) -> rod calibration -> :func:`pvcalc.quantify` of the insert ROIs."""
    import pvcalc

    calibration = layout.calibration(scan)
    return pvcalc.quantify(scan, layout.rois(), methods=methods, calibration=calibration)


def _nominal(layout):
    table = layout.inserts.set_index("lesion")
    out = {}
    for name, row in table.iterrows():
        d = float(row["diameter_mm"])
        v = math.pi * d ** 3 / 4.0
        out[(str(name), "volume_mm3")] = v
        if "density_mg_cm3" in table.columns:
            out[(str(name), "mass_mg")] = float(row["density_mg_cm3"]) * v / 1000.0
    return out


def _z(real, mean, sd, tol):
    if not (math.isfinite(real) and math.isfinite(mean)):
        return float("nan"), pd.NA
    if not (math.isfinite(sd) and sd > 0):
        return float("nan"), bool(real != mean) if sd == 0 else pd.NA
    z = (real - mean) / sd
    return float(z), bool(abs(z) > tol)


def compare(real, twin, layout, tol):
    """The side-by-side table of twin.csv."""
    nominal = _nominal(layout)
    rows = []
    methods = list(dict.fromkeys(real["method"]))
    inserts = list(dict.fromkeys(real["lesion"]))
    for method in methods:
        for quantity in _quantities(method):
            if quantity not in real.columns:
                continue
            r_sel = real[real["method"] == method].set_index("lesion")[quantity]
            t_sel = twin[twin["method"] == method] if len(twin) else twin
            for insert in inserts:
                rv = float(r_sel.get(insert, np.nan))
                tv = (t_sel.loc[t_sel["lesion"] == insert, quantity].astype(float).to_numpy()
                      if len(t_sel) else np.array([]))
                tv = tv[np.isfinite(tv)]
                mean = float(tv.mean()) if tv.size else float("nan")
                sd = float(tv.std(ddof=1)) if tv.size > 1 else float("nan")
                z, out = _z(rv, mean, sd, tol)
                rows.append((insert, method, quantity, nominal.get((insert, quantity), np.nan),
                             rv, mean, sd, int(tv.size), z, out))
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    table["outside"] = table["outside"].astype("boolean")
    return table


def compare_noise(report, twin_reports, tol):
    """The image-quality table of twin_noise.csv."""
    rows = []
    for q in NOISE_QUANTITIES:
        sel = report.loc[report["quantity"] == q]
        if not len(sel):
            continue
        real, unit, se = float(sel["value"].iloc[0]), str(sel["unit"].iloc[0]), float(
            sel["se"].iloc[0])
        tv = np.array([_value(t, q) for t in twin_reports], dtype=float)
        tv = tv[np.isfinite(tv)]
        mean = float(tv.mean()) if tv.size else float("nan")
        sd = float(tv.std(ddof=1)) if tv.size > 1 else float("nan")
        z, out = _z(real, mean, sd, tol)
        rows.append((q, unit, real, se, mean, sd, int(tv.size), z, out))
    table = pd.DataFrame(rows, columns=list(NOISE_COLUMNS))
    table["outside"] = table["outside"].astype("boolean")
    return table


def run_twin(scan, *, repeats=5, seed=0, layout=None, methods="all", kvp=None,
             extension_ring=None, tolerance_sd=2.0, n_boot=100, reposition=True):
    """See :func:`pvcalc.twin.simulate_twin`."""
    import phantoms
    from pvcalc.qrm import locate_cci

    validate_scan(scan)
    repeats = check_int("repeats", repeats, 1)
    seed = check_int("seed", seed, 0)
    tol = positive_float("tolerance_sd", tolerance_sd, what="number of SDs")
    if not isinstance(reposition, (bool, np.bool_)):
        raise TypeError(f"reposition must be True or False, got {reposition!r}")
    if layout is None:
        layout = locate_cci(scan)
    protocol, report, _ = measure(scan, layout, kvp=kvp, n_boot=n_boot, seed=seed)
    phantom, notes = twin_phantom(scan, layout, report, extension_ring=extension_ring)
    real = pipeline(scan, layout, methods)
    tables, twin_reports, failures = [], [], []
    for r in range(repeats):
        tscan, _ = phantoms.simulate_repeat(phantom, protocol, seed=seed, index=r,
                                            reposition=bool(reposition), fraction_maps=False)
        step = "locate"
        try:
            tlayout = locate_cci(tscan)
            step = "quantify"
            tables.append(pipeline(tscan, tlayout, methods).assign(repeat=r))
            step = "measure"
            twin_reports.append(measure(tscan, tlayout, n_boot=0, seed=seed)[1])
        except ValueError as err:
            failures.append((r, step, str(err).splitlines()[0]))
    twin = pd.concat(tables, ignore_index=True) if tables else real.iloc[0:0].assign(repeat=0)
    notes.append("not measured on the phantom (simulator defaults): the slice profile "
                 f"({protocol.slice_profile}), the temporal resolution and gating (a static "
                 "phantom), the body's tissue, lung and ring HU")
    return TwinResult(protocol=protocol, report=report, phantom=phantom, layout=layout,
                      real=real, twin=twin, comparison=compare(real, twin, layout, tol),
                      noise=compare_noise(report, twin_reports, tol), twin_reports=twin_reports,
                      failures=pd.DataFrame(failures, columns=["repeat", "step", "error"]),
                      notes=notes, tolerance_sd=tol)
