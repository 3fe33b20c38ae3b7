"""The scanner protocol measured on a scan of the QRM phantom (see :func:`pvcalc.twin.measure_protocol`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from phantoms._blur_kernels import gaussian_taps
from phantoms.protocol import Protocol
from phantoms.psf import FWHM_PER_SIGMA
from pvcalc._twin_edge import GAUSSIAN_MTF10_OVER_MTF50, EdgeResult, measure_edge
from pvcalc._twin_noise import DETRENDS, NoiseResult, measure_noise, place_rois, twin_table
from pvcalc._validate import check_int, positive_float
from pvcalc.scan import scan_spacing_mm, validate_scan

__all__ = ["REPORT_COLUMNS", "INSERT_RADIUS_MM", "MeasuredCurves", "measure"]

#: Columns of the report of :func:`pvcalc.twin.measure_protocol`.
REPORT_COLUMNS = ("quantity", "value", "unit", "se", "roi", "method", "n")
#: Radius of the CCI insert cylinder (100 mm diameter), the region of the noise ROIs.
INSERT_RADIUS_MM = 50.0
#: Noise ROIs keep this far (mm) from the insert cylinder's edge ...
INSERT_EDGE_MARGIN_MM = 4.0
#: ... and this far plus 3 sigma of the edge blur from every insert and rod.
OBJECT_MARGIN_MM = 2.0
#: Largest noise ROI side: 64 pixels and at most this many mm.
ROI_MAX_SIDE_MM = 32.0
#: Rod ROI for the HU = the rod's cross-section shrunk by this margin (mm).
ROD_MARGIN_MM = 2.0
#: Threshold (HU) between the phantom (tissue, fat ring) and the air around it.
BODY_THRESHOLD_HU = -500.0


@dataclass(frozen=True, eq=False)
class MeasuredCurves:
    """The curves behind the report: the rod's ESF and MTF, the radial NPS, the ROIs.

    Attributes
    ----------
    esf : DataFrame
        ``r_mm`` (distance to the rod's centre), ``mean_hu``, ``n`` (pixels), ``model_hu``
        (the fitted blurred disc).
    mtf : DataFrame
        ``frequency_per_mm``, ``mtf`` (from the ESF), ``se`` (its bootstrap standard
        error), ``mtf_gaussian`` (of the fitted Gaussian edge, pixel footprint included).
    nps : DataFrame
        ``frequency_per_mm``, ``nps_hu2_mm2`` (radial NPS), ``se_hu2_mm2``.
    noise_rois : DataFrame
        ``slice``, ``z_mm``, ``y0_mm``, ``x0_mm`` (first pixel centre), ``side_mm``,
        ``mean_hu``, ``sd_hu`` of each uniform ROI.
    edge : EdgeResult
    noise : NoiseResult
    """

    esf: pd.DataFrame
    mtf: pd.DataFrame
    nps: pd.DataFrame
    noise_rois: pd.DataFrame
    edge: EdgeResult
    noise: NoiseResult


def _frame(layout, name, columns):
    table = getattr(layout, name, None)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"layout.{name} must be a DataFrame (as pvcalc.qrm.locate_cci returns), "
                        f"got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"layout.{name} lacks the column(s) {missing}; it needs {list(columns)}")
    return table


def _layout_parts(layout):
    """Centre, inserts and rods of a CCILayout-like object, checked."""
    for attr in ("centre_yx_mm", "insert_z_mm", "inserts", "rods"):
        if not hasattr(layout, attr):
            raise TypeError(f"layout must be a pvcalc.qrm.CCILayout (pvcalc.qrm.locate_cci(scan)); "
                            f"{type(layout).__name__} has no attribute {attr!r}")
    centre = tuple(float(v) for v in layout.centre_yx_mm)
    inserts = _frame(layout, "inserts", ("lesion", "diameter_mm", "centre_z_mm", "centre_y_mm",
                                         "centre_x_mm"))
    rods = _frame(layout, "rods", ("rod", "centre_y_mm", "centre_x_mm", "radius_mm", "z_lo_mm",
                                   "z_hi_mm"))
    by_name = {str(r): row for r, row in zip(rods["rod"], rods.itertuples(index=False))}
    for need in ("ha200", "water"):
        if need not in by_name:
            raise ValueError(f"layout.rods has no {need!r} rod (rods: {sorted(by_name)}); the "
                             "twin needs both calibration rods: locate them with "
                             "pvcalc.qrm.locate_cci(scan) (require_rods=True)")
    return centre, inserts, by_name


def _rod_slices(z, lo, hi, thickness):
    """Slices whose whole slice profile lies in [lo, hi]; else the one nearest the middle."""
    inside = np.flatnonzero((z >= lo + thickness) & (z <= hi - thickness))
    if inside.size:
        return inside, "slices whose profile lies inside the rod's z section"
    mid = 0.5 * (lo + hi)
    return np.array([int(np.argmin(np.abs(z - mid)))]), (
        "the slice nearest the middle of the rod's z section (no slice lies wholly inside it)")


def _rod_hu(values, slices, yy, xx, centre, radius):
    """Mean HU of the shrunk rod disc and the means of its quadrants in every slice."""
    cy, cx = centre
    r_roi = radius - ROD_MARGIN_MM
    if r_roi <= 0:
        raise ValueError(f"a rod of radius {radius:.2g} mm is too thin for the {ROD_MARGIN_MM} mm "
                         "ROI margin; check layout.rods radius_mm")
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r_roi ** 2
    quad = (yy >= cy).astype(int) * 2 + (xx >= cx).astype(int)
    parts = []
    for k in slices:
        img = values[k]
        parts += [float(img[disc & (quad == q)].mean(dtype=np.float64)) for q in range(4)
                  if np.any(disc & (quad == q))]
    data = values[np.asarray(slices)][:, disc].astype(np.float64)
    parts = np.asarray(parts)
    se = float(parts.std(ddof=1) / math.sqrt(parts.size)) if parts.size > 1 else float("nan")
    return float(data.mean()), se, int(data.size)


def _walk(line, start):
    """Pixels from ``start`` to the last True of the run through it, and whether the run
    reaches the end of ``line``."""
    off = np.flatnonzero(~line[start:])
    return (int(off[0]), False) if off.size else (int(line.size - start), True)


def body_height(values, y, x, centre_yx_mm, z_index):
    """(height in mm, cut) of the phantom through the insert's centre.

    In slice ``z_index``: twice the run of voxels above :data:`BODY_THRESHOLD_HU` from the
    insert's centre towards -y (anterior: the couch lies posterior, and the insert sits
    at the centre of the thorax; the lungs lie to the sides, so they do not stop the run,
    as they would a run along x). ``cut`` is True when the run reaches the edge of the
    field of view: the height is then a lower bound.
    """
    j = int(np.argmin(np.abs(y - centre_yx_mm[0])))
    i = int(np.argmin(np.abs(x - centre_yx_mm[1])))
    column = values[z_index][::-1, i] > BODY_THRESHOLD_HU
    start = y.size - 1 - j
    if not column[start]:
        return float("nan"), True
    off = np.flatnonzero(~column[start:])
    run, cut = (int(off[0]), False) if off.size else (int(column.size - start), True)
    return 2.0 * run * abs(y[1] - y[0]), cut


def _kvp(scan, kvp):
    if kvp is not None:
        value = positive_float("kvp", kvp, what="tube voltage", unit="kV")
        return value, "given", "the kvp argument"
    value = float(scan.attrs["kvp"])
    if scan.attrs.get("kvp_source") == "default":
        return value, "default", ("the scan does not record its tube voltage (DICOM KVP); "
                                  f"{value:g} kV assumed: pass kvp=...")
    return value, "scan", "the scan's attribute kvp (DICOM KVP)"


def measure(scan, layout, *, kvp=None, ha_density_mg_cm3=200.0, roi_size_px=None,
            detrend="plane", n_boot=100, seed=0):
    """(Protocol, report, MeasuredCurves); see :func:`pvcalc.twin.measure_protocol`."""
    validate_scan(scan)
    if detrend not in DETRENDS:
        raise ValueError(f"detrend must be one of {DETRENDS}, got {detrend!r}")
    n_boot = check_int("n_boot", n_boot, 0)
    seed = check_int("seed", seed, 0)
    rho = positive_float("ha_density_mg_cm3", ha_density_mg_cm3, what="density", unit="mg/cm3")
    centre, inserts, rods = _layout_parts(layout)
    dz, dy, dx = scan_spacing_mm(scan)
    if abs(dy - dx) > 0.01 * max(dy, dx):
        raise ValueError(f"the scan's pixels are not square (y {dy:.4g} mm, x {dx:.4g} mm); a "
                         "phantoms.Protocol has one pixel_mm: resample the scan to square pixels")
    pixel = 0.5 * (dy + dx)
    thickness = float(scan.attrs["slice_thickness_mm"])
    z, y, x = (np.asarray(scan.coords[d].values, dtype=np.float64) for d in "zyx")
    values = np.asarray(scan.values)      # float32; each piece is taken as float64
    yy, xx = np.meshgrid(y, x, indexing="ij")
    rows = []

    def add(quantity, value, unit, se, roi, method, n):
        rows.append((quantity, float(value), unit, float(se), roi, method, int(n)))

    # --- in-plane resolution from the HA rod's edge ----------------------------------
    ha, water = rods["ha200"], rods["water"]
    ha_slices, ha_how = _rod_slices(z, float(ha.z_lo_mm), float(ha.z_hi_mm), thickness)
    exclude = [((float(water.centre_y_mm), float(water.centre_x_mm)),
                float(water.radius_mm) + 3.0)]
    for ins in inserts.itertuples(index=False):
        if np.any(np.abs(z[ha_slices] - float(ins.centre_z_mm))
                  < 0.5 * float(ins.diameter_mm) + thickness):
            exclude.append(((float(ins.centre_y_mm), float(ins.centre_x_mm)),
                            0.5 * float(ins.diameter_mm) + 3.0))
    edge = measure_edge(values, ha_slices, y, x,
                        centre_yx_mm=(float(ha.centre_y_mm), float(ha.centre_x_mm)),
                        radius_mm=float(ha.radius_mm), pixel_mm=pixel, exclude=exclude,
                        n_boot=n_boot, seed=seed)
    psf_fwhm, psf_se = _psf_from_edge(edge, pixel)
    roi_rod = (f"HA rod edge, {edge.n_slices} slice(s) z {z[ha_slices].min():.1f} to "
               f"{z[ha_slices].max():.1f} mm ({ha_how})")
    add("psf_fwhm_mm", psf_fwhm, "mm", psf_se, roi_rod,
        "FWHM of the simulator's Gaussian PSF whose image of an edge has the fitted width: "
        "edge variance = p^2/12 (the voxel's average of the object) + the variance of the "
        "pixel-integrated PSF taps (phantoms/psf.py); block bootstrap error", edge.n_pixels)
    add("esf_fwhm_mm", edge.esf_fwhm_mm, "mm", FWHM_PER_SIGMA * edge.sigma_se_mm, roi_rod,
        "FWHM of the Gaussian-blurred disc fitted to the radial ESF (least squares, "
        "scipy.optimize); block bootstrap error", edge.n_pixels)
    add("mtf50_per_mm", edge.mtf50_per_mm, "cycles/mm", edge.mtf50_se_per_mm, roi_rod,
        "MTF from the radial ESF (bins of p/10, LSF by finite differences, Tukey taper); "
        "block bootstrap error", edge.n_pixels)
    add("mtf10_per_mm", edge.mtf10_per_mm, "cycles/mm", edge.mtf10_se_per_mm, roi_rod,
        "as mtf50_per_mm", edge.n_pixels)
    add("mtf10_over_mtf50", edge.mtf10_over_mtf50, "1", float("nan"), roi_rod,
        f"a Gaussian PSF has {GAUSSIAN_MTF10_OVER_MTF50:.4f}", edge.n_pixels)
    reasons = edge.non_gaussian_reasons
    add("psf_non_gaussian", 1.0 if reasons else 0.0, "flag", float("nan"), roi_rod,
        "; ".join(reasons) if reasons else "Gaussian within the tolerances (MTF10 / MTF50 "
        "within 15% of 1.8226 or within 3 of its standard errors, fit residual within twice "
        "the bin noise + 1% of the contrast)",
        edge.n_pixels)
    add("esf_rms_residual_hu", edge.rms_residual_hu, "HU", float("nan"), roi_rod,
        f"RMS of the disc fit's residual; the bins' own noise is {edge.noise_rms_hu:.3g} HU",
        edge.n_pixels)
    add("ha_rod_radius_mm", edge.radius_mm, "mm", float("nan"), roi_rod,
        "radius of the fitted disc", edge.n_pixels)

    # --- noise from uniform squares in the insert body ---------------------------------
    if roi_size_px is None:
        side = int(min(64, 2 * math.floor(0.5 * ROI_MAX_SIDE_MM / pixel)))
    else:
        side = check_int("roi_size_px", roi_size_px, 8)
    margin = OBJECT_MARGIN_MM + 3.0 * edge.sigma_mm
    rois = []
    for k, zk in enumerate(z):
        ex = []
        for ins in inserts.itertuples(index=False):
            if abs(zk - float(ins.centre_z_mm)) < 0.5 * float(ins.diameter_mm) + thickness:
                ex.append(((float(ins.centre_y_mm), float(ins.centre_x_mm)),
                           0.5 * float(ins.diameter_mm) + margin))
        for rod in rods.values():
            if float(rod.z_lo_mm) - thickness <= zk <= float(rod.z_hi_mm) + thickness:
                ex.append(((float(rod.centre_y_mm), float(rod.centre_x_mm)),
                           float(rod.radius_mm) + margin))
        rois += [(k, j, i) for j, i in place_rois(
            y, x, centre_yx_mm=centre, radius_mm=INSERT_RADIUS_MM - INSERT_EDGE_MARGIN_MM,
            side_px=side, exclude=ex)]
    if len(rois) < 2:
        raise ValueError(f"found {len(rois)} uniform {side} x {side} pixel square(s) in the "
                         f"insert body (inside {INSERT_RADIUS_MM - INSERT_EDGE_MARGIN_MM:g} mm "
                         "of its centre, clear of inserts and rods); give a smaller roi_size_px "
                         "or a scan with more slices")
    rois = _uniform_only(values, rois, side)
    noise = measure_noise(values, rois, pixel_mm=pixel, side_px=side, z_mm=z, y_mm=y, x_mm=x,
                          detrend=detrend, n_boot=n_boot, seed=seed)
    roi_noise = (f"{noise.n_rois} squares of {side} x {side} pixels in {noise.n_slices} "
                 "slice(s) of the insert body")
    how = f"{detrend} removed per ROI; bootstrap error over ROIs"
    add("noise_sd_hu", noise.sd_hu, "HU", noise.sd_se_hu, roi_noise,
        f"pooled SD ({how})", noise.n_rois)
    add("nps_peak_freq_per_mm", noise.peak_per_mm, "cycles/mm", noise.peak_se_per_mm, roi_noise,
        f"peak of a local fit log NPS = a + b log f - c f^2 to the radial NPS ({how})",
        noise.n_rois)
    add("nps_mean_freq_per_mm", noise.mean_freq_per_mm, "cycles/mm", noise.mean_freq_se_per_mm,
        roi_noise, f"sum f NPS(f) / sum NPS(f) of the radial NPS to Nyquist ({how})",
        noise.n_rois)
    add("lag1_autocorrelation", noise.lag1, "1", noise.lag1_se, roi_noise,
        f"correlation of neighbouring pixels, mean of x and y ({how})", noise.n_rois)
    add("insert_body_hu", noise.mean_hu, "HU", noise.mean_se_hu, roi_noise,
        "mean of the uniform ROIs; bootstrap error over ROIs", noise.n_rois)

    # --- HU per mg HA from the two rods ------------------------------------------------
    w_slices, w_how = _rod_slices(z, float(water.z_lo_mm), float(water.z_hi_mm), thickness)
    hu_ha, se_ha, n_ha = _rod_hu(values, ha_slices, yy, xx, edge.centre_yx_mm, edge.radius_mm)
    hu_w, se_w, n_w = _rod_hu(values, w_slices, yy, xx,
                              (float(water.centre_y_mm), float(water.centre_x_mm)),
                              float(water.radius_mm))
    k_hu = (hu_ha - hu_w) / rho
    rod_roi = f"rod discs shrunk by {ROD_MARGIN_MM:g} mm"
    add("hu_per_mg_ha", k_hu, "HU per mg HA/cm3", math.hypot(se_ha, se_w) / rho,
        f"HA and water {rod_roi}", f"(HA rod - water rod) / {rho:g} mg HA/cm3; error from the "
        "spread of the rod quadrants' means", n_ha + n_w)
    add("ha_rod_hu", hu_ha, "HU", se_ha, f"HA {rod_roi} ({ha_how})",
        "mean; error from the spread of its quadrants' means", n_ha)
    add("water_rod_hu", hu_w, "HU", se_w, f"water {rod_roi} ({w_how})",
        "mean; error from the spread of its quadrants' means", n_w)

    # --- geometry and acquisition from the scan itself ---------------------------------
    k_mid = int(np.argmin(np.abs(z - float(layout.insert_z_mm))))
    height, height_cut = body_height(values, y, x, centre, k_mid)
    add("body_height_mm", height, "mm", float("nan"), "column through the insert centre",
        f"twice the run of voxels > {BODY_THRESHOLD_HU:g} HU from the insert centre towards "
        "-y (anterior)" + ("; it reaches the edge of the field of view, so this is a lower "
                           "bound" if height_cut else ""), 1)
    kv, kv_source, kv_how = _kvp(scan, kvp)
    add("kvp", kv, "kV", float("nan"), "scan attributes", kv_how, 1)
    add("slice_thickness_mm", thickness, "mm", float("nan"), "scan attributes",
        f"nominal thickness ({scan.attrs.get('slice_thickness_source', 'scan attribute')})", 1)
    add("increment_mm", dz, "mm", float("nan"), "z coordinates", "slice spacing", scan.sizes["z"])
    add("pixel_mm", pixel, "mm", float("nan"), "y and x coordinates", "pixel spacing", 1)
    matrix = int(max(scan.sizes["y"], scan.sizes["x"]))
    add("matrix", matrix, "pixels", float("nan"), "scan shape", "larger of the y and x sizes", 1)

    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    protocol = _protocol(scan, kv, pixel, matrix, thickness, dz, psf_fwhm, noise, k_hu)
    curves = MeasuredCurves(esf=edge.esf, mtf=edge.mtf, nps=noise.nps, noise_rois=noise.rois,
                            edge=edge, noise=noise)
    report.attrs["curves"] = curves
    report.attrs["kvp_source"] = kv_source
    report.attrs["body_height_cut"] = height_cut
    return protocol, report, curves


def _tap_variance(sigma_mm, pixel_mm):
    """Variance (mm^2) of the simulator's pixel-integrated Gaussian taps (phantoms/psf.py)."""
    taps = gaussian_taps(FWHM_PER_SIGMA * sigma_mm, pixel_mm).astype(np.float64)
    j = np.arange(taps.size) - taps.size // 2
    return float((taps * (j * pixel_mm) ** 2).sum())


