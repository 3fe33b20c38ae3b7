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
SQUAREM-accelerated fit. Both run numba kernels (``_em_map``: one pass over
the voxels per EM step; ``_fit``: the whole SQUAREM loop with its
convergence test), which take the voxels sorted, so the result does not
depend on their order; ``tests/test_methods_em.py`` checks the EM step
against loops with the partial-volume density and the moments of ``a`` by
numerical quadrature.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pvcalc._numba_config import JIT

__all__ = ["em_step", "fit_mixture"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / _SQRT_2PI
_SQRT1_2 = math.sqrt(0.5)
#: Densities below this are treated as underflowed (voxels > ~37 SD from both
#: pure classes); such voxels take the s -> 0 limit of their posterior.
_TINY = 1e-290
#: exp() arguments below this give subnormal results, taken as 0 (their terms are
#: below 1e-290 x 2^-53 of any density that does not underflow).
_EXP_FLOOR = -708.0
_2_POW_M56 = 2.0 ** -56
#: Growth (and shrink) factor of SQUAREM's largest step length (Varadhan & Roland
#: 2008; the default ``mstep = 4`` of their SQUAREM package).
_SQUAREM_STEP_FACTOR = 4.0


# --------------------------------------------------------------------------- kernels
@numba.njit(**JIT)
def _tails(x, s):
    """Per voxel, what no step changes: z_b = x / s, exp(-z_b^2 / 2), Phi(z_b), Phi(-z_b)."""
    n = x.size
    z_b, e_b, cdf_b, sf_b = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        z = x[i] / s
        z_b[i] = z
        e_b[i] = _exp_half_sq(z)
        cdf_b[i] = 0.5 * math.erfc(-z * _SQRT1_2)
        sf_b[i] = 0.5 * math.erfc(z * _SQRT1_2)
    return z_b, e_b, cdf_b, sf_b


@numba.njit(**JIT)
def _exp_half_sq(z):
    """exp(-z^2 / 2), flushed to 0 where it would be subnormal (slow, and negligible)."""
    q = -0.5 * z * z
    return math.exp(q) if q > _EXP_FLOOR else 0.0


@numba.njit(**JIT)
def _voxel(x, z_b, e_b, cdf_b, sf_b, s, delta, kb, kc, kp, c1, c2):
    """One voxel's E-step: r_b, r_c, r_p, r_p E[a], r_p E[a^2] and f.

    ``kb = w_b / (s sqrt(2 pi))``, ``kc`` likewise, ``kp = w_p / Delta``, ``c1 =
    w_p / Delta^2``, ``c2 = w_p / Delta^3``. ``Z = Phi(z_b) - Phi(z_c)`` comes
    from the normal tails on the voxel's side of Delta / 2 (no cancellation);
    below Delta / 2, ``Phi(z_c)`` is skipped when the Mills-ratio bound
    ``Phi(z_c) < phi(z_c) / |z_c|`` puts it under 2^-56 of ``Phi(z_b)`` (it
    would not change Z). The moments are written without dividing by Z. A
    voxel whose density f underflows takes the s -> 0 limit: background below
    mu_b, calcium above mu_c, a = x / Delta in between.
    """
    z_c = z_b - delta / s
    e_c = _exp_half_sq(z_c)
    if x > 0.5 * delta:
        zz = 0.5 * math.erfc(z_c * _SQRT1_2) - sf_b
    elif e_c * _INV_SQRT_2PI < -z_c * cdf_b * _2_POW_M56:
        zz = cdf_b
    else:
        zz = cdf_b - 0.5 * math.erfc(-z_c * _SQRT1_2)
    p_b = kb * e_b
    p_c = kc * e_c
    p_p = kp * zz
    f = p_b + p_c + p_p
    if f > _TINY:
        inv = 1.0 / f
        sd = s * _INV_SQRT_2PI * (e_b - e_c)              # s (phi_b - phi_c)
        pa = c1 * (x * zz + sd) * inv
        pa2 = c2 * (x * x * zz + 2.0 * x * sd
                    + s * s * (zz + _INV_SQRT_2PI * (z_c * e_c - z_b * e_b))) * inv
        return p_b * inv, p_c * inv, p_p * inv, pa, pa2, f
    if x <= 0.0:
        return 1.0, 0.0, 0.0, 0.0, 0.0, _TINY
    if x >= delta:
        return 0.0, 1.0, 0.0, 0.0, 0.0, _TINY
    a = x / delta
    return 0.0, 0.0, 1.0, a, a * a, _TINY


@numba.njit(**JIT)
def _em_map(x, z_b, e_b, cdf_b, sf_b, s, delta, w_b, w_c, w_p, want_loglik):
    """The EM map: (new w_b, w_c, w_p, new Delta, log-likelihood at the parameters given).

    The new Delta is NaN when its denominator is not positive; the
    log-likelihood is 0 unless ``want_loglik`` (densities floored at _TINY).
    """
    kb, kc = w_b * _INV_SQRT_2PI / s, w_c * _INV_SQRT_2PI / s
    kp, c1, c2 = w_p / delta, w_p / (delta * delta), w_p / (delta * delta * delta)
    h = d = e = num = den = ll = 0.0
    for i in range(x.size):
        r_b, r_c, r_p, pa, pa2, f = _voxel(x[i], z_b[i], e_b[i], cdf_b[i], sf_b[i], s, delta,
                                           kb, kc, kp, c1, c2)
        h += r_b
        d += r_c
        e += r_p
        num += (r_c + pa) * x[i]
        den += r_c + pa2
        if want_loglik:
            ll += math.log(f)
    n = x.size
    new_delta = num / den if den > 0.0 else np.nan
    return h / n, d / n, e / n, new_delta, ll


@numba.njit(**JIT)
def _small_step(t0, t1, tol):
    """Every weight moved by <= tol and Delta by <= tol x Delta."""
    big = max(abs(t1[0] - t0[0]), abs(t1[1] - t0[1]), abs(t1[2] - t0[2]))
    return big <= tol and abs(t1[3] - t0[3]) <= tol * t0[3]


@numba.njit(**JIT)
def _fit(x, s, scale, max_iter, tol):
    """SQUAREM-accelerated EM on sorted ``x`` (see :func:`fit_mixture`).

    Returns ``(theta, n_iter, converged, valid)``: theta = (w_b, w_c, w_p,
    Delta / scale); valid False when Delta left (0, inf) or theta is not finite.
    """
    z_b, e_b, cdf_b, sf_b = _tails(x, s)
    theta = np.full(4, 1.0 / 3.0)
    theta[3] = 1.0
    theta1, theta2 = np.empty(4), np.empty(4)
    r, v, t = np.empty(4), np.empty(4), np.empty(4)
    n_iter = 0
    step_max = 1.0
    converged = False
    valid = True
    while n_iter < max_iter:
        # theta1 = F(theta)
        n_iter += 1
        w0, w1, w2, dl, ll0 = _em_map(x, z_b, e_b, cdf_b, sf_b, s, theta[3] * scale,
                                      theta[0], theta[1], theta[2], True)
        if not dl > 0.0:
            valid = False
            break
        theta1[0], theta1[1], theta1[2], theta1[3] = w0, w1, w2, dl / scale
        if _small_step(theta, theta1, tol):
            theta[:] = theta1
            converged = True
            break
        if n_iter >= max_iter:
            theta[:] = theta1
            break
        # theta2 = F(theta1)
        n_iter += 1
        w0, w1, w2, dl, _ = _em_map(x, z_b, e_b, cdf_b, sf_b, s, theta1[3] * scale,
                                    theta1[0], theta1[1], theta1[2], False)
        if not dl > 0.0:
            valid = False
            break
        theta2[0], theta2[1], theta2[2], theta2[3] = w0, w1, w2, dl / scale
        nr = nv = 0.0
        for k in range(4):
            r[k] = theta1[k] - theta[k]
            v[k] = theta2[k] - 2.0 * theta1[k] + theta[k]
            nr += r[k] * r[k]
            nv += v[k] * v[k]
        nv = math.sqrt(nv)
        if nv == 0.0 or n_iter >= max_iter:
            theta[:] = theta2
            continue
        alpha = min(max(math.sqrt(nr) / nv, 1.0), step_max)
        if alpha == step_max:
            step_max *= _SQUAREM_STEP_FACTOR
        if alpha == 1.0:
            theta[:] = theta2
            continue
        for k in range(4):
            t[k] = theta[k] + 2.0 * alpha * r[k] + alpha * alpha * v[k]
        if min(t[0], t[1], t[2]) >= 0.0 and t[3] > 0.0:
            total = t[0] + t[1] + t[2]
            for k in range(3):
                t[k] = t[k] / total
            # theta3 = F(t), kept when the log-likelihood did not decrease
            n_iter += 1
            w0, w1, w2, dl, llt = _em_map(x, z_b, e_b, cdf_b, sf_b, s, t[3] * scale,
                                          t[0], t[1], t[2], True)
            if dl > 0.0 and llt >= ll0:
                theta[0], theta[1], theta[2], theta[3] = w0, w1, w2, dl / scale
                if _small_step(t, theta, tol):
                    converged = True
                    break
                continue
        theta[:] = theta2
        step_max = max(1.0, step_max / _SQUAREM_STEP_FACTOR)
    for k in range(4):
        if not math.isfinite(theta[k]):
            valid = False
    return theta, n_iter, converged, valid


@numba.njit(**JIT)
def _contents(x, s, delta, w_b, w_c, w_p):
    """Per voxel: the content clip(r_c + r_p E[a], 0, 1) and P(calcium) = r_c."""
    z_b, e_b, cdf_b, sf_b = _tails(x, s)
    kb, kc = w_b * _INV_SQRT_2PI / s, w_c * _INV_SQRT_2PI / s
    kp, c1, c2 = w_p / delta, w_p / (delta * delta), w_p / (delta * delta * delta)
    n = x.size
    content, p_calcium = np.empty(n), np.empty(n)
    for i in range(n):
        _, r_c, _, pa, _, _ = _voxel(x[i], z_b[i], e_b[i], cdf_b[i], sf_b[i], s, delta,
                                     kb, kc, kp, c1, c2)
        content[i] = min(max(r_c + pa, 0.0), 1.0)
        p_calcium[i] = r_c
    return content, p_calcium


# --------------------------------------------------------------------------- wrappers
def _sorted(x):
    """float64 contiguous copy of ``x`` sorted, and the sorting permutation."""
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="stable")
    return np.ascontiguousarray(x[order]), order


