"""The least-squares fit behind ``model_fit`` (private): problem set-up, start, fit, errors.

:func:`make_problem` turns a :class:`~pvcalc.methods.LesionRegion` and the
imaging parameters into the arrays of the forward model
(:mod:`pvcalc.methods._model_fit_kernels`); :func:`initial_guess` finds a start
from the image; :func:`fit` runs ``scipy.optimize.least_squares`` on

    model_i = b + q T_i(g)

over the ROI voxels i, with ``T(g)`` the blurred, slice-profile weighted shape
of unit integrated contrast (HU x mm3) and geometry ``g``, ``q`` the integrated
contrast (HU x mm3) and ``b`` the background (HU), and returns the estimate
with its data covariance ``s^2 (J^T J)^+`` (``s^2`` the residual variance) and
the directions the data leave undetermined; :func:`sandwich_variance` turns it
into the variance of a quantity under the correlated noise measured in the
background shell (:func:`noise_correlation`).

Sizes are fitted as logarithms with a weak log-normal prior (one residual per
size, weight ``noise SD / prior_log_sd`` per unit of log size): where the image
determines a size the prior is negligible, where it does not (a lesion much
smaller than the PSF, a length inside one slice's flat-topped profile) it keeps
the fit from wandering; the covariance is that of the data alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage, optimize, special

from pvcalc.methods import _model_fit_kernels as _k

__all__ = ["PROFILES", "SHAPES", "Problem", "autocorrelation", "bounds", "centre_start", "fit",
           "fit_linear", "gaussian_taps", "half_extents", "initial_guess", "lag_autocorrelation",
           "linear_amplitude", "make_problem", "noise_correlation", "prior_sizes",
           "roi_centroid", "sandwich_variance", "size_names", "volume_and_gradient"]

#: Shape name -> kernel code.
SHAPES = {"cylinder": _k.CYLINDER, "sphere": _k.SPHERE, "ellipsoid": _k.ELLIPSOID}
PROFILES = {"trapezoid": _k.TRAPEZOID, "gaussian": _k.GAUSSIAN, "box": _k.BOX}
#: Forward-difference step of the geometry derivatives (mm).
FD_STEP_MM = 1e-5
#: Smallest size parameter (mm) the fit may reach; reaching it means "unresolved".
MIN_SIZE_MM = 0.02
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def size_names(shape):
    """Names of the size parameters (after the centre z, y, x) of a shape."""
    return {"cylinder": ("radius", "half_length"), "sphere": ("radius",),
            "ellipsoid": ("semi_axis_z", "semi_axis_y", "semi_axis_x")}[shape]


def gaussian_taps(fwhm_mm, pixel_mm):
    """Taps of the Gaussian PSF integrated over each pixel, normalised to sum 1.

    ``t_j = Phi((j + 1/2) p / sigma) - Phi((j - 1/2) p / sigma)`` for
    ``|j| <= ceil(4 sigma / p)``: the discrete PSF of ``psf_fwhm_mm`` on a pixel
    grid as docs/scanner.md defines it (the simulator's blur). Applied to exact
    pixel-averaged occupancies, the model approximates the object convolved
    with the PSF and two pixel boxes (an edge-spread FWHM of
    ``sqrt(FWHM^2 + 2.3548^2 p^2 / 12)``), and conserves the total even when
    sigma is far below a pixel.
    """
    sigma = fwhm_mm / FWHM_PER_SIGMA
    r = int(math.ceil(4.0 * sigma / pixel_mm))
    j = np.arange(-r, r + 1, dtype=np.float64) * pixel_mm
    k = sigma * math.sqrt(2.0)
    t = 0.5 * (special.erf((j + 0.5 * pixel_mm) / k) - special.erf((j - 0.5 * pixel_mm) / k))
    return np.ascontiguousarray(t / t.sum())


@dataclass(frozen=True, eq=False)
class Problem:
    """Arrays of one lesion's fit (see :func:`make_problem`)."""

    shape: str
    code: int
    n_slabs: int
    zc: np.ndarray          # (K,) slice centres of the ROI box (mm)
    oy: float               # centre of the box's first pixel (mm)
    ox: float
    dy: float
    dx: float
    dz: float
    n_rows: int
    n_cols: int
    taps_y: np.ndarray
    taps_x: np.ndarray
    thickness: float
    kind: int
    edge: float
    rk: np.ndarray          # ROI voxels in the box (int64)
    rj: np.ndarray
    ri: np.ndarray
    y: np.ndarray           # their HU
    lo_mm: np.ndarray       # (3,) box extent (z, y, x), voxel edges (mm)
    hi_mm: np.ndarray

    @property
    def n(self):
        return self.y.size

    @property
    def voxel_mm3(self):
        return self.dz * self.dy * self.dx

    def template(self, g, free=None):
        """T(g) at the ROI voxels, or (n, 1 + len(free)) with its derivatives."""
        g = np.ascontiguousarray(g, dtype=np.float64)
        if free is None:
            out = np.empty(self.n)
            _k._render(self.code, g, self.n_slabs, self.zc, self.oy, self.ox, self.dy,
                       self.dx, self.n_rows, self.n_cols, self.taps_y, self.taps_x,
                       self.thickness, self.kind, self.edge, self.rk, self.rj, self.ri, out)
            return out
        free = np.ascontiguousarray(free, dtype=np.int64)
        return _k._template_and_derivatives(
            self.code, g, free, np.full(free.size, FD_STEP_MM), self.n_slabs, self.zc,
            self.oy, self.ox, self.dy, self.dx, self.n_rows, self.n_cols, self.taps_y,
            self.taps_x, self.thickness, self.kind, self.edge, self.rk, self.rj, self.ri)


def make_problem(region, shape, psf_fwhm_mm, thickness_mm, profile, edge, n_slabs):
    """The :class:`Problem` of ``region`` (its ROI's bounding box and voxels)."""
    box = region.roi_box
    dz, dy, dx = region.spacing_mm
    z0, y0, x0 = region.origin_mm
    roi = region.roi[box]
    rk, rj, ri = (np.ascontiguousarray(a, dtype=np.int64) for a in np.nonzero(roi))
    nk, nj, ni = roi.shape
    zc = z0 + (box[0].start + np.arange(nk, dtype=np.float64)) * dz
    oy = y0 + box[1].start * dy
    ox = x0 + box[2].start * dx
    first = np.array([zc[0], oy, ox])
    step = np.array([dz, dy, dx])
    last = first + (np.array(roi.shape) - 1) * step
    return Problem(
        shape=shape, code=SHAPES[shape], n_slabs=1 if shape == "cylinder" else int(n_slabs),
        zc=np.ascontiguousarray(zc), oy=float(oy), ox=float(ox), dy=float(dy), dx=float(dx),
        dz=float(dz), n_rows=nj, n_cols=ni, taps_y=gaussian_taps(psf_fwhm_mm, dy),
        taps_x=gaussian_taps(psf_fwhm_mm, dx), thickness=float(thickness_mm),
        kind=PROFILES[profile], edge=float(edge), rk=rk, rj=rj, ri=ri,
        y=np.ascontiguousarray(region.hu[box][roi], dtype=np.float64),
        lo_mm=first - 0.5 * step, hi_mm=last + 0.5 * step)


def volume_and_gradient(shape, g):
    """Volume (mm3) of geometry ``g`` and its gradient with respect to the size parameters."""
    if shape == "cylinder":
        r, h = g[3], g[4]
        return 2.0 * math.pi * r * r * h, np.array([4.0 * math.pi * r * h, 2.0 * math.pi * r * r])
    if shape == "sphere":
        r = g[3]
        return 4.0 / 3.0 * math.pi * r ** 3, np.array([4.0 * math.pi * r * r])
    a, b, c = g[3], g[4], g[5]
    k = 4.0 / 3.0 * math.pi
    return k * a * b * c, k * np.array([b * c, a * c, a * b])


def half_extents(shape, g):
    """Half extents (z, y, x) of geometry ``g`` (mm)."""
    if shape == "cylinder":
        return (g[4], g[3], g[3])
    if shape == "sphere":
        return (g[3], g[3], g[3])
    return (g[3], g[4], g[5])


def prior_sizes(shape, diameter_mm):
    """Size parameters of the prior shape: every diameter (and the cylinder's length)
    equal to ``diameter_mm``."""
    return np.full(len(size_names(shape)), 0.5 * diameter_mm)


def initial_guess(problem, region, background_hu, psf_fwhm_mm):
    """Start geometry (centre, sizes) from the image: the bright blob of the ROI.

    In-plane centre: the excess-weighted centroid of the ROI voxels above half
    the peak of the PSF-smoothed excess, in the component holding that peak.
    z: the centroid of the slices' excess inside that blob's in-plane footprint
    (grown by 2 PSF sigmas), which places it between slice centres. Size: the
    shape (equal diameters and length) with the volume of the voxels whose
    excess is at least half the blob's peak excess; the z extent at least half
    a slice.
    """
    box = region.roi_box
    roi = region.roi[box]
    e = np.where(roi, region.hu[box] - background_hu, 0.0)
    sig = psf_fwhm_mm / FWHM_PER_SIGMA
    smooth = ndimage.gaussian_filter(e, (0.0, sig / problem.dy, sig / problem.dx),
                                     mode="constant", truncate=3.0)
    smooth = np.where(roi, smooth, -np.inf)
    peak = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    blob = roi & (smooth >= 0.5 * smooth[peak])
    comp, _ = ndimage.label(blob, structure=np.ones((3, 3, 3), dtype=bool))
    blob = comp == comp[peak]
    w = np.where(blob, np.maximum(smooth, 0.0), 0.0)
    idx = np.nonzero(blob)
    if w[idx].sum() > 0:
        centre_idx = [float(np.sum(w[idx] * i) / w[idx].sum()) for i in idx]
    else:
        centre_idx = [float(i) for i in peak]
    centre = np.array([problem.zc[0] + centre_idx[0] * problem.dz,
                       problem.oy + centre_idx[1] * problem.dy,
                       problem.ox + centre_idx[2] * problem.dx])
    # z: centroid of the slices' excess inside the blob's in-plane footprint (grown by
    # the PSF), which resolves positions between slice centres
    foot = blob.any(axis=0)
    grow = max(1, int(round(2.0 * sig / min(problem.dy, problem.dx))))
    foot = ndimage.binary_dilation(foot, iterations=grow)
    per_slice = np.maximum(np.sum(np.where(roi & foot[None], e, 0.0), axis=(1, 2)), 0.0)
    if per_slice.sum() > 0:
        centre[0] = float(np.sum(problem.zc * per_slice) / per_slice.sum())
    e_peak = float(e[blob].max())
    bright = blob | (roi & (e >= 0.5 * e_peak))
    comp, _ = ndimage.label(bright, structure=np.ones((3, 3, 3), dtype=bool))
    bright = comp == comp[peak]
    vol = max(float(np.count_nonzero(bright & (e >= 0.5 * e_peak))), 1.0) * problem.voxel_mm3
    if problem.shape == "cylinder":
        r = (vol / (2.0 * math.pi)) ** (1.0 / 3.0)
    else:
        r = (3.0 * vol / (4.0 * math.pi)) ** (1.0 / 3.0)
    sizes = np.full(len(size_names(problem.shape)), r)
    # the z extent starts at half a slice or more: a shape inside the flat top of one
    # slice's profile (trapezoid, box) has a template that does not depend on its
    # length, a plateau the fit could not leave
    if problem.shape == "cylinder":
        sizes[1] = max(r, 0.5 * problem.thickness)
    elif problem.shape == "ellipsoid":
        sizes[0] = max(r, 0.5 * problem.thickness)
    return np.concatenate([centre, sizes])


def roi_centroid(problem):
    """Centroid (z, y, x) of the ROI's voxel centres (mm)."""
    return np.array([float(np.mean(problem.zc[problem.rk])),
                     problem.oy + float(np.mean(problem.rj)) * problem.dy,
                     problem.ox + float(np.mean(problem.ri)) * problem.dx])


def centre_start(problem, geometry, diameter_mm, background_hu, z_range):
    """Start of the detection fit: the prior shape at the ROI's in-plane centroid, at the z
    in ``z_range`` (five points, ends included) where the linear fit of its amplitude is
    largest."""
    g = np.array(geometry, dtype=np.float64)
    g[:3] = roi_centroid(problem)
    g[3:] = prior_sizes(problem.shape, diameter_mm)
    best, best_z = -np.inf, g[0]
    for z in np.linspace(z_range[0], z_range[1], 5):
        g[0] = z
        q, _ = linear_amplitude(problem, problem.template(g), background_hu)
        if q > best:
            best, best_z = q, z
    g[0] = best_z
    return g


def bounds(problem, n_sizes):
    """Plausible ranges (lo, hi) of the geometry: centre in the ROI's box, sizes in
    [MIN_SIZE_MM, half the box's largest extent] (for the start; the fit itself is
    unbounded)."""
    extent = float(np.max(problem.hi_mm - problem.lo_mm))
    lo = np.concatenate([problem.lo_mm, np.full(n_sizes, MIN_SIZE_MM)])
    hi = np.concatenate([problem.hi_mm, np.full(n_sizes, max(0.5 * extent, 2 * MIN_SIZE_MM))])
    return lo, hi


def linear_amplitude(problem, t, background_hu):
    """(q, b) of the linear least-squares fit of ``y = b + q t`` (b fixed if given)."""
    y = problem.y
    if background_hu is not None:
        tt = float(np.sum(t * t))
        return (float(np.sum(t * (y - background_hu))) / tt if tt > 0 else 0.0), \
            float(background_hu)
    n = t.size
    st, sy = float(np.sum(t)), float(np.sum(y))
    stt, sty = float(np.sum(t * t)), float(np.sum(t * y))
    det = n * stt - st * st
    if not det > 0:
        return 0.0, sy / n
    q = (n * sty - st * sy) / det
    return q, (sy - q * st) / n


class _Objective:
    """Residuals and Jacobian of the free parameters ``[centre, log(sizes), q, (b)]``.

    Sizes enter as logarithms (positive without bounds, for MINPACK's
    Levenberg-Marquardt); ``free`` indexes the geometry vector. ``prior``:
    (log of the prior sizes, weight in HU per unit of log size) of the weak
    log-normal prior, appended as one residual per free size.
    """

    def __init__(self, problem, geometry, free, fixed_background, prior):
        self.problem = problem
        self.geometry = np.array(geometry, dtype=np.float64)
        self.free = np.asarray(free, dtype=np.int64)
        self.log = self.free >= 3
        self.fixed_background = fixed_background
        self.prior_log = np.log(np.asarray(prior[0], dtype=np.float64))[self.free[self.log] - 3]
        self.prior_weight = float(prior[1])

    def pack(self, g, q, b):
        x = np.asarray(g, dtype=np.float64)[self.free].copy()
        x[self.log] = np.log(x[self.log])
        return np.concatenate([x, [q], [] if self.fixed_background is not None else [b]])

    def unpack(self, x):
        g = self.geometry.copy()
        nf = self.free.size
        v = x[:nf].copy()
        v[self.log] = np.exp(np.clip(v[self.log], -30.0, 30.0))
        g[self.free] = v
        q = x[nf]
        b = self.fixed_background if self.fixed_background is not None else x[nf + 1]
        return g, q, b

    def data_residuals(self, x):
        g, q, b = self.unpack(x)
        return b + q * self.problem.template(g) - self.problem.y

    def residuals(self, x):
        prior = self.prior_weight * (x[:self.free.size][self.log] - self.prior_log)
        return np.concatenate([self.data_residuals(x), prior])

    def data_jacobian(self, x):
        """d data residuals / d x; with respect to a size s through log s: s dT/ds."""
        g, q, b = self.unpack(x)
        d = self.problem.template(g, self.free)
        nf = self.free.size
        cols = nf + 1 + (self.fixed_background is None)
        jac = np.empty((self.problem.n, cols))
        chain = np.where(self.log, g[self.free], 1.0)
        jac[:, :nf] = d[:, 1:] * (q * chain)
        jac[:, nf] = d[:, 0]
        if self.fixed_background is None:
            jac[:, nf + 1] = 1.0
        return jac

    def jacobian(self, x):
        jac = self.data_jacobian(x)
        prior = np.zeros((int(self.log.sum()), jac.shape[1]))
        prior[np.arange(prior.shape[0]), np.flatnonzero(self.log)] = self.prior_weight
        return np.vstack([jac, prior])


#: MINPACK's ``info`` of ``lmder`` -> the status codes of ``scipy.optimize.least_squares``
#: (0: evaluation limit reached; 1: gtol, 2: ftol, 3: xtol, 4: ftol and xtol satisfied).
_MINPACK_STATUS = {0: -1, 1: 2, 2: 3, 3: 4, 4: 1, 5: 0}


def fit(problem, geometry, free, q0, b0, *, prior, fixed_background=None, max_nfev=200,
        tol=1e-6):
    """Least-squares fit of the free geometry, ``q`` and ``b`` from the start given.

    MINPACK's Levenberg-Marquardt (``scipy.optimize.leastsq``, the solver behind
    ``least_squares(method="lm")``, called directly: the same iterates without that
    wrapper's extra model and Jacobian evaluations; it needs no BLAS threads), with
    the step scaled by the Jacobian's column norms, sizes as logarithms and the weak
    size prior ``prior = (sizes, weight)`` (see :class:`_Objective`). With no free
    geometry the model is linear in ``q`` and ``b`` and :func:`fit_linear` solves it
    in closed form. The covariance is that of the data alone, ``s^2 (J^T J)^+`` of
    ``[g[free], q, (b)]`` in natural units (mm, HU x mm3, HU), with the directions
    ``null`` the data do not determine (see :func:`sandwich_variance`). Returns a
    dict: ``geometry``, ``q``, ``b``, ``cov``, ``null``, ``jac`` (data Jacobian,
    natural units), ``rms`` (HU, data residuals), ``s2``, ``rss``, ``nfev``,
    ``njev``, ``status`` (the codes of ``least_squares``: > 0 converged, 0 stopped
    at ``max_nfev``), ``free``, ``condition``.
    """
    if len(free) == 0:
        return fit_linear(problem, geometry, fixed_background)
    obj = _Objective(problem, geometry, free, fixed_background, prior)
    x0 = obj.pack(geometry, q0, b0)
    n_residuals = problem.n + int(obj.log.sum())
    if n_residuals < x0.size:
        raise ValueError(f"the ROI has {problem.n} voxel(s), too few for a model with "
                         f"{x0.size} parameters; use a larger ROI")
    x, _, info, _, ier = optimize.leastsq(
        obj.residuals, x0, Dfun=obj.jacobian, full_output=True, ftol=tol, xtol=tol,
        gtol=tol, maxfev=max_nfev, factor=100.0, diag=None)
    g, q, b = obj.unpack(x)
    jac = obj.data_jacobian(x)
    nf = obj.free.size
    jac[:, :nf] /= np.where(obj.log, g[obj.free], 1.0)      # d/ds instead of d/dlog s
    return _result(problem, g, q, b, jac, obj.data_residuals(x), obj.free,
                   int(info["nfev"]), int(info["njev"]), _MINPACK_STATUS[int(ier)])


def fit_linear(problem, geometry, fixed_background=None):
    """The fit of ``y = b + q T(g)`` at a fixed geometry ``g``: linear least squares.

    ``q`` and ``b`` (``b`` fixed if given) in closed form
    (:func:`linear_amplitude`); the same dict as :func:`fit`, with ``free`` empty,
    ``nfev = njev = 1`` (one evaluation of the template, which is also the Jacobian)
    and ``status = 1``.
    """
    g = np.array(geometry, dtype=np.float64)
    t = problem.template(g)
    q, b = linear_amplitude(problem, t, fixed_background)
    jac = t[:, None].copy() if fixed_background is not None else np.column_stack(
        [t, np.ones(problem.n)])
    return _result(problem, g, q, b, jac, b + q * t - problem.y, np.zeros(0, dtype=np.int64),
                   1, 1, 1)


def _result(problem, g, q, b, jac, r, free, nfev, njev, status):
    """The dict of :func:`fit` from the estimate, its data Jacobian and residuals."""
    rss = float(np.sum(r * r))
    s2 = rss / max(problem.n - jac.shape[1], 1)
    cov, null, cond = _covariance(_k._gram(np.ascontiguousarray(jac)), s2)
    return {"geometry": g, "q": float(q), "b": float(b), "cov": cov, "null": null,
            "jac": jac, "rms": math.sqrt(rss / problem.n), "s2": s2, "rss": rss,
            "nfev": nfev, "njev": njev, "status": status, "free": free, "condition": cond}


#: Eigenvalues of the column-scaled J^T J below this fraction of the largest are
#: directions the data do not determine (a condition number of J above 1e6).
NULL_EIGENVALUE = 1e-12
#: A linear function counts as determined when its (scaled) gradient is at least this
#: close to orthogonal to every undetermined direction.
ESTIMABLE_TOL = 1e-6


def _covariance(gram, s2):
    """(``s2 x gram^+``, (undetermined directions (p, m) of the column-scaled
    problem, the column scales (p,)), condition number of J)."""
    d = np.sqrt(np.maximum(np.diag(gram), 0.0))
    live = d > 0
    scale = np.where(live, d, 1.0)
    scaled = gram / np.outer(scale, scale)
    scaled[~live, :] = 0.0
    scaled[:, ~live] = 0.0
    w, v = np.linalg.eigh(scaled)
    top = w[-1] if w.size and w[-1] > 0 else 0.0
    good = w > NULL_EIGENVALUE * top
    cond = math.sqrt(top / w[0]) if w[0] > 0 else math.inf
    inv = (v[:, good] / w[good]) @ v[:, good].T
    cov = s2 * inv / np.outer(scale, scale)
    return cov, (v[:, ~good], scale), cond


#: Fewest shell voxel pairs for a lag of the noise autocorrelation to count.
MIN_PAIRS = 30


def noise_correlation(region, block_mm):
    """Autocorrelation rho(l) of the noise, from the background shell (centred lag array).

    Lags up to ``block_mm`` in-plane (in pixels, at least 1) and up to the slice
    profile's reach along z (``ceil(thickness / increment)`` slices, as
    :mod:`pvcalc.methods._noise`); the mean of ``r_u r_(u+l)`` over shell voxel
    pairs (masked autocorrelation by FFT, zero-padded: no wrap-around), divided by
    its lag-0 value; 0 for lags with fewer than ``MIN_PAIRS`` pairs. A shell
    without noise gives white noise (``rho = 1`` at lag 0 only).
    """
    shell = region.background
    dz, dy, dx = region.spacing_mm
    nz = shell.shape[0]
    lags = (min(nz - 1, max(0, math.ceil(region.slice_thickness_mm / dz - 1e-9))),
            max(1, round(block_mm / dy)), max(1, round(block_mm / dx)))
    out = np.zeros(tuple(2 * n + 1 for n in lags))
    centre = tuple(lags)
    out[centre] = 1.0
    if not shell.any() or not np.isfinite(region.background_hu):
        return out
    # the residuals' and the shell indicator's autocorrelations: sums of products and
    # counts of shell voxel pairs at each lag
    num, cnt = autocorrelation(np.stack([np.where(shell, region.hu - region.background_hu,
                                                  0.0), shell.astype(np.float64)]), lags)
    cnt = np.rint(cnt)
    cov = np.where(cnt >= MIN_PAIRS, num / np.maximum(cnt, 1.0), 0.0)
    if not cov[centre] > 0:
        return out
    return np.ascontiguousarray(cov / cov[centre])


def sandwich_variance(res, grads, problem, rho, noise_var):
    """Variances of ``grad . theta`` under correlated noise, one per row of ``grads``;
    inf for a quantity the data do not determine.

    The fit is ordinary least squares, so ``theta - theta_true ~ (J^T J)^+ J^T e``
    and ``grad . theta`` has influence weights ``w = J (J^T J)^+ grad`` on the
    ROI's voxels: ``Var = sigma^2 sum_(u, v) w_u w_v rho(v - u)`` with ``rho``
    the noise correlation (:func:`noise_correlation`) and ``sigma^2`` the larger
    of ``noise_var`` (the background shell's variance) and the fit's residual
    variance ``s^2``: with correlated noise ``s^2`` of a small ROI is biased low
    (the fitted background and amplitude absorb its low frequencies), and a
    model that does not fit makes ``s^2`` the larger. The double sum is
    ``sum_l rho(l) A_w(l)`` with ``A_w`` the autocorrelation of the weights on
    the ROI's box, by FFT (:func:`lag_autocorrelation`).

    Parameters
    ----------
    res : dict
        From :func:`fit` or :func:`fit_linear`.
    grads : array_like, shape (m, p)
        Gradients of the quantities with respect to ``[g[free], q, (b)]``.
    problem : Problem
    rho : numpy.ndarray
        Centred lag array of the noise correlation (:func:`noise_correlation`).
    noise_var : float
        The background shell's noise variance (HU^2), or NaN.

    Returns
    -------
    numpy.ndarray, shape (m,)
    """
    grads = np.atleast_2d(np.asarray(grads, dtype=np.float64))
    out = np.full(grads.shape[0], math.inf)
    null, scale = res["null"]
    determined = np.ones(grads.shape[0], dtype=bool)
    if null.shape[1]:
        g = grads / scale
        determined = np.max(np.abs(g @ null), axis=1) <= ESTIMABLE_TOL * np.linalg.norm(
            g, axis=1)
    s2 = res["s2"]
    if not s2 > 0:
        out[determined] = 0.0
        return out
    if not determined.any():
        return out
    sel = grads[determined]
    w = (res["jac"] @ (res["cov"] @ sel.T)).T / s2
    s2 = max(s2, noise_var) if np.isfinite(noise_var) else s2
    lags = tuple(n // 2 for n in rho.shape)
    auto = lag_autocorrelation(w, problem, lags)
    var = s2 * np.einsum("mzyx,zyx->m", auto, rho)
    fallback = np.einsum("mp,pq,mq->m", sel, res["cov"], sel)
    out[determined] = np.where(var > 0, var, fallback)
    return out


def lag_autocorrelation(weights, problem, lags):
    """``A(l) = sum_u w_u w_(u + l)`` of weights on the ROI's voxels, for the centred lags
    ``|l| <= lags`` (z, y, x), one array per row of ``weights`` (:func:`autocorrelation`
    of the weights placed on the ROI's box). Agrees with the direct double sum to
    rounding (test)."""
    weights = np.atleast_2d(weights)
    grid = np.zeros((weights.shape[0], problem.zc.size, problem.n_rows, problem.n_cols))
    grid[:, problem.rk, problem.rj, problem.ri] = weights
    return autocorrelation(grid, lags)


def autocorrelation(arrays, lags):
    """``A(l) = sum_u a_u a_(u + l)`` of each array of ``arrays`` (m, nz, ny, nx), for the
    centred lags ``|l| <= lags`` (z, y, x): shape (m, 2 lz + 1, 2 ly + 1, 2 lx + 1).

    By FFT, ``A = irfftn(|rfftn(a)|^2)``, on a grid zero-padded to at least ``n + lag``
    per axis (the circular correlation at lags up to ``lag`` then holds no wrapped-around
    pairs) and rounded up to lengths the FFT factorises quickly.
    """
    shape = [fft.next_fast_len(n + lag, real=True) for n, lag in zip(arrays.shape[1:], lags)]
    f = fft.rfftn(arrays, shape, axes=(1, 2, 3))
    auto = fft.irfftn(f.real ** 2 + f.imag ** 2, shape, axes=(1, 2, 3))
    return auto[(slice(None),) + np.ix_(*[np.r_[-n:n + 1] for n in lags])]