def _psf_from_edge(edge, pixel):
    """(FWHM, SE) of the Gaussian PSF that gives the edge its fitted width in the simulator.

    The simulator renders the object averaged over each voxel (variance p^2 / 12 across
    the edge) and blurs it with the PSF integrated over each pixel
    (:func:`phantoms.blur_inplane`), so the edge's variance is p^2 / 12 plus the taps'
    variance, which tends to sigma^2 + p^2 / 12 for a PSF wider than a pixel; solved for
    sigma (scipy.optimize.brentq).
    """
    lo, hi = 0.1 / FWHM_PER_SIGMA, 5.0 / FWHM_PER_SIGMA

    def solve(s_edge):
        target = s_edge ** 2 - pixel ** 2 / 12.0
        if target <= _tap_variance(lo, pixel):
            return float("nan")
        if target >= _tap_variance(hi, pixel):
            return hi
        return optimize.brentq(lambda s: _tap_variance(s, pixel) - target, lo, hi, xtol=1e-6)

    sigma = solve(edge.sigma_mm)
    if not math.isfinite(sigma):
        raise ValueError(f"the HA rod's edge is as sharp as the pixels allow (edge FWHM "
                         f"{edge.esf_fwhm_mm:.3g} mm at {pixel:.3g} mm pixels), so no PSF width "
                         "can be measured; check the rod position (layout.rods)")
    se = float("nan")
    if math.isfinite(edge.sigma_se_mm) and edge.sigma_se_mm > 0:
        step = 0.25 * edge.sigma_se_mm
        up, down = solve(edge.sigma_mm + step), solve(edge.sigma_mm - step)
        if math.isfinite(up) and math.isfinite(down):
            se = FWHM_PER_SIGMA * (up - down) / (2.0 * step) * edge.sigma_se_mm
    return FWHM_PER_SIGMA * sigma, se