def _unsort(values, order):
    out = np.empty_like(values)
    out[order] = values
    return out


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
    xs, order = _sorted(x)
    s, delta = float(s), float(delta)
    w_b, w_c, w_p = (float(v) for v in weights)
    *new_w, new_delta, loglik = _em_map(xs, *_tails(xs, s), s, delta, w_b, w_c, w_p, True)
    contents, _ = _contents(xs, s, delta, w_b, w_c, w_p)
    return np.array(new_w), float(new_delta), _unsort(contents, order), float(loglik)


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
    xs, order = _sorted(x)
    s, scale = float(s), float(delta0)
    theta, n_iter, converged, valid = _fit(xs, s, scale, int(max_iter), float(tol))
    n_iter = int(n_iter)
    if not valid:
        nan = np.full(xs.size, np.nan)
        return {"delta": float("nan"), "weights": np.full(3, np.nan), "contents": nan,
                "p_calcium": nan, "n_pure": float("nan"), "loglik": float("nan"),
                "n_iter": n_iter, "converged": False}
    delta = float(theta[3]) * scale
    w_b, w_c, w_p = (float(v) for v in theta[:3])
    contents, p_calcium = _contents(xs, s, delta, w_b, w_c, w_p)
    loglik = float(_em_map(xs, *_tails(xs, s), s, delta, w_b, w_c, w_p, True)[4])
    return {"delta": delta, "weights": np.array([w_b, w_c, w_p]),
            "contents": _unsort(contents, order), "p_calcium": _unsort(p_calcium, order),
            "n_pure": float(p_calcium.sum()), "loglik": loglik,
            "n_iter": n_iter, "converged": bool(converged)}
