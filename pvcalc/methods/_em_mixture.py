"""The background / calcium / partial-volume mixture of ``em_partial_content`` and its EM fit.

With ``x = I - mu_b`` a voxel's excess over the local background, ``Delta =
mu_c - mu_b`` the calcium contrast and ``s`` the noise SD, the pure-class plus
uniform-mixing partial-volume model of Santago & Gage (IEEE TMI 1993) is

- background: ``x ~ N(0, s^2)``, weight ``w_b``;
- calcium: ``x ~ N(Delta, s^2)``, weight ``w_c``;
- partial volume: ``x = a Delta + noise``, ``a ~ Uniform(0, 1)``, weight
  ``w_p``, density ``g(x) = [Phi(x / s) - Phi((x - Delta) / s)] / Delta``.

A voxel's calcium content is its posterior expected calcium fraction,
``c = P(calcium | x) + P(PV | x) E[a | x, PV]``. :func:`em_step` is one EM
iteration for the weights and ``Delta`` (``s`` fixed), :func:`fit_mixture` the
SQUAREM-accelerated fit. Everything is vectorised over voxels with numpy and
``scipy.special.ndtr``; the voxels are sorted once, so the result does not
depend on their order.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = ["em_step", "fit_mixture"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / _SQRT_2PI
#: Densities below this are treated as underflowed (voxels > ~37 SD from both
#: pure classes); such voxels take the s -> 0 limit of their posterior.
_TINY = 1e-290
#: Growth (and shrink) factor of SQUAREM's largest step length (Varadhan & Roland
#: 2008; the default ``mstep = 4`` of their SQUAREM package).
_SQUAREM_STEP_FACTOR = 4.0


def _posterior(x, s, delta, weights):
    """Per-voxel E-step: r_b, r_c, r_p, r_p E[a], r_p E[a^2] and the densities f."""
    w_b, w_c, w_p = weights
    z_b = x / s
    z_c = (x - delta) / s
    phi_b = np.exp(-0.5 * z_b * z_b) / _SQRT_2PI
    phi_c = np.exp(-0.5 * z_c * z_c) / _SQRT_2PI
    zz = _phi_difference(x, z_b, z_c, delta)
    p_b = w_b * phi_b / s
    p_c = w_c * phi_c / s
    p_p = w_p * zz / delta
    f = p_b + p_c + p_p
    d = phi_b - phi_c
    ok = f > _TINY
    inv = np.where(ok, 1.0 / np.where(ok, f, 1.0), 0.0)
    r_b, r_c, r_p = p_b * inv, p_c * inv, p_p * inv
    # r_p E[a] and r_p E[a^2] written without dividing by Z (truncated-normal moments)
    pa = w_p * (x * zz + s * d) / delta ** 2 * inv
    pa2 = w_p * (x * x * zz + 2.0 * x * s * d
                 + s * s * (zz + z_c * phi_c - z_b * phi_b)) / delta ** 3 * inv
    if not ok.all():
        # s -> 0 limit of the posterior: pure background below mu_b, pure calcium
        # above mu_c, partial volume with a = x / Delta in between
        bad = ~ok
        a = np.clip(x[bad] / delta, 0.0, 1.0)
        below, above = x[bad] <= 0.0, x[bad] >= delta
        inside = ~below & ~above
        r_b[bad], r_c[bad], r_p[bad] = below, above, inside
        pa[bad] = np.where(inside, a, 0.0)
        pa2[bad] = np.where(inside, a * a, 0.0)
    return r_b, r_c, r_p, pa, pa2, f


def _phi_difference(x, z_b, z_c, delta):
    """Z = Phi(z_b) - Phi(z_c), from the normal tails on each voxel's side (no cancellation)."""
    upper = x > 0.5 * delta
    return np.where(upper, special.ndtr(-z_c) - special.ndtr(-z_b),
                    special.ndtr(z_b) - special.ndtr(z_c))