def _uniform_only(values, rois, side):
    """Drop squares whose mean or SD is far from the others' (lung, ring, an artefact)."""
    stats = np.array([(float(values[k, j:j + side, i:i + side].mean(dtype=np.float64)),
                       float(values[k, j:j + side, i:i + side].std(dtype=np.float64)))
                      for k, j, i in rois])
    med_mean, med_sd = np.median(stats, axis=0)
    spread = 1.4826 * float(np.median(np.abs(stats[:, 0] - med_mean)))
    keep = (np.abs(stats[:, 0] - med_mean) <= 10.0 + 4.0 * spread) & (stats[:, 1] <= 1.5 * med_sd)
    return [r for r, ok in zip(rois, keep) if ok]


def _nps_table(nps, side_px, pixel_mm):
    """(frequency, relative NPS) pairs for Protocol.nps_radial, to the pixel grid's corner
    (:func:`pvcalc._twin_noise.twin_table`: corrected for the ROIs' window)."""
    f = nps["frequency_per_mm"].to_numpy()
    v = twin_table(f, nps["nps_hu2_mm2"].to_numpy(), side_px, pixel_mm)
    corner = math.sqrt(2.0) * 0.5 / pixel_mm    # the last rings round past the grid's corner
    keep = f <= corner * (1.0 - 1e-9)
    return tuple((float(a), float(b)) for a, b in zip(f[keep], v[keep]))


def _protocol(scan, kvp, pixel, matrix, thickness, increment, psf_fwhm, noise, k_hu):
    fields = dict(name="twin", kvp=kvp, pixel_mm=pixel, matrix=matrix,
                  slice_thickness_mm=thickness, increment_mm=increment, psf_fwhm_mm=psf_fwhm,
                  kernel=str(scan.attrs.get("kernel") or "measured"), noise_sd_hu=noise.sd_hu,
                  nps_radial=_nps_table(noise.nps, noise.side_px, pixel), hu_per_mg_ha=k_hu)
    return Protocol(**fields)
