"""Lesion motion and acquisition timing.

Times are in seconds from an R wave (t = 0); displacements are (z, y, x) mm.

Cardiac motion model (:class:`CardiacMotion`)
---------------------------------------------
Coronary arteries move fastest in systole and early diastole and rest twice
per cycle: at end-systole (about 30-50% of the R-R interval) and in
mid-diastole / diastasis (about 65-85% at low heart rates), the windows ECG
gating aims at (Achenbach et al. 2000; Husmann et al. 2007). The lesion moves
along a fixed ``direction`` with signed speed v(phase):

* rest (v = 0) during ``rest_phase`` (end-systole, default 0.30-0.50) and
  ``diastolic_rest_phase`` (default 0.65-0.85);
* a forward sin^2 lobe from the end of diastolic rest, through the R wave, to
  the start of end-systolic rest (atrial contraction + systole, default 0.85 ->
  1.30, i.e. 45% of R-R);
* a return sin^2 lobe between the two rests (rapid early diastolic filling,
  default 0.50 -> 0.65).

The two lobes have equal area, so the displacement is periodic. The faster
(shorter) lobe reaches ``peak_velocity_mm_s`` (published coronary peaks:
22-109 mm/s, right coronary fastest; Achenbach 2000, Vembar 2003); the other
peaks lower. The lesion sits at its nominal position (displacement 0) during
diastolic rest and is displaced by ``peak * L_short * RR / 2`` during
end-systolic rest (about 3.8 mm for 50 mm/s at 60 bpm). Phase windows are
fixed fractions of R-R at every heart rate (a simplification: diastasis
shortens at high rates).

Who owns the heart rate
-----------------------
The heart rate is a property of the scanned object, not of the scanner: the
``heart_rate_bpm`` of a :class:`CardiacMotion` is the patient's heart rate
during the scan. It sets both the period of the motion and the acquisition
timing: :func:`phantoms.simulate` converts the scan's cardiac phase (the
protocol's ``gating_phase`` when gated, a random phase otherwise) into time
with the R-R interval of the phantom's heart
(:attr:`phantoms.phantom.Phantom.heart_rate_bpm`), so a gated scan samples
``gating_phase`` of the lesion's own cycle at every heart rate. A phantom has
one heart: all its :class:`CardiacMotion` share one heart rate. A phantom
without cardiac motion has no R wave; its clock runs at
:data:`NOMINAL_HEART_RATE_BPM` (R-R = 1 s).

References
----------
.. [1] Achenbach S, Ropers D, Holle J, et al. In-plane coronary arterial motion
   velocity: measurement with electron-beam CT. Radiology 2000;216:457-463.
   doi:10.1148/radiology.216.2.r00au19457
.. [2] Husmann L, Leschka S, Desbiolles L, et al. Coronary artery motion and
   cardiac phases: dependency on heart rate - implications for CT image
   reconstruction. Radiology 2007;245:567-576. doi:10.1148/radiol.2451061791
.. [3] Vembar M, Garcia MJ, Heuscher DJ, et al. A dynamic approach to
   identifying desired physiological phases for cardiac imaging using
   multislice spiral CT. Med Phys 2003;30:1683-1693. doi:10.1118/1.1582812
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ._validate import (
    finite_real,
    nonnegative_real,
    positive_int,
    real_in_range,
    unit_vector,
    vector,
)

__all__ = ["HEART_RATE_RANGE_BPM", "MOTIONS", "NOMINAL_HEART_RATE_BPM", "CardiacMotion",
           "ConstantVelocity", "Static", "acquisition_times"]

#: Accepted heart rates (beats/min), everywhere a heart rate is given.
HEART_RATE_RANGE_BPM = (30.0, 200.0)
#: Clock of a scan whose phantom has no cardiac motion (no R wave): R-R = 1 s.
NOMINAL_HEART_RATE_BPM = 60.0


def check_heart_rate(value, name="heart_rate_bpm"):
    """``value`` as a float heart rate in :data:`HEART_RATE_RANGE_BPM` (TypeError/ValueError)."""
    return real_in_range(name, value, *HEART_RATE_RANGE_BPM, unit="beats/min")


def _times(t_s):
    try:
        t = np.asarray(t_s, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"t_s must be times in seconds, got {t_s!r}") from None
    return t


@dataclasses.dataclass(frozen=True)
class Static:
    """No motion.

    Examples
    --------
    >>> Static().displacement_mm([0.0, 0.5]).shape
    (2, 3)
    """

    kind = "static"

    @property
    def moves(self):
        return False

    def displacement_mm(self, t_s):
        """Displacement (..., 3) in mm (z, y, x) at times ``t_s`` (s): zeros."""
        t = _times(t_s)
        return np.zeros(t.shape + (3,))


@dataclasses.dataclass(frozen=True)
class ConstantVelocity:
    """Uniform straight-line motion (the motion phantom's robot arm).

    Parameters
    ----------
    velocity_mm_s : 3 floats
        Velocity (vz, vy, vx) in mm/s.
    t_ref_s : float, optional
        Time at which the lesion is at its nominal position. ``None`` (default)
        lets :func:`phantoms.simulate` use the centre of the acquisition, so the
        smear is centred on the nominal position.

    Examples
    --------
    >>> ConstantVelocity((0, 0, 50.0), t_ref_s=0.0).displacement_mm(0.1)
    array([0., 0., 5.])
    """

    velocity_mm_s: tuple
    t_ref_s: float = None
    kind = "constant_velocity"

    def __post_init__(self):
        object.__setattr__(self, "velocity_mm_s", vector(
            "velocity_mm_s", self.velocity_mm_s, axes=("vz", "vy", "vx"), unit="mm/s"))
        if self.t_ref_s is not None:
            object.__setattr__(self, "t_ref_s", finite_real(
                "t_ref_s", self.t_ref_s, unit="s",
                hint="or None to centre the motion on the acquisition"))

    @property
    def moves(self):
        return any(v != 0 for v in self.velocity_mm_s)

    @property
    def speed_mm_s(self):
        return float(np.linalg.norm(self.velocity_mm_s))

    def displacement_mm(self, t_s):
        """Displacement (..., 3) in mm at times ``t_s``: v (t - t_ref)."""
        t = _times(t_s) - (self.t_ref_s or 0.0)
        return t[..., None] * np.asarray(self.velocity_mm_s)


def _lobe_integral(s, length):
    """Integral of sin^2(pi u / length) from 0 to s (0 <= s <= length)."""
    return 0.5 * s - length / (4.0 * math.pi) * np.sin(2.0 * math.pi * s / length)


@dataclasses.dataclass(frozen=True)
class CardiacMotion:
    """Periodic coronary-like motion along a direction (see module docstring).

    Parameters
    ----------
    direction : 3 floats
        Direction of motion (z, y, x); normalised.
    peak_velocity_mm_s : float
        Largest speed over the cycle in mm/s (coronary arteries: 22-109).
    heart_rate_bpm : float, optional
        The patient's heart rate during the scan, 30-200 bpm, default 60
        (R-R = 1 s). It sets the period of the motion and the scan's timing: a
        gated scan samples the protocol's ``gating_phase`` of this cycle.
    rest_phase : (float, float), optional
        End-systolic rest window as fractions of R-R, default (0.3, 0.5).
    diastolic_rest_phase : (float, float), optional
        Mid-diastolic rest window, default (0.65, 0.85).

    Examples
    --------
    >>> m = CardiacMotion((0, 0, 1), 50.0)
    >>> float(m.displacement_mm(0.75)[2])      # diastolic rest: nominal position
    0.0
    >>> round(float(m.velocity_mm_s(0.575)[2]), 1)   # middle of the return lobe
    -50.0
    """

    direction: tuple
    peak_velocity_mm_s: float
    heart_rate_bpm: float = 60.0
    rest_phase: tuple = (0.3, 0.5)
    diastolic_rest_phase: tuple = (0.65, 0.85)
    kind = "cardiac"

    def __post_init__(self):
        object.__setattr__(self, "direction", unit_vector("direction", self.direction))
        object.__setattr__(self, "peak_velocity_mm_s", nonnegative_real(
            "peak_velocity_mm_s", self.peak_velocity_mm_s, unit="mm/s"))
        object.__setattr__(self, "heart_rate_bpm", check_heart_rate(self.heart_rate_bpm))
        r0, r1 = (float(a) for a in self.rest_phase)
        d0, d1 = (float(a) for a in self.diastolic_rest_phase)
        if not (0.0 <= r0 < r1 < d0 < d1 <= 1.0):
            raise ValueError(
                "rest_phase and diastolic_rest_phase must be ordered windows within the "
                f"R-R interval, 0 <= r0 < r1 < d0 < d1 <= 1; got rest_phase={self.rest_phase!r}, "
                f"diastolic_rest_phase={self.diastolic_rest_phase!r}")
        object.__setattr__(self, "rest_phase", (r0, r1))
        object.__setattr__(self, "diastolic_rest_phase", (d0, d1))

    @property
    def moves(self):
        return self.peak_velocity_mm_s > 0

    @property
    def rr_s(self):
        return 60.0 / self.heart_rate_bpm

    def _lobes(self):
        r0, r1 = self.rest_phase
        d0, d1 = self.diastolic_rest_phase
        l_fwd = 1.0 - d1 + r0          # d1 -> 1 + r0
        l_ret = d0 - r1                # r1 -> d0
        # equal areas: a_fwd l_fwd = a_ret l_ret, max(a) = peak
        if l_fwd >= l_ret:
            a_ret = self.peak_velocity_mm_s
            a_fwd = a_ret * l_ret / l_fwd
        else:
            a_fwd = self.peak_velocity_mm_s
            a_ret = a_fwd * l_fwd / l_ret
        return l_fwd, l_ret, a_fwd, a_ret

    def _speed_and_position(self, t_s):
        rr = self.rr_s
        ph = np.mod(_times(t_s) / rr, 1.0)
        r0, r1 = self.rest_phase
        _, d1 = self.diastolic_rest_phase
        l_fwd, l_ret, a_fwd, a_ret = self._lobes()
        u = np.mod(ph - d1, 1.0)               # phase since end of diastolic rest
        amp = a_fwd * l_fwd * rr / 2.0          # displacement during end-systolic rest
        speed = np.zeros_like(ph)
        pos = np.zeros_like(ph)
        fwd = u < l_fwd
        speed = np.where(fwd, a_fwd * np.sin(np.pi * u / l_fwd) ** 2, speed)
        pos = np.where(fwd, a_fwd * rr * _lobe_integral(np.minimum(u, l_fwd), l_fwd), pos)
        rest = (u >= l_fwd) & (u < l_fwd + (r1 - r0))
        pos = np.where(rest, amp, pos)
        w = u - l_fwd - (r1 - r0)
        ret = (w >= 0) & (w < l_ret)
        wc = np.clip(w, 0.0, l_ret)
        speed = np.where(ret, -a_ret * np.sin(np.pi * wc / l_ret) ** 2, speed)
        pos = np.where(ret, amp - a_ret * rr * _lobe_integral(wc, l_ret), pos)
        return speed, pos

    def velocity_mm_s(self, t_s):
        """Velocity (..., 3) in mm/s at times ``t_s``."""
        s, _ = self._speed_and_position(t_s)
        return s[..., None] * np.asarray(self.direction)

    def displacement_mm(self, t_s):
        """Displacement (..., 3) in mm at times ``t_s`` (0 during diastolic rest)."""
        _, p = self._speed_and_position(t_s)
        return p[..., None] * np.asarray(self.direction)


MOTIONS = (Static, ConstantVelocity, CardiacMotion)


def acquisition_times(z_mm, *, temporal_resolution_ms, heart_rate_bpm, n_samples=16,
                      gated=True, gating_phase=0.7, start_phase=0.0, table_speed_mm_s=None):
    """Time samples of each slice's acquisition window.

    Parameters
    ----------
    z_mm : (K,) array_like
        Slice centres in mm (acquisition order = increasing z).
    temporal_resolution_ms : float
        Width of each slice's acquisition window in ms.
    heart_rate_bpm : float
        Heart rate of the scanned object (30-200 bpm); R-R = 60 / heart_rate_bpm
        seconds. :func:`phantoms.simulate` passes the phantom's
        (:attr:`phantoms.phantom.Phantom.heart_rate_bpm`, or
        :data:`NOMINAL_HEART_RATE_BPM` for a phantom without cardiac motion).
    n_samples : int, optional
        Time samples per window (midpoints of ``n_samples`` equal sub-windows).
    gated : bool, optional
        ECG-gated: every slice is seen at ``gating_phase`` of its heartbeat (the
        same cardiac state). Non-gated: the first slice starts at
        ``start_phase`` and, in helical mode, slice k is seen
        ``(z_k - z_0) / table_speed_mm_s`` seconds later.
    gating_phase, start_phase : float
        Fractions of the R-R interval in [0, 1).
    table_speed_mm_s : float or None
        Table speed of a helical scan (pitch x collimation / rotation time).
        ``None``: all slices share one window (axial / single-shot).

    Returns
    -------
    times_s : (K, n_samples) ndarray
        Sample times in s from an R wave.

    Notes
    -----
    Window centre of slice k: ``t_k = phase x RR`` (gated: ``phase =
    gating_phase``; non-gated: ``phase = start_phase``, plus ``(z_k - z_0) /
    table_speed_mm_s`` in helical mode), with ``RR = 60 / heart_rate_bpm``;
    samples at ``t_k + ((m + 0.5) / n_samples - 0.5) x temporal_resolution``,
    m = 0 .. n_samples - 1. The window has a fixed length in ms, so in phase
    terms it spans ``temporal_resolution / RR``, wider at higher heart rates.

    Examples
    --------
    >>> t = acquisition_times([0.0, 3.0], temporal_resolution_ms=100, heart_rate_bpm=60,
    ...                       n_samples=2, gated=False, start_phase=0.5, table_speed_mm_s=30.0)
    >>> t.round(3).tolist()
    [[0.475, 0.525], [0.575, 0.625]]
    >>> acquisition_times([0.0], temporal_resolution_ms=100, heart_rate_bpm=80, n_samples=1,
    ...                   gating_phase=0.75).tolist()      # 0.75 x 0.75 s
    [[0.5625]]
    """
    z = np.atleast_1d(np.asarray(z_mm, dtype=float))
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"z_mm must be a non-empty 1D array of slice positions, got shape {z.shape}")
    n_samples = positive_int("n_samples", n_samples)
    temporal_resolution_ms = nonnegative_real("temporal_resolution_ms", temporal_resolution_ms,
                                              unit="ms")
    rr = 60.0 / check_heart_rate(heart_rate_bpm)
    tw = temporal_resolution_ms / 1000.0
    offsets = ((np.arange(n_samples) + 0.5) / n_samples - 0.5) * tw
    if gated:
        gating_phase = real_in_range("gating_phase", gating_phase, 0, 1, hi_open=True,
                                     unit="of R-R")
        centres = np.full(z.shape, gating_phase * rr)
    else:
        start_phase = real_in_range("start_phase", start_phase, 0, 1, hi_open=True,
                                    unit="of R-R")
        centres = np.full(z.shape, start_phase * rr)
        if table_speed_mm_s is not None:
            if not (table_speed_mm_s > 0 and math.isfinite(table_speed_mm_s)):
                raise ValueError(f"table_speed_mm_s must be a positive speed in mm/s or None, "
                                 f"got {table_speed_mm_s!r}")
            centres = centres + (z - z[0]) / table_speed_mm_s
    return centres[:, None] + offsets[None, :]