class _Mixture:
    """The voxels of one fit, sorted, with everything that does not depend on Delta.

    :meth:`step` is the EM map. It gets every sum of the M-step from one
    product of a (8, N) matrix of per-voxel terms with ``1 / f`` (no
    per-voxel responsibility arrays); when a voxel's density underflows it
    goes through :func:`_posterior` instead. ``e = exp(-z^2 / 2)`` below, so
    that ``phi = e / sqrt(2 pi)``.
    """

    def __init__(self, x, s):
        self.order = np.argsort(x, kind="stable")
        self.x = x[self.order]
        self.s = float(s)
        self.n = self.x.size
        z_b = self.x / self.s
        self.z_b = z_b
        self.cdf_b = special.ndtr(z_b)
        self.sf_b = special.ndtr(-z_b)
        self.x2 = self.x * self.x
        # rows: e_b, e_c, Z, x e_b, z_b e_b, x e_c, x^2 Z, z_c e_c (0, 3, 4 fixed)
        self.rows = np.empty((8, self.n))
        np.exp(-0.5 * z_b * z_b, out=self.rows[0])
        np.multiply(self.x, self.rows[0], out=self.rows[3])
        np.multiply(z_b, self.rows[0], out=self.rows[4])
        self.z_c = np.empty(self.n)

    def step(self, delta, weights, loglik=False):
        """(new weights, new Delta, log-likelihood at (Delta, weights) or None)."""
        x, s, rows, z_c = self.x, self.s, self.rows, self.z_c
        w_b, w_c, w_p = (float(v) for v in weights)
        np.subtract(self.z_b, delta / s, out=z_c)
        e_c, zz = rows[1], rows[2]
        np.multiply(z_c, z_c, out=e_c)
        np.multiply(e_c, -0.5, out=e_c)
        np.exp(e_c, out=e_c)
        # Z = Phi(z_b) - Phi(z_c) from the normal tails on each voxel's side
        k = int(np.searchsorted(x, 0.5 * delta, side="right"))   # x[k:] > Delta / 2
        np.subtract(self.cdf_b[:k], special.ndtr(z_c[:k]), out=zz[:k])
        np.subtract(special.ndtr(np.negative(z_c[k:])), self.sf_b[k:], out=zz[k:])
        kb, kc, kp = w_b * _INV_SQRT_2PI / s, w_c * _INV_SQRT_2PI / s, w_p / delta
        f = np.dot((kb, kc, kp), rows[:3])
        if not f.min() > _TINY:
            return self._step_slow(delta, weights, loglik)
        np.multiply(x, e_c, out=rows[5])
        np.multiply(self.x2, zz, out=rows[6])
        np.multiply(z_c, e_c, out=rows[7])
        h, d, e, c, g_b, a, b, g_c = rows @ (1.0 / f)
        sc = s * _INV_SQRT_2PI
        num = kc * a + (w_p / delta ** 2) * (b + sc * (c - a))
        den = kc * d + (w_p / delta ** 3) * (b + 2.0 * sc * (c - a) + s * s * e
                                             + s * sc * (g_c - g_b))
        n = self.n
        new_w = (float(kb * h) / n, float(kc * d) / n, float(kp * e) / n)
        new_delta = float(num / den) if den > 0 else float("nan")
        return new_w, new_delta, (float(np.log(f).sum()) if loglik else None)

    def _step_slow(self, delta, weights, loglik):
        r_b, r_c, r_p, pa, pa2, f = _posterior(self.x, self.s, delta, weights)
        new_w = tuple(float(r.sum()) / self.n for r in (r_b, r_c, r_p))
        den = float(np.sum(r_c + pa2))
        new_delta = float(np.dot(r_c + pa, self.x)) / den if den > 0 else float("nan")
        ll = float(np.sum(np.log(np.maximum(f, _TINY)))) if loglik else None
        return new_w, new_delta, ll

    def contents(self, delta, weights):
        """Contents r_c + r_p E[a] and P(calcium), in the caller's voxel order."""
        _, r_c, _, pa, _, _ = _posterior(self.x, self.s, delta, weights)
        out = np.empty((2, self.n))
        out[0, self.order] = np.clip(r_c + pa, 0.0, 1.0)
        out[1, self.order] = r_c
        return out[0], out[1]


