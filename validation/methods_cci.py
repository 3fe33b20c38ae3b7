"""Validation study: the partial-volume methods of ``pvcalc.quantify`` on the CCI replica.

Question: on the simulated QRM calcification-insert phantom (both body sizes), how far
from the true volume and mass is each registered method, insert by insert, how much
does its mass vary between repeated scans, how often does it find each insert, and how
often does it "find" calcium in calcium-free regions of the same size?

Command::

    python validation/methods_cci.py                 # 20 repeats, 2 protocols, 2 bodies
    python validation/methods_cci.py --repeats 5     # quicker
    python validation/methods_cci.py --quick         # 2 repeats, calcium_scoring only

Every method registered in ``pvcalc.methods.METHODS`` runs (``methods="all"``). Each
scan is repeat ``index`` of ``phantoms.repeat`` (``phantoms.simulate_repeat``, one scan
in memory at a time); mass is calibrated on the scan's own rods
(``pvcalc.calibration.rod_calibration``). Regions of interest are ellipsoids around
each insert's true centre, sized from the insert's nominal size and the protocol's
slice thickness only (see :func:`roi_semi_axes`), as on a physical phantom whose
insert positions and sizes are known. Calcium-free ROIs of the same sizes lie in the
insert plane away from inserts and rods (:func:`calcium_free_positions`); the truth
confirms that they and their background shells hold no calcium.

Writes to ``validation/results/`` (or ``--out``): ``methods_cci_per_scan.csv.gz`` (one
row per scan x insert x method), ``methods_cci_calcium_free.csv`` (per scan x method
x ROI size: ROIs and detections), ``methods_cci_summary.csv`` (per protocol x body x
method x insert x quantity), ``methods_cci_detection.csv`` (per protocol x body x
method x insert), ``methods_cci_false_positives.csv`` and the figure
``methods_cci_mass_error.png``; prints the markdown tables of
``validation/methods_cci.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from methods_common import (
    by_method,
    defined_rows,
    detection_rates,
    error_statistics,
    md_table,
)
from scipy import ndimage
from scipy.spatial.transform import Rotation

import phantoms
import pvcalc
from phantoms.truth import fraction_map, lesion_table
from pvcalc.calibration import rod_calibration
from pvcalc.evaluation import beside_truth
from pvcalc.methods import METHODS, RegionParams
from pvcalc.rois import spherical_roi_labels

RESULTS = Path(__file__).resolve().parent / "results"
PROTOCOLS = ("calcium_scoring", "low_dose_chest")
BODIES = (("small", False), ("large", True))
SEED = 2024
#: In-plane margin (mm) of an ROI beyond the insert's nominal radius: 3.6 PSF sigmas
#: at 1.3 mm FWHM, the default margin of pvcalc.rois.truth_roi_labels.
ROI_MARGIN_MM = 2.0
#: Extra clearance (mm) between a calcium-free ROI's background shell and any insert
#: ROI, rod or other tissue (covers the +-1 degree repositioning at 50 mm radius).
CLEARANCE_MM = 2.0
#: ROIs keep this distance (mm) from lung, bone and the body outline, whose blurred
#: edges would enter an ROI sum (3.6 PSF sigmas at 1.3 mm FWHM).
TISSUE_CLEARANCE_MM = 2.0
#: Radius (mm) of the QRM insert (100 mm diameter) that holds the inserts.
INSERT_BODY_RADIUS_MM = 50.0
KEYS = ["protocol", "body", "method", "lesion"]
PER_SCAN_COLUMNS = ["protocol", "body", "repeat", "lesion", "method", "volume_mm3",
                    "mass_mg", "agatston", "detected", "z_score", "n_voxels", "background_hu",
                    "background_sd_hu", "reason", "c_ha"]


def _shell_reach_mm():
    params = RegionParams()
    return params.shell_gap_mm + params.shell_width_mm


def roi_semi_axes(diameter_mm, length_mm, protocol):
    """In-plane radius and z semi-axis (mm) of the ellipsoidal ROI of a cylindrical insert.

    The insert grown by ``ROI_MARGIN_MM`` in-plane and by half a slice thickness plus
    1 mm along z (the slice profile's reach) is a cylinder of radius ``a`` and half
    length ``h``; the ROI is the smallest ellipsoid of the same aspect holding it,
    semi-axes ``sqrt(2) a`` and ``sqrt(2) h``. Only the nominal size and the protocol
    are used, never the image or the truth.
    """
    a = diameter_mm / 2.0 + ROI_MARGIN_MM
    h = length_mm / 2.0 + protocol.slice_thickness_mm / 2.0 + 1.0
    return math.sqrt(2.0) * a, math.sqrt(2.0) * h


def _sizes(phantom):
    """(name, diameter_mm, length_mm) of the phantom's inserts, from its geometry."""
    return [(les.name, 2.0 * les.shape.radius_mm, les.shape.length_mm) for les in phantom.lesions]


def insert_rois(phantom, truth, protocol) -> pd.DataFrame:
    """ROI table of the inserts: true centres (this scan), nominal sizes."""
    centres = lesion_table(truth).set_index("lesion")
    rows = []
    for name, diameter, length in _sizes(phantom):
        r, rz = roi_semi_axes(diameter, length, protocol)
        c = centres.loc[name]
        rows.append((name, c.centre_z_mm, c.centre_y_mm, c.centre_x_mm, r, rz, diameter))
    return pd.DataFrame(rows, columns=["lesion", "centre_z_mm", "centre_y_mm", "centre_x_mm",
                                       "radius_mm", "radius_z_mm", "diameter_mm"])


def calcium_free_positions(phantom, *, step_mm=0.5) -> dict:
    """Centres (y, x) in mm, phantom frame, of calcium-free ROIs, per insert diameter.

    A grid over the insert body (ROI and shell inside its 50 mm radius), taken
    nearest-the-centre first, keeping a point when its ROI plus background shell
    plus ``CLEARANCE_MM`` stays clear of every insert's ROI, of the rods and of
    the ROIs already kept for that diameter, and lies in soft tissue (not lung or
    bone). Positions depend on the in-plane ROI radius only, so every protocol uses
    the same ones. ROIs of different diameters may overlap: they are measured in
    separate ``quantify`` calls.
    """
    reach = _shell_reach_mm() + CLEARANCE_MM
    # in-plane ROI radii do not depend on the protocol (only the z semi-axis does)
    radius = {d: roi_semi_axes(d, length, phantoms.get_protocol("calcium_scoring"))[0]
              for _, d, length in _sizes(phantom)}
    obstacles = np.array(
        [(les.shape.centre_mm[1], les.shape.centre_mm[2], radius[2 * les.shape.radius_mm])
         for les in phantom.lesions]
        + [(rod.centre_yx_mm[0], rod.centre_yx_mm[1], rod.radius_mm) for rod in phantom.rods])
    grid = np.arange(-INSERT_BODY_RADIUS_MM, INSERT_BODY_RADIUS_MM + step_mm / 2, step_mm)
    yy, xx = (v.ravel() for v in np.meshgrid(grid, grid, indexing="ij"))
    angles = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
    out = {}
    for diameter in sorted(radius, reverse=True):
        r = radius[diameter]
        ok = np.hypot(yy, xx) + r + _shell_reach_mm() <= INSERT_BODY_RADIUS_MM
        d = np.hypot(yy[:, None] - obstacles[None, :, 0], xx[:, None] - obstacles[None, :, 1])
        ok &= np.all(d >= r + obstacles[None, :, 2] + reach, axis=1)
        ring = r + reach
        ok[ok] = phantom.body.inside_tissue(yy[ok, None] + ring * np.sin(angles),
                                            xx[ok, None] + ring * np.cos(angles)).all(axis=1)
        order = np.lexsort((xx[ok], yy[ok], np.hypot(yy[ok], xx[ok])))
        kept = []
        for y, x in zip(yy[ok][order], xx[ok][order]):
            if all(math.hypot(y - a, x - b) >= 2 * r + reach for a, b in kept):
                kept.append((float(y), float(x)))
        out[diameter] = kept
    return out


def soft_tissue_mask(scan, phantom, clearance_mm=TISSUE_CLEARANCE_MM):
    """(Y, X) bool: pixel centres at least ``clearance_mm`` inside the body's soft tissue.

    From the phantom's geometry (lungs, spine, body outline) moved by the scan's
    in-plane translation (the body does not rotate, ``phantoms.simulate``): the
    anatomy a reader sees and keeps out of an insert's ROI.
    """
    y = np.asarray(scan.coords["y"].values) - scan.attrs.get("translation_y_mm", 0.0)
    x = np.asarray(scan.coords["x"].values) - scan.attrs.get("translation_x_mm", 0.0)
    tissue = phantom.body.inside_tissue(y[:, None], x[None, :])
    spacing = (float(y[1] - y[0]), float(x[1] - x[0]))
    return ndimage.distance_transform_edt(tissue, sampling=spacing) >= clearance_mm


def roi_labels(scan, table, tissue=None):
    """Label image of the ellipsoidal ROIs of ``table``, without voxels outside ``tissue``
    (a (Y, X) bool mask, e.g. :func:`soft_tissue_mask`; None keeps every voxel)."""
    centres = table[["centre_z_mm", "centre_y_mm", "centre_x_mm"]].to_numpy()
    labels = spherical_roi_labels(scan, centres, table["radius_mm"].to_numpy(),
                                  radius_z_mm=table["radius_z_mm"].to_numpy(),
                                  names=table["lesion"].tolist())
    if tissue is not None:
        labels.values[:, ~tissue] = 0
    return labels


def to_scan_frame(points_zyx, scan, phantom):
    """Phantom-frame points (z, y, x) after the scan's repositioning (``scan.attrs``).

    The same rigid motion as ``phantoms.simulate_repeat`` applies to the inserts:
    rotation about the phantom's mid-plane centre, then translation.
    """
    a = scan.attrs
    about = np.array([0.5 * sum(phantom.z_extent_mm), 0.0, 0.0])
    axis = np.array([a.get("rotation_axis_z", 1.0), a.get("rotation_axis_y", 0.0),
                     a.get("rotation_axis_x", 0.0)])
    rot = Rotation.from_rotvec(axis * math.radians(a.get("rotation_deg", 0.0))).as_matrix()
    shift = np.array([a.get(f"translation_{d}_mm", 0.0) for d in "zyx"])
    p = np.asarray(points_zyx, dtype=float)
    return (p - about) @ rot.T + about + shift


def calcium_free_rois(phantom, scan, truth, protocol, positions, diameter) -> pd.DataFrame:
    """ROI table of the calcium-free ROIs of one diameter in this scan, checked on the truth.

    Raises RuntimeError if an ROI or its background shell holds any voxel of a
    lesion (fraction map > 0) or comes within the shell's reach of a rod.
    """
    r, rz = roi_semi_axes(diameter, diameter, protocol)
    zyx = to_scan_frame([(0.0, y, x) for y, x in positions[diameter]], scan, phantom)
    names = [f"free_{diameter:g}mm_{k + 1}" for k in range(len(zyx))]
    table = pd.DataFrame({"lesion": names, "centre_z_mm": zyx[:, 0], "centre_y_mm": zyx[:, 1],
                          "centre_x_mm": zyx[:, 2], "radius_mm": r, "radius_z_mm": rz,
                          "diameter_mm": diameter})
    reach = _shell_reach_mm()
    grown = spherical_roi_labels(scan, zyx, r + reach, radius_z_mm=rz + reach,
                                 overlap="report").values > 0
    for i in range(truth.sizes["lesion"]):
        if np.any(fraction_map(truth, i, scan).values[grown] > 0):
            raise RuntimeError(f"a calcium-free ROI of {diameter:g} mm or its shell holds "
                               f"lesion {i}; check calcium_free_positions")
    for i, rod in enumerate(phantom.rods):
        cy, cx = scan.attrs[f"rod_{i}_centre_y_mm"], scan.attrs[f"rod_{i}_centre_x_mm"]
        if np.min(np.hypot(zyx[:, 1] - cy, zyx[:, 2] - cx)) < rod.radius_mm + r + reach:
            raise RuntimeError(f"a calcium-free ROI of {diameter:g} mm is within the shell's "
                               f"reach of rod {i}")
    return table


def measure_scan(phantom, protocol, *, seed, index, positions):
    """Simulate one repeat, calibrate on its rods and quantify inserts and calcium-free ROIs."""
    scan, truth = phantoms.simulate_repeat(phantom, protocol, seed=seed, index=index)
    cal = rod_calibration(scan, phantom)
    tissue = soft_tissue_mask(scan, phantom)
    rois = roi_labels(scan, insert_rois(phantom, truth, protocol), tissue)
    inserts = pvcalc.quantify(scan, rois, calibration=cal)
    free = []
    for diameter in positions:
        table = calcium_free_rois(phantom, scan, truth, protocol, positions, diameter)
        labels = roi_labels(scan, table, tissue)
        if np.count_nonzero(labels.values) != np.count_nonzero(roi_labels(scan, table)):
            raise RuntimeError(f"a calcium-free ROI of {diameter:g} mm reaches lung or bone")
        res = pvcalc.quantify(scan, labels, calibration=cal)
        free.append(res.assign(diameter_mm=diameter))
    ids = {"repeat": index + 1, "c_ha": cal.c_ha_mg_cm3_per_hu}
    return inserts.assign(**ids), pd.concat(free, ignore_index=True).assign(**ids), truth


def run(protocols=PROTOCOLS, *, repeats=20, seed=SEED, log=sys.stderr):
    """Per-scan insert rows, per-scan calcium-free rows and the truth table, for all scans."""
    inserts, free, truth = [], [], None
    jobs = [(p, b, ring) for p in protocols for b, ring in BODIES]
    n_scans, k, t_start = len(jobs) * repeats, 0, time.perf_counter()
    for p, body, ring in jobs:
        protocol = phantoms.get_protocol(p)
        phantom = phantoms.cci_phantom(extension_ring=ring)
        positions = calcium_free_positions(phantom)
        series_seed = seed + 100 * PROTOCOLS.index(p) + int(ring)
        for index in range(repeats):
            t0 = time.perf_counter()
            ins, fr, truth = measure_scan(phantom, protocol, seed=series_seed, index=index,
                                          positions=positions)
            ids = {"protocol": p, "body": body}
            inserts.append(ins.assign(**ids))
            free.append(fr.assign(**ids))
            k += 1
            print(f"[{k}/{n_scans}] {p} {body} body repeat {index + 1}: "
                  f"{time.perf_counter() - t0:.1f} s (total {time.perf_counter() - t_start:.0f} s)",
                  file=log, flush=True)
    return pd.concat(inserts, ignore_index=True), pd.concat(free, ignore_index=True), \
        lesion_table(truth)


def summarise(per_scan, truth_table):
    """Errors, spread and CV per protocol x body x method x insert x quantity, and the
    detection rates per protocol x body x method x insert (every method)."""
    long = beside_truth(per_scan[PER_SCAN_COLUMNS].drop(columns=["agatston", "c_ha"]),
                        truth_table)
    long = defined_rows(long)
    table = error_statistics(long, KEYS + ["quantity"])
    found = ordered(detection_rates(per_scan, KEYS), truth_table["lesion"])
    table = table.merge(found[KEYS + ["rate"]].rename(columns={"rate": "detection_rate"}),
                        on=KEYS)
    return ordered(table, truth_table["lesion"]), found


def ordered(table, lesions=()):
    """Rows in study order: protocol, body, method (registry order), quantity, insert."""
    rank = {"protocol": list(PROTOCOLS), "body": [b for b, _ in BODIES],
            "method": list(METHODS), "quantity": ["volume_mm3", "mass_mg"],
            "lesion": list(lesions)}
    keys = [k for k in rank if k in table.columns and (k != "lesion" or len(rank[k]))]
    return table.sort_values(keys, kind="stable", key=lambda s: s.map(
        {v: i for i, v in enumerate(rank[s.name])})).reset_index(drop=True)


def background_bias(per_scan, truth_table, methods=("integrated", "volume_fraction")):
    """Analysis only (it reads the truth): the shell's background bias and the mass it moves.

    ``integrated`` and ``volume_fraction`` sum HU - background over a mask that does
    not depend on the background, so with the tissue's true HU the mass would be
    ``mass + c_HA x n_voxels x (background_hu - true) x V_voxel / 1000``. Mean
    relative mass error (%) as measured and with the true background, per insert.
    """
    truth = truth_table.set_index("lesion")
    rows = per_scan[per_scan["method"].isin(methods)]
    voxel = rows["protocol"].map({p: phantoms.get_protocol(p).increment_mm
                                  * phantoms.get_protocol(p).pixel_mm ** 2 for p in PROTOCOLS})
    bias = rows["background_hu"] - rows["lesion"].map(truth["background_hu"])
    true = rows["lesion"].map(truth["mass_mg"])
    rows = rows.assign(background_bias_hu=bias,
                       error_pct=100 * (rows["mass_mg"] / true - 1),
                       error_true_background_pct=100 * ((rows["mass_mg"] + rows["c_ha"]
                                                         * rows["n_voxels"] * bias * voxel
                                                         / 1000) / true - 1))
    cols = ["background_bias_hu", "error_pct", "error_true_background_pct"]
    return rows.groupby(KEYS, sort=False)[cols].mean().reset_index()


def false_positives(free: pd.DataFrame) -> pd.DataFrame:
    """False-positive rate per protocol x body x method x ROI diameter."""
    fp = detection_rates(free, ["protocol", "body", "method", "diameter_mm"])
    return ordered(fp.assign(_d=-fp["diameter_mm"]).sort_values("_d", kind="stable")
                   .drop(columns="_d"))


# --- targets --------------------------------------------------------------------------------

def _big(summary, diameters):
    return summary["lesion"].map(diameters) >= 3.0


def target_lines(summary, found, fp, diameters, *, protocol="calcium_scoring", limit_pct=10.0,
                 fp_limit=0.05):
    """The three targets, evaluated per body (markdown bullet lines)."""
    lines = []
    mass = summary[(summary["quantity"] == "mass_mg") & (summary["protocol"] == protocol)
                   & _big(summary, diameters)]
    if mass.empty:
        return [f"- (no {protocol} scans: the targets are not evaluated)"]
    worst = (mass.assign(abs_err=mass["relative_error_pct"].abs())
             .sort_values("abs_err").groupby(["body", "method"]).tail(1)
             .set_index(["body", "method"]))
    bodies = list(dict.fromkeys(mass["body"]))
    methods = list(dict.fromkeys(mass["method"]))
    meeting = [m for m in methods if m != "clinical"
               and all(worst.loc[(b, m), "abs_err"] <= limit_pct for b in bodies)]
    lines.append(f"- **Mass within {limit_pct:g}% for every 3 and 5 mm insert ({protocol})**: "
                 + ("met by " + ", ".join(f"`{m}`" for m in meeting) if meeting else "missed")
                 + ". Worst insert per method: " + "; ".join(
                     f"`{m}` " + ", ".join(f"{b} {worst.loc[(b, m), 'relative_error_pct']:+.1f}% "
                                           f"({worst.loc[(b, m), 'lesion']})" for b in bodies)
                     for m in methods) + ".")
    cv = mass.pivot_table(index=["body", "lesion"], columns="method", values="cv_pct")
    parts = []
    for m in [m for m in methods if m != "clinical"]:
        ratio = cv[m] / cv["clinical"]
        parts.append(f"`{m}` {int((ratio <= 1).sum())} of {len(ratio)} (CV / clinical CV "
                     f"{ratio.min():.2f}-{ratio.max():.2f})")
    ok = [m for m in meeting if (cv[m] <= cv["clinical"]).all()]
    lines.append("- **Interscan CV of the mass at most clinical's (same inserts)**: "
                 + (f"met by {', '.join(f'`{m}`' for m in ok)}" if ok else
                    "missed by every method that meets the accuracy target" if meeting else
                    "no method meets the accuracy target") + "; inserts where CV <= clinical: "
                 + "; ".join(parts) + ".")
    small = found[found["lesion"].map(diameters) < 3.0]
    hits = small.groupby(["protocol", "body", "method"], sort=False)["n_detected"].sum()
    rate = fp[fp["diameter_mm"] < 3.0].set_index(["protocol", "body", "method"])
    for (p, b), sub in hits.groupby(level=[0, 1], sort=False):
        clin = sub.loc[(p, b, "clinical")] if (p, b, "clinical") in sub.index else 0
        good = [m for (_, _, m), v in sub.items() if m != "clinical" and v > clin
                and rate.loc[(p, b, m), "rate"] <= fp_limit]
        lines.append(
            f"- **More 1 mm inserts found than clinical at <= {100 * fp_limit:g}% false "
            f"positives ({p}, {b} body)**: " + ("met by " + ", ".join(f"`{m}`" for m in good)
                                                 if good else "missed") + ". Found / FP rate: "
            + "; ".join(f"`{m}` {int(v)} / {100 * rate.loc[(p, b, m), 'rate']:.1f}%"
                        for (_, _, m), v in sub.items()) + ".")
    return lines


# --- tables and figure ----------------------------------------------------------------------

def markdown(summary, found, fp):
    """The page's tables: error +- SD of mass and volume, CV of mass, detection, FP rate."""
    rows = ["protocol", "body", "lesion"]

    def err(r):
        return f"{r.relative_error_pct:+.1f} ± {r.relative_sd_pct:.1f}"

    mass, volume = (summary[summary["quantity"] == q] for q in ("mass_mg", "volume_mm3"))
    fp = fp.assign(diameter_mm=fp["diameter_mm"].map("{:g}".format))
    sections = [("Mass: mean relative error ± SD (%) over the repeats",
                 by_method(mass, rows, err)),
                ("Volume: mean relative error ± SD (%)", by_method(volume, rows, err)),
                ("Interscan CV of the mass (%)",
                 by_method(mass, rows, lambda r: f"{r.cv_pct:.1f}")),
                ("Detection rate (%)", by_method(found, rows, lambda r: f"{100 * r.rate:.0f}")),
                ("False-positive rate on calcium-free ROIs of the inserts' sizes (%; n ROIs)",
                 by_method(fp, ["protocol", "body", "diameter_mm", "n"],
                           lambda r: f"{100 * r.rate:.1f}").rename_axis(
                     index=["protocol", "body", "ROI of insert (mm)", "n"]))]
    sections = [(t, w.rename_axis(index={"lesion": "insert"})
                 .rename(columns=lambda m: f"`{m}`")) for t, w in sections]
    return "\n\n".join(f"**{title}**\n\n{md_table(table)}" for title, table in sections)


def plot(summary, path):
    """Relative mass error per insert and method (mean, SD bars), a panel per protocol/body."""
    from matplotlib.figure import Figure

    mass = summary[summary["quantity"] == "mass_mg"]
    panels = list(dict.fromkeys(zip(mass["protocol"], mass["body"])))
    methods = list(dict.fromkeys(mass["method"]))
    lesions = list(dict.fromkeys(mass["lesion"]))
    ncol = 2 if len(panels) > 1 else 1
    nrow = math.ceil(len(panels) / ncol)
    fig = Figure(figsize=(6.5 * ncol, 4.2 * nrow + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharey=True, squeeze=False)).ravel()
    limit = 100.0
    width = 0.8 / len(methods)
    others = iter(f"C{i}" for i in range(10))
    colours = ["black" if m == "clinical" else next(others) for m in methods]
    for ax, (p, b) in zip(axes, panels):
        sub = mass[(mass["protocol"] == p) & (mass["body"] == b)].set_index(["method", "lesion"])
        ax.axhspan(-10, 10, color="0.9", zorder=0)
        ax.axhline(0, color="0.3", lw=0.8)
        for k, m in enumerate(methods):
            x = np.arange(len(lesions)) - 0.4 + (k + 0.5) * width
            rows = sub.reindex([(m, les) for les in lesions])   # NaN where a method gave none
            mean = rows["relative_error_pct"].to_numpy()
            sd = rows["relative_sd_pct"].to_numpy()
            shown = np.clip(mean, -limit, limit)
            ax.errorbar(x, shown, yerr=sd, fmt="o", ms=3.5, lw=1, capsize=2, color=colours[k],
                        label=m if ax is axes[0] else None)
            for xi, mi in zip(x[np.abs(mean) > limit], mean[np.abs(mean) > limit]):
                ax.annotate(f"{mi:+.0f}", (xi, np.sign(mi) * limit * 0.97), fontsize=6,
                            rotation=90, ha="center", va="top" if mi > 0 else "bottom",
                            color=colours[k])
        ax.set_xticks(np.arange(len(lesions)), lesions, rotation=45, ha="right")
        ax.set_ylim(-limit * 1.15, limit * 1.15)
        ax.set_title(f"{p.replace('_', ' ')}, {b} body")
        ax.set_ylabel("mass error, (measured - true) / true (%)")
        ax.set_xlabel("insert (diameter: large 5, medium 3, small 1 mm)")
        ax.grid(axis="y", lw=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.legend(loc="outside upper center", ncol=min(len(methods), 8), fontsize=8,
               title="method (bars: SD over the repeats; grey band: ±10%; means beyond "
                     "±100% printed at the edge)", title_fontsize=8)
    fig.savefig(path, dpi=90)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--quick", action="store_true",
                        help="2 repeats of calcium_scoring only (for the test)")
    parser.add_argument("--out", default=None, help="output folder (default validation/results)")
    args = parser.parse_args(argv)
    repeats, protocols = (2, ["calcium_scoring"]) if args.quick else (args.repeats, args.protocols)
    out = Path(args.out) if args.out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"methods: {list(METHODS)}", file=sys.stderr, flush=True)
    per_scan, free, truth_table = run(protocols, repeats=repeats, seed=args.seed)
    per_scan[PER_SCAN_COLUMNS].to_csv(  # gzip with mtime 0: the same bytes on every run
        out / "methods_cci_per_scan.csv.gz", index=False, float_format="%.6g",
        compression={"method": "gzip", "mtime": 0})
    summary, found = summarise(per_scan, truth_table)
    fp = false_positives(free)
    (free.assign(found=free["detected"].fillna(False).astype(bool),
                 failed=free["detected"].isna())
     .groupby(["protocol", "body", "repeat", "method", "diameter_mm"], sort=False)
     .agg(n_rois=("found", "size"), n_detected=("found", "sum"), n_failed=("failed", "sum"))
     .reset_index().to_csv(out / "methods_cci_calcium_free.csv", index=False))
    summary.to_csv(out / "methods_cci_summary.csv", index=False, float_format="%.6g")
    found.to_csv(out / "methods_cci_detection.csv", index=False, float_format="%.6g")
    fp.to_csv(out / "methods_cci_false_positives.csv", index=False, float_format="%.6g")
    plot(summary, out / "methods_cci_mass_error.png")
    diameters = {name: d for name, d, _ in _sizes(phantoms.cci_phantom())}
    print(markdown(summary, found, fp))
    print()
    print("\n".join(target_lines(summary, found, fp, diameters)))
    bias = background_bias(per_scan, truth_table)
    big = bias[bias["lesion"].map(diameters) >= 3.0]
    big = big.assign(background_bias_hu=big["background_bias_hu"].round(1))
    print("\nBackground-shell bias (HU) and mass error (%): as measured -> with the true "
          "background (analysis only)\n\n" + md_table(by_method(
              big, ["protocol", "body", "lesion", "background_bias_hu"],
              lambda r: f"{r.error_pct:+.1f} -> {r.error_true_background_pct:+.1f}")))
    c = per_scan.groupby("repeat")["c_ha"].first()
    print(f"\n{len(per_scan.groupby(['protocol', 'body', 'repeat']))} scans, methods "
          f"{list(METHODS)}; c_HA {c.min():.4f}-{c.max():.4f}; run time "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
