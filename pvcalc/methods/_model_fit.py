"""``model_fit``: volume and mass from a least-squares fit of a forward model of the lesion.

The image in the lesion's ROI is modelled as a background plus one calcification
of a chosen shape (``"cylinder"`` with its axis along z, ``"sphere"`` or an
axis-aligned ``"ellipsoid"``), rendered with exact partial volume on the scan's
voxel grid, blurred in-plane by the Gaussian PSF and along z by the slice
sensitivity profile (:mod:`pvcalc.methods._model_fit_kernels`):

    model_i = b + q T_i(c, s)

with centre ``c`` (mm, sub-voxel), sizes ``s`` (mm), integrated contrast ``q``
(HU x mm3: the contrast times the volume) and background ``b`` (HU), ``T`` the
blurred shape of unit integrated contrast. MINPACK's Levenberg-Marquardt
(``scipy.optimize.leastsq``) fits them to the ROI's voxels
(:mod:`pvcalc.methods._model_fit_solve`); then

    volume_mm3 = V(s)
    mass_mg    = c_HA x q / 1000               (density = c_HA x q / V)
    Var(g . theta) = sigma^2 sum_(u,v) w_u w_v rho(v - u),  w = J (J^T J)^+ g

the standard errors of the mass (g = dq) and volume (g = dV): the data
covariance ``s_r^2 (J^T J)^+`` of the least-squares fit with the correlated CT
noise put back (a sandwich; ``rho`` the noise autocorrelation measured in the
background shell, ``sigma^2`` the larger of the shell's and the fit's residual
variance; :func:`pvcalc.methods._model_fit_solve.sandwich_variance`).

Mass is determined even when size and contrast are not (a lesion much smaller
than the PSF): ``q`` is then what the image measures. The fit reports only what
the image determines: the volume when its standard error is at most
``max_volume_rse`` of it, else NaN with a reason; the mass of the full model
when it fits significantly better than a fixed-size model (the prior shape,
``prior_diameter_mm``), else that of the fixed-size model. Detection uses the
fixed-size model at the centroid of the ROI: ``z = q / SE(q) > z(1 - alpha)``
(optionally searched along z or over the whole ROI, with the threshold of the
maximum of that search under the null, :mod:`pvcalc.methods._model_fit_detect`).

PSF and slice profile come from the parameters if given, else from the scan's
attrs (``psf_fwhm_mm``, ``slice_thickness_mm``, ``slice_profile``: the simulator
writes them; a real scan gets them from a measurement of its phantom scan). The
formulas, choices, failure modes and measured accuracy are in
docs/methods/model_fit.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pvcalc._validate import check_int, check_real
from pvcalc.methods import _model_fit_detect as _d
from pvcalc.methods import _model_fit_solve as _s
from pvcalc.methods._base import NO_CALIBRATION, MethodSpec
from pvcalc.methods._noise import BLOCK_MM

__all__ = ["NO_PSF", "SPEC", "ModelFitParams"]

_BACKGROUNDS = ("fit", "shell")
_SEARCHES = ("centroid", "z", "roi")
#: ``reason`` of a scan without PSF information.
NO_PSF = "no PSF: give psf_fwhm_mm, or measure it with pvcalc.twin.measure_protocol"


@dataclass(frozen=True)
class ModelFitParams:
    """Parameters of ``model_fit``.

    Parameters
    ----------
    shape : {"cylinder", "sphere", "ellipsoid"}, default "cylinder"
        The lesion model: a cylinder with its axis along z (free diameter and
        length; the inserts of calcium phantoms), a sphere, or an ellipsoid with
        axes along z, y, x (three free semi-axes).
    psf_fwhm_mm : float or None, default None
        FWHM of the in-plane Gaussian PSF (mm). None: the scan's
        ``attrs["psf_fwhm_mm"]``; a scan without it gets NaN and the reason
        :data:`NO_PSF`.
    slice_thickness_mm : float or None, default None
        FWHM of the slice sensitivity profile (mm). None: the scan's
        ``slice_thickness_mm``.
    slice_profile : {"trapezoid", "gaussian", "box"} or None, default None
        Shape of the slice sensitivity profile. None: the scan's
        ``attrs["slice_profile"]`` (else NaN and a reason).
    trapezoid_edge_fraction : float, default 0.5
        Width of each linear edge of the trapezoid profile as a fraction of the
        slice thickness (0.5: a 3 mm slice with a 1.5 mm flat top, as measured
        multi-slice profiles; the convention of ``phantoms/_ssp.py``).
    background : {"fit", "shell"}, default "fit"
        "fit": the background level ``b`` is a free parameter (fitted to the
        ROI's voxels around the lesion); "shell": fixed at the background
        shell's mean.
    prior_diameter_mm : float, default 1.0
        Size of the prior shape (every diameter and the cylinder's length): the
        median of the weak size prior, and the fixed size of the detection
        model and of the mass of lesions whose size the image does not
        determine. 1 mm: about the smallest calcification that clinical scoring
        reports (its 1 mm2 minimum area).
    prior_log_sd : float, default 3.0
        SD of the log-normal size prior (natural log units; 3: a factor of 20),
        weighted like one voxel of noise: it only steers sizes the image does
        not determine.
    max_volume_rse : float, default 0.5
        The volume is reported when its standard error is at most this fraction
        of it, else NaN with the reason "size not resolved".
    size_test_alpha : float, default 0.01
        Significance of the likelihood-ratio test of the full model against the
        fixed-size model (its mass is reported when the test rejects the
        fixed-size model, or when the volume is resolved).
    alpha : float, default 0.05
        One-sided false-positive rate of the detection test.
    detection_search : {"centroid", "z", "roi"}, default "centroid"
        Where the detection model sits. "centroid": at the centroid of the ROI's
        voxels, one test at ``z(1 - alpha)``; for ROIs centred on the lesion
        (known insert positions, ``pvcalc.rois.truth_roi_labels``, candidates),
        the most powerful test. "z": in-plane at the centroid, its z searched
        within half a slice increment of it (a threshold of about 2.0 at 3 mm
        slices). "roi": anywhere in the ROI, a 3D search for ROIs that only
        bound the lesion (about 3.6 for a 1 mm insert's ROI at 3 mm slices).
        The thresholds of the searches come from the maximum of a smooth
        Gaussian field (:mod:`pvcalc.methods._model_fit_detect`).
    n_slabs : int, default 16
        Slabs along z of the sphere and ellipsoid models (each keeps its exact
        volume; the cylinder is one slab).
    max_nfev : int, default 200
        Most evaluations of the model per fit.

    Examples
    --------
    >>> ModelFitParams(shape="sphere", psf_fwhm_mm=1.3).psf_fwhm_mm
    1.3
    >>> ModelFitParams(shape="cube")
    Traceback (most recent call last):
    ...
    ValueError: shape must be one of ['cylinder', 'sphere', 'ellipsoid'], got 'cube'
    """

    shape: str = "cylinder"
    psf_fwhm_mm: float | None = None
    slice_thickness_mm: float | None = None
    slice_profile: str | None = None
    trapezoid_edge_fraction: float = 0.5
    background: str = "fit"
    prior_diameter_mm: float = 1.0
    prior_log_sd: float = 3.0
    max_volume_rse: float = 0.25
    size_test_alpha: float = 0.01
    alpha: float = 0.05
    detection_search: str = "centroid"
    n_slabs: int = 16
    max_nfev: int = 200

    def __post_init__(self):
        set_ = object.__setattr__
        for name, valid in (("shape", list(_s.SHAPES)), ("background", list(_BACKGROUNDS)),
                            ("detection_search", list(_SEARCHES))):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        for name in ("psf_fwhm_mm", "slice_thickness_mm"):
            if getattr(self, name) is not None:
                set_(self, name, check_real(name, getattr(self, name), lo=0.0, lo_open=True))
        if self.slice_profile is not None and self.slice_profile not in _s.PROFILES:
            raise ValueError(f"slice_profile must be one of {list(_s.PROFILES)} or None (from "
                             f"the scan's attrs), got {self.slice_profile!r}")
        set_(self, "trapezoid_edge_fraction", check_real(
            "trapezoid_edge_fraction", self.trapezoid_edge_fraction, lo=0.0, lo_open=True,
            hi=1.0))
        for name in ("prior_diameter_mm", "prior_log_sd", "max_volume_rse"):
            set_(self, name, check_real(name, getattr(self, name), lo=0.0, lo_open=True))
        for name in ("size_test_alpha", "alpha"):
            set_(self, name, check_real(name, getattr(self, name), lo=0.0, lo_open=True,
                                        hi=0.5))
        set_(self, "n_slabs", check_int("n_slabs", self.n_slabs, 2))
        set_(self, "max_nfev", check_int("max_nfev", self.max_nfev, 1))


def imaging(region, params):
    """(psf_fwhm_mm, slice_thickness_mm, slice_profile, reason): the parameters, else the
    scan's attrs; ``reason`` is non-empty when one is missing or invalid."""
    attrs = region.context.scan.attrs
    psf = params.psf_fwhm_mm
    if psf is None:
        if attrs.get("psf_fwhm_mm") is None:
            return None, None, None, NO_PSF
        try:
            psf = float(attrs["psf_fwhm_mm"])
        except (TypeError, ValueError):
            psf = float("nan")
        if not (math.isfinite(psf) and psf > 0):
            return None, None, None, (f"invalid psf_fwhm_mm in the scan's attrs "
                                      f"({attrs['psf_fwhm_mm']!r}, expected a positive FWHM "
                                      f"in mm); {NO_PSF}")
    thick = params.slice_thickness_mm or float(region.slice_thickness_mm)
    profile = params.slice_profile or attrs.get("slice_profile")
    if profile is None:
        return None, None, None, ("no slice profile: give slice_profile='trapezoid', "
                                  "'gaussian' or 'box', or measure it with "
                                  "pvcalc.twin.measure_protocol")
    if profile not in _s.PROFILES:
        return None, None, None, (f"unknown slice_profile {profile!r} in the scan's attrs "
                                  f"(expected one of {list(_s.PROFILES)}); give "
                                  "slice_profile=... explicitly")
    return float(psf), float(thick), str(profile), ""


def _one_fit(prob, region, g_start, centre_free, sizes_free, fixed_b, params, rho):
    """One fit with the sizes not in ``sizes_free`` at the prior, and its standard errors.

    Adds to the result of :func:`~pvcalc.methods._model_fit_solve.fit`: ``se_q``,
    ``volume``, ``se_v`` (inf without free sizes), ``ok`` (converged, the whole
    fitted lesion inside the ROI's bounding box).
    """
    prior = _s.prior_sizes(params.shape, params.prior_diameter_mm)
    g = g_start.copy()
    fixed = [s for s in range(3, g.size) if s not in sizes_free]
    g[fixed] = prior[[s - 3 for s in fixed]]
    q0, b0 = _s.linear_amplitude(prob, prob.template(g), fixed_b)
    if not q0 > 0:
        q0 = max(float(np.max(prob.y - b0)), 1.0) * prob.voxel_mm3
    sd = region.background_sd_hu if region.background_sd_hu > 1.0 else 1.0
    res = _s.fit(prob, g, list(centre_free) + list(sizes_free), q0, b0,
                 prior=(prior, sd / params.prior_log_sd), fixed_background=fixed_b,
                 max_nfev=params.max_nfev)
    nf = len(res["free"])
    n = nf + 1 + (fixed_b is None)
    grads = np.zeros((2 if sizes_free else 1, n))
    grads[0, nf] = 1.0                                  # q
    res["volume"], grad = _s.volume_and_gradient(params.shape, res["geometry"])
    if sizes_free:
        grads[1, len(centre_free):nf] = grad[[s - 3 for s in sizes_free]]
    var = _s.sandwich_variance(res, grads, prob, rho, region.background_sd_hu ** 2)
    res["se_q"] = math.sqrt(var[0])
    res["se_v"] = math.sqrt(var[1]) if sizes_free else math.inf
    # usable: converged, and the whole fitted lesion inside the ROI's box (a lesion that
    # fills the ROI is the background's shape, not a lesion the ROI holds)
    geo = res["geometry"]
    half = np.array(_s.half_extents(params.shape, geo))
    res["ok"] = bool(res["status"] > 0 and np.all(geo[:3] - half >= prob.lo_mm)
                     and np.all(geo[:3] + half <= prob.hi_mm))
    return res


def _outside_scan(region, shape, g):
    """Whether the fitted lesion reaches beyond the scanned volume (voxel edges)."""
    scan = region.context.scan
    half = _s.half_extents(shape, g)
    for axis, (dim, step) in enumerate(zip(("z", "y", "x"), region.spacing_mm)):
        c = np.asarray(scan.coords[dim].values)
        lo, hi = float(c.min()) - 0.5 * step, float(c.max()) + 0.5 * step
        if g[axis] - half[axis] < lo or g[axis] + half[axis] > hi:
            return True
    return False


def _failure(res):
    if res["status"] <= 0:
        return "the fit did not converge within max_nfev evaluations"
    return "the fitted lesion does not lie inside the ROI's bounding box (no lesion in the ROI)"


def compute(region, params, calibration):
    """Fit the forward model to the ROI; volume, mass, their SEs and detection (module notes)."""
    nan = float("nan")
    psf, thick, profile, reason = imaging(region, params)
    if reason:
        return {"volume_mm3": nan, "mass_mg": nan, "reason": reason}
    prob = _s.make_problem(region, params.shape, psf, thick, profile,
                           params.trapezoid_edge_fraction, params.n_slabs)
    fixed_b = region.background_hu if params.background == "shell" else None
    b_start = region.background_hu if np.isfinite(region.background_hu) else float(
        np.median(prob.y))
    out = {"psf_fwhm_mm": psf, "n_voxels": prob.n, "peak_hu": float(prob.y.max())}
    n_params = 3 + len(_s.size_names(params.shape)) + 1 + (fixed_b is None)
    if prob.n < n_params:
        out.update(volume_mm3=nan, mass_mg=nan,
                   reason=(f"ROI too small: {prob.n} voxel(s) for a model with {n_params} "
                           "parameters; use an ROI that holds the lesion and its blurred edge "
                           "(e.g. pvcalc.rois.truth_roi_labels, or a larger radius_mm)"))
        return out
    if np.ptp(prob.y) == 0 and np.all(prob.y > b_start):
        out.update(volume_mm3=nan, mass_mg=nan,
                   reason=(f"constant ROI: all {prob.n} voxels are {prob.y[0]:.1f} HU, above "
                           f"the background ({b_start:.1f} HU), so the image holds no edge to "
                           "fit; use an ROI that holds the lesion and its blurred edge"))
        return out
    if not np.any(prob.y > b_start):
        out.update(volume_mm3=nan, mass_mg=0.0 if calibration is not None else nan,
                   detected=False, z_score=0.0,
                   reason=(f"no signal: no ROI voxel lies above the background "
                           f"({b_start:.1f} HU), so there is no lesion to fit (mass 0)"))
        if calibration is None:
            out["reason"] += "; " + NO_CALIBRATION
        return out
    g0 = _s.initial_guess(prob, region, b_start, psf)
    g0 = np.clip(g0, *_s.bounds(prob, g0.size - 3))
    sizes = list(range(3, g0.size))
    rho = _s.noise_correlation(region, BLOCK_MM)
    full = _one_fit(prob, region, g0, (0, 1, 2), sizes, fixed_b, params, rho)
    sigma = _d.field_sigma_mm(
        _d.template_sigma_mm(params.shape, params.prior_diameter_mm, psf, region.spacing_mm,
                             thick, profile, params.trapezoid_edge_fraction),
        thick, profile, params.trapezoid_edge_fraction)
    if params.detection_search == "roi":
        point = _one_fit(prob, region, g0, (0, 1, 2), [], fixed_b, params, rho)
        u = _d.search_threshold(params.alpha, prob.n * prob.voxel_mm3, sigma)
    elif params.detection_search == "z":
        # in-plane at the ROI's centroid, z within half an increment of its centroid (the
        # ROI's voxel centroid is quantised by the slices)
        zc = _s.roi_centroid(prob)[0]
        z_range = (zc - 0.5 * prob.dz, zc + 0.5 * prob.dz)
        start = _s.centre_start(prob, g0, params.prior_diameter_mm, fixed_b, z_range)
        point = _one_fit(prob, region, start, (0,), [], fixed_b, params, rho)
        point["ok"] = point["ok"] and z_range[0] <= point["geometry"][0] <= z_range[1]
        u = _d.search_threshold(params.alpha, prob.dz, sigma[:1])
    else:
        # the matched filter at the ROI's centroid: one test, threshold z(1 - alpha)
        start = g0.copy()
        start[:3] = _s.roi_centroid(prob)
        point = _one_fit(prob, region, start, (), [], fixed_b, params, rho)
        u = _d.search_threshold(params.alpha, 0.0, sigma[:1])
    z = point["q"] / point["se_q"] if point["se_q"] > 0 else (
        math.inf if point["q"] > 0 else 0.0)
    resolved = full["ok"] and full["se_v"] <= params.max_volume_rse * full["volume"]
    # likelihood ratio of the full against the fixed-size model, noise variance A s_r^2
    dof = len(full["free"]) - len(point["free"])
    noise = region.noise_inflation * full["s2"]
    better = full["ok"] and point["rss"] - full["rss"] > \
        noise * stats.chi2.ppf(1.0 - params.size_test_alpha, dof)
    if full["ok"] and (resolved or better):
        res = full
    elif point["ok"]:
        res = point
    else:
        res = full if full["ok"] else None
    out.update(n_iter=full["njev"] + point["njev"], z_score=z, detection_threshold=u,
               detected=bool(point["ok"] and z > u),
               volume_se_mm3=full["se_v"] if full["ok"] else nan, volume_resolved=resolved)
    if region.touches_border and full["status"] > 0 and _outside_scan(
            region, params.shape, full["geometry"]):
        out.update(volume_mm3=nan, mass_mg=nan, converged=True,
                   reason=("lesion at the scan border: the fitted lesion reaches beyond the "
                           "scanned volume, whose missing part the image cannot measure; scan "
                           "a larger range or move the ROI"))
        return out
    if res is None:
        out.update(volume_mm3=nan, mass_mg=nan, converged=full["status"] > 0,
                   reason=f"fit failed: {_failure(full)}; check that the ROI holds the lesion")
        return out
    g, q, vol = res["geometry"], res["q"], res["volume"]
    out.update(converged=True, fit_rms_hu=res["rms"], background_fit_hu=res["b"],
               contrast_hu=q / vol, size_fitted=res is full, centre_z_mm=g[0],
               centre_y_mm=g[1], centre_x_mm=g[2])
    for axis, h in zip("zyx", _s.half_extents(params.shape, g)):
        out[f"size_{axis}_mm"] = 2.0 * h
    reasons = []
    if not q > 0:
        out["volume_mm3"] = nan
        reasons.append("no calcium: the fitted integrated contrast is not positive, so the "
                       "volume is undefined (the mass is reported, as noise makes it negative "
                       "about half the time in calcium-free ROIs)")
    elif resolved:
        out["volume_mm3"] = vol
    else:
        out["volume_mm3"] = nan
        rse = full["se_v"] / full["volume"] if full["ok"] else math.inf
        source = ("the full model (it fits better than the fixed-size one)" if res is full else
                  f"the fixed-size model (prior_diameter_mm = {params.prior_diameter_mm:g})")
        reasons.append(f"size not resolved: the image does not determine the volume (relative "
                       f"SE {rse:.3g} > max_volume_rse = {params.max_volume_rse:g}); volume "
                       f"NaN, mass from {source}")
    if calibration is None:
        out["mass_mg"] = nan
        reasons.append(NO_CALIBRATION)
    else:
        c = calibration.c_ha_mg_cm3_per_hu
        out.update(mass_mg=c * q / 1000.0, mass_se_mg=c * res["se_q"] / 1000.0,
                   density_mg_cm3=c * q / vol)
    out["reason"] = "; ".join(reasons)
    return out


SPEC = MethodSpec(
    name="model_fit", params=ModelFitParams, compute=compute, requires_calibration=False,
    defines={"volume_mm3", "mass_mg"},
    summary="least-squares fit of a blurred cylinder, sphere or ellipsoid (exact partial "
            "volume, Gaussian PSF, slice profile) to the ROI; mass = c_HA x fitted integrated "
            "contrast",
    reference="forward-model fitting below the PSF after Treece GM et al., Med Image Anal "
              "2010;14:276-290, doi:10.1016/j.media.2010.01.003; detection threshold: Worsley "
              "KJ et al., Hum Brain Mapp 1996;4:58-73")