def em_step(x, s, delta, weights):
    """One EM iteration of the mixture (module notes) on excesses ``x`` (HU).

    Parameters
    ----------
    x : (N,) ndarray of float64
        Voxel HU minus the background mean mu_b.
    s : float
        Noise SD (HU), > 0.
    delta : float
        Calcium contrast mu_c - mu_b (HU), > 0.
    weights : (float, float, float)
        Class weights (background, calcium, partial volume), summing to 1.

    Returns
    -------
    weights : (3,) ndarray
        Updated weights, the mean responsibilities.
    delta : float
        Updated contrast, ``sum_i (r_c + r_p E[a]) x_i / sum_i (r_c + r_p E[a^2])``.
    contents : (N,) ndarray
        ``r_c + r_p E[a | x, PV]`` at the parameters given (before the update).
    loglik : float
        Log-likelihood of ``x`` at the parameters given.

    Notes
    -----
    The E-step uses the moments of the truncated normal posterior of ``a``,
    ``m = x / Delta``, ``tau = s / Delta``, ``alpha = -x / s``, ``beta = (Delta
    - x) / s``, ``Z = Phi(beta) - Phi(alpha)``:
    ``E[a] = m + tau (phi(alpha) - phi(beta)) / Z`` and
    ``E[a^2] = m^2 + 2 m tau (phi(alpha) - phi(beta)) / Z
    + tau^2 (1 + (alpha phi(alpha) - beta phi(beta)) / Z)``.
    The M-step maximises the expected complete-data log-likelihood (class and
    ``a`` latent): the weights are the mean responsibilities and ``Delta`` the
    root of ``sum_i r_c (x_i - Delta) + r_p (E[a] x_i - E[a^2] Delta) = 0``.

    References
    ----------
    Santago P, Gage HD. Quantification of MR brain images by mixture density and
    partial volume modeling. IEEE Trans Med Imaging 1993;12(3):566-574.

    Examples
    --------
    >>> import numpy as np
    >>> w, d, c, _ = em_step(np.array([0.0, 200.0, 400.0]), 1.0, 400.0, (1/3, 1/3, 1/3))
    >>> np.round(c, 3).tolist(), round(d, 3)
    ([0.0, 0.5, 1.0], 400.0)
    """
    mix = _Mixture(np.asarray(x, dtype=np.float64), s)
    new_w, new_delta, loglik = mix.step(float(delta), weights, loglik=True)
    return np.array(new_w), new_delta, mix.contents(float(delta), weights)[0], loglik


def fit_mixture(x, s, delta0, *, max_iter=500, tol=1e-6):
    """Fit the mixture by EM (SQUAREM-accelerated) from ``delta0`` and equal weights.

    Parameters
    ----------
    x : (N,) ndarray of float64
        Voxel HU minus mu_b.
    s : float
        Noise SD (HU), > 0.
    delta0 : float
        Initial contrast (HU), > 0 (the lesion's peak excess).
    max_iter : int
        Most evaluations of the EM map.
    tol : float
        Converged when an EM step changes no weight by more than ``tol`` and
        ``Delta`` by no more than ``tol x Delta``.

    Returns
    -------
    dict
        ``delta``, ``weights`` (background, calcium, PV), ``contents`` and
        ``p_calcium`` (per voxel, at the final parameters), ``n_pure`` (sum of
        P(calcium | x)), ``loglik``, ``n_iter`` (EM map evaluations),
        ``converged``; ``delta`` is NaN when the contrast left (0, inf).

    Notes
    -----
    SQUAREM (Varadhan & Roland 2008, scheme S3) extrapolates two EM steps,
    ``theta' = theta_0 + 2 alpha r + alpha^2 v`` with ``r = F(theta_0) -
    theta_0``, ``v = F(F(theta_0)) - 2 F(theta_0) + theta_0`` and ``alpha =
    |r| / |v|`` clipped to [1, step_max] (step_max starts at 1 and grows or
    shrinks by 4, as in their package), then takes one EM step from theta'
    (theta = the weights and Delta / delta0). The extrapolation is kept only
    when it stays valid (weights >= 0, Delta > 0) and its log-likelihood is at
    least that of theta_0, so the log-likelihood never decreases; otherwise the
    two plain EM steps stand. EM alone creeps for hundreds of steps when a
    small pure-calcium class trades off against the contrast.

    References
    ----------
    Varadhan R, Roland C. Simple and globally convergent methods for accelerating
    the convergence of any EM algorithm. Scand J Stat 2008;35(2):335-353.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros(50), np.linspace(10.0, 390.0, 20), np.full(10, 400.0)]
    >>> fit = fit_mixture(x, 1.0, 400.0)
    >>> round(fit["delta"], 6), fit["converged"], round(float(fit["contents"].sum()), 3)
    (400.0, True, 20.0)
    """
    mix = _Mixture(np.asarray(x, dtype=np.float64), s)
    scale = float(delta0)
    theta = (1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 1.0)   # weights, Delta / delta0
    converged = False
    n_iter = 0
    step_max = 1.0

    def em(th, loglik=False):
        nonlocal n_iter
        n_iter += 1
        w, d, ll = mix.step(th[3] * scale, th[:3], loglik)
        return (w + (d / scale,)) if d > 0 else None, ll   # None: Delta left (0, inf)

    while n_iter < max_iter:
        theta1, ll0 = em(theta, True)
        if theta1 is None:
            theta = None
            break
        if _small_step(theta, theta1, tol):
            theta, converged = theta1, True
            break
        if n_iter >= max_iter:
            theta = theta1
            break
        theta2, _ = em(theta1)
        if theta2 is None:
            theta = None
            break
        r = [b - a for a, b in zip(theta, theta1)]
        v = [c - 2.0 * b + a for a, b, c in zip(theta, theta1, theta2)]
        theta0, theta = theta, theta2              # the plain EM result, if nothing better
        nv = math.sqrt(sum(u * u for u in v))
        if nv == 0 or n_iter >= max_iter:
            continue
        alpha = min(max(math.sqrt(sum(u * u for u in r)) / nv, 1.0), step_max)
        if alpha == step_max:
            step_max *= _SQUAREM_STEP_FACTOR
        if alpha == 1.0:
            continue
        t = [a + 2.0 * alpha * u + alpha * alpha * w for a, u, w in zip(theta0, r, v)]
        if min(t[:3]) >= 0 and t[3] > 0:
            total = t[0] + t[1] + t[2]
            t = (t[0] / total, t[1] / total, t[2] / total, t[3])
            theta3, llt = em(t, True)
            if theta3 is not None and llt >= ll0:
                theta = theta3
                if _small_step(t, theta3, tol):
                    converged = True
                    break
                continue
        step_max = max(1.0, step_max / _SQUAREM_STEP_FACTOR)
    if theta is None or not all(math.isfinite(v) for v in theta):
        nan = np.full(mix.n, np.nan)
        return {"delta": float("nan"), "weights": np.full(3, np.nan), "contents": nan,
                "p_calcium": nan, "n_pure": float("nan"), "loglik": float("nan"),
                "n_iter": n_iter, "converged": False}
    delta, weights = theta[3] * scale, theta[:3]
    contents, p_calcium = mix.contents(delta, weights)
    _, _, loglik = mix.step(delta, weights, loglik=True)
    return {"delta": delta, "weights": np.array(weights), "contents": contents,
            "p_calcium": p_calcium, "n_pure": float(p_calcium.sum()), "loglik": loglik,
            "n_iter": n_iter, "converged": converged}


def _small_step(theta0, theta1, tol):
    """Every weight moved by <= tol and Delta by <= tol x Delta."""
    return (max(abs(b - a) for a, b in zip(theta0[:3], theta1[:3])) <= tol
            and abs(theta1[3] - theta0[3]) <= tol * theta0[3])
