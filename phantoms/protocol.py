"""Scanner protocols: acquisition, reconstruction, noise level, timing and dose.

A :class:`Protocol` is a frozen, validated description of one CT acquisition
and reconstruction; :data:`PROTOCOLS` holds documented presets,
:func:`get_protocol` returns one with overrides and :func:`noise_sd_from_mas`
is the dose model. The in-plane PSF is applied by :func:`phantoms.psf.blur_inplane`
and the noise is made by :func:`phantoms.noise.noise_field`. The physical model
and the sources of every number are in ``docs/scanner.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import types
from dataclasses import dataclass

import numpy as np

from phantoms._validate import boolean, integer_in_range, one_of, real_in_range
from phantoms.materials import _check_hu_per_mg_ha, hu_per_mg_cm3
from phantoms.psf import FWHM_PER_SIGMA, MTF50_TIMES_FWHM, NPS_PEAK_TIMES_FWHM

#: Reference point of the dose model (see :func:`noise_sd_from_mas`).
DOSE_REFERENCE = dict(noise_sd_hu=20.0, mas=100.0, slice_thickness_mm=3.0,
                      effective_diameter_mm=math.sqrt(300.0 * 200.0))
#: Effective linear attenuation of water used for the size dependence, 1/mm:
#: ln 2 / 40 mm, i.e. transmission halves per 4 cm of water ("double the mAs
#: for every 4 cm of patient" rule), noise SD x sqrt(2) per 4 cm.
WATER_MU_PER_MM = math.log(2.0) / 40.0

_SLICE_PROFILES = ("trapezoid", "gaussian")
_NO_HEART_RATE = (
    "Protocol has no heart_rate_bpm: the heart rate belongs to the scanned object and "
    "times both its motion and the acquisition. Set it on the phantom: "
    "CardiacMotion(..., heart_rate_bpm=...) of its lesions, "
    "virtual_patient(..., heart_rate_bpm=...) or motion_phantom(..., heart_rate_bpm=...); "
    "a gated protocol then samples its gating_phase of that cycle")


@dataclass(frozen=True)
class Protocol:
    """One CT acquisition and reconstruction (all lengths in mm).

    Parameters
    ----------
    name : str
        Label stored in the scan attributes.
    kvp : float
        Tube voltage, 70-140 kV (sets the HU of hydroxyapatite in ``materials``).
    pixel_mm : float
        In-plane pixel size (0.1-2 mm); field of view = ``pixel_mm * matrix``.
    matrix : int
        In-plane matrix size (16-2048).
    slice_thickness_mm : float
        Nominal reconstructed thickness = FWHM of the slice sensitivity profile.
    increment_mm : float
        Reconstruction increment (z spacing). ``increment < thickness``:
        overlapping slices; ``==``: contiguous; ``>``: gaps (allowed).
    slice_profile : {"trapezoid", "gaussian"}
        Shape of the slice sensitivity profile (see ``phantoms._ssp``).
    psf_fwhm_mm : float
        FWHM of the in-plane Gaussian PSF (0.1-5 mm); ``mtf50_per_mm`` =
        0.441 / FWHM. Use :meth:`from_mtf50` to give MTF50 instead.
    kernel : str
        Reconstruction kernel label ("soft", "sharp", ...), for the record.
    noise_sd_hu : float
        Noise standard deviation in a uniform region (0 = noise-free). Use
        :func:`noise_sd_from_mas` to derive it from the dose.
    nps_peak_freq_per_mm : float or None
        Peak of the radially averaged in-plane NPS in cycles/mm. ``None``:
        tied to the kernel, ``0.2650 / psf_fwhm_mm`` (apodisation = MTF).
    temporal_resolution_ms : float
        Length of each slice's acquisition window (1-2000 ms).
    gated : bool
        ECG-gated (every slice at ``gating_phase``) or not (helical, random phase).
    gating_phase : float
        Cardiac phase of the window centre as a fraction of the R-R interval, [0, 1).
        The R-R interval is the scanned object's: the heart rate belongs to the
        phantom (its lesions' :class:`~phantoms.motion.CardiacMotion`), not to
        the protocol, so a gated scan samples ``gating_phase`` of the patient's
        own cycle at any heart rate (a protocol has no ``heart_rate_bpm``).
    rotation_time_s : float
        Gantry rotation time, 0.2-2 s.
    pitch : float
        Helical pitch (table feed per rotation / collimation), 0.1-3.5; only
        used for the slice timing of non-gated helical scans.
    collimation_mm : float
        Total beam collimation along z (e.g. 64 x 0.625 = 40 mm), for the
        helical table speed ``pitch * collimation_mm / rotation_time_s``.
    hu_per_mg_ha : float or None
        HU per mg HA/cm3 of this scanner, 0.5-3.0, e.g. measured on its rods as
        (HA rod HU - water rod HU) / rod density. Used for every calcium-bearing
        material of the scan (lesions and HA rods). ``None``: the kVp table,
        ``phantoms.hu_per_mg_cm3(kvp)`` (1.259 at 120 kVp). The value used is
        :attr:`ha_hu_per_mg`.
    nps_radial : sequence of (float, float) pairs or None
        A measured in-plane NPS shape: (frequency in cycles/mm, relative NPS)
        pairs, at least 3, frequencies increasing from >= 0 up to at most the
        pixel grid's corner ``sqrt(2) * 0.5 / pixel_mm``, values >= 0 with one
        > 0 below the Nyquist frequency ``0.5 / pixel_mm``. Only the shape counts
        (the noise SD stays ``noise_sd_hu``); linear between the points, the first
        value below the first frequency, 0 beyond the last. Replaces the
        parametric ``f exp(-f^2 / (2 f_p^2))`` (so not with
        ``nps_peak_freq_per_mm``); stored as a tuple of 2-tuples of floats.

    Examples
    --------
    >>> p = Protocol(psf_fwhm_mm=1.3)
    >>> round(p.mtf50_per_mm, 3), round(p.field_of_view_mm, 1), p.overlapping
    (0.339, 250.9, False)
    """

    name: str = "custom"
    kvp: float = 120.0
    pixel_mm: float = 0.49
    matrix: int = 512
    slice_thickness_mm: float = 3.0
    increment_mm: float = 3.0
    slice_profile: str = "trapezoid"
    psf_fwhm_mm: float = 1.3
    kernel: str = "soft"
    noise_sd_hu: float = 20.0
    nps_peak_freq_per_mm: float | None = None
    temporal_resolution_ms: float = 150.0
    gated: bool = True
    gating_phase: float = 0.7
    rotation_time_s: float = 0.28
    pitch: float = 1.0
    collimation_mm: float = 40.0
    hu_per_mg_ha: float | None = None
    nps_radial: tuple | None = None

    def __new__(cls, *args, **fields):
        if "heart_rate_bpm" in fields:
            raise TypeError(_NO_HEART_RATE)
        return super().__new__(cls)

    def __post_init__(self):
        for key in ("name", "kernel"):
            if not isinstance(getattr(self, key), str):
                raise TypeError(f"{key} must be a str, got {getattr(self, key)!r}")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen)
        set_("kvp", real_in_range("kvp", self.kvp, 70.0, 140.0, unit="kV",
                            hint="the HA table covers 70-140 kVp"))
        set_("pixel_mm", real_in_range("pixel_mm", self.pixel_mm, 0.1, 2.0, unit="mm"))
        set_("matrix", integer_in_range("matrix", self.matrix, 16, 2048, unit="pixels per side"))
        set_("slice_thickness_mm", real_in_range("slice_thickness_mm", self.slice_thickness_mm,
                                           0.25, 10.0, unit="mm"))
        set_("increment_mm", real_in_range(
            "increment_mm", self.increment_mm, 0.1, 10.0, unit="mm",
            hint="increment <= slice_thickness_mm gives contiguous or overlapping slices"))
        one_of("slice_profile", self.slice_profile, _SLICE_PROFILES)
        set_("psf_fwhm_mm", real_in_range("psf_fwhm_mm", self.psf_fwhm_mm, 0.1, 5.0, unit="mm",
                                    hint="or give MTF50 with Protocol.from_mtf50"))
        set_("noise_sd_hu", real_in_range("noise_sd_hu", self.noise_sd_hu, 0.0, 500.0, unit="HU",
                                    hint="use 0 for a noise-free scan"))
        if self.nps_peak_freq_per_mm is not None:
            nyq = 0.5 / self.pixel_mm
            set_("nps_peak_freq_per_mm", real_in_range(
                "nps_peak_freq_per_mm", self.nps_peak_freq_per_mm, 0.0, nyq, lo_open=True,
                unit="cycles/mm", hint=f"it must lie below the Nyquist frequency "
                                       f"0.5 / pixel_mm = {nyq:.3g}, or pass None"))
        set_("temporal_resolution_ms", real_in_range("temporal_resolution_ms",
                                               self.temporal_resolution_ms, 1.0, 2000.0,
                                               unit="ms"))
        set_("gated", boolean("gated", self.gated))
        set_("gating_phase", real_in_range("gating_phase", self.gating_phase, 0, 1, hi_open=True,
                                           unit="of the R-R interval",
                                           hint="70% is gating_phase=0.7"))
        set_("rotation_time_s", real_in_range("rotation_time_s", self.rotation_time_s, 0.2, 2.0,
                                        unit="s"))
        set_("pitch", real_in_range("pitch", self.pitch, 0.1, 3.5))
        set_("collimation_mm", real_in_range("collimation_mm", self.collimation_mm, 0.5, 200.0,
                                       unit="mm"))
        if self.hu_per_mg_ha is not None:
            set_("hu_per_mg_ha", _check_hu_per_mg_ha(self.hu_per_mg_ha))
        if self.nps_radial is not None:
            if self.nps_peak_freq_per_mm is not None:
                raise ValueError(
                    "give nps_radial (a measured NPS shape) or nps_peak_freq_per_mm (the peak "
                    f"of the parametric shape), not both; got nps_peak_freq_per_mm="
                    f"{self.nps_peak_freq_per_mm!r}: pass nps_peak_freq_per_mm=None, or "
                    "nps_radial=None for the parametric shape")
            set_("nps_radial", _nps_table("nps_radial", self.nps_radial, self.pixel_mm))

    # -- derived quantities -------------------------------------------------
    @property
    def psf_sigma_mm(self) -> float:
        """Standard deviation of the Gaussian PSF, FWHM / 2.3548 (mm)."""
        return self.psf_fwhm_mm / FWHM_PER_SIGMA

    @property
    def mtf50_per_mm(self) -> float:
        """Spatial frequency where the MTF falls to 0.5: 0.4413 / FWHM (cycles/mm)."""
        return MTF50_TIMES_FWHM / self.psf_fwhm_mm

    @property
    def nps_peak_per_mm(self) -> float:
        """NPS peak frequency actually used (cycles/mm): the given one, the frequency of
        the largest value of ``nps_radial`` (the first if tied), or 0.2650 / FWHM."""
        if self.nps_radial is not None:
            f, v = zip(*self.nps_radial)
            return f[int(np.argmax(v))]
        if self.nps_peak_freq_per_mm is not None:
            return self.nps_peak_freq_per_mm
        return NPS_PEAK_TIMES_FWHM / self.psf_fwhm_mm

    @property
    def ha_hu_per_mg(self) -> float:
        """HU per mg HA/cm3 actually used: ``hu_per_mg_ha`` or the kVp table's value."""
        if self.hu_per_mg_ha is not None:
            return self.hu_per_mg_ha
        return hu_per_mg_cm3(self.kvp)

    @property
    def field_of_view_mm(self) -> float:
        """In-plane field of view, ``pixel_mm * matrix`` (mm)."""
        return self.pixel_mm * self.matrix

    @property
    def overlapping(self) -> bool:
        """True when slices overlap (increment < thickness)."""
        return self.increment_mm < self.slice_thickness_mm - 1e-9

    @property
    def table_speed_mm_s(self) -> float:
        """Helical table speed ``pitch * collimation_mm / rotation_time_s`` (mm/s)."""
        return self.pitch * self.collimation_mm / self.rotation_time_s

    def grid_yx_mm(self):
        """In-plane pixel-centre coordinates (y, x), each ``(matrix,)``, centred on 0 mm."""
        c = (np.arange(self.matrix, dtype=np.float64) - 0.5 * (self.matrix - 1)) * self.pixel_mm
        return c, c.copy()

    def slice_positions_mm(self, z_extent_mm):
        """Slice centres (mm) at ``increment_mm`` covering ``z_extent_mm = (z0, z1)``.

        ``floor((z1 - z0) / increment)`` slices (at least one), centred on the
        middle of the extent.
        """
        z0, z1 = (float(v) for v in z_extent_mm)
        if not (math.isfinite(z0) and math.isfinite(z1) and z1 > z0):
            raise ValueError(f"z_extent_mm must be (z0, z1) with z1 > z0, got {z_extent_mm!r}")
        n = max(1, int(math.floor((z1 - z0) / self.increment_mm + 1e-9)))
        mid = 0.5 * (z0 + z1)
        return mid + (np.arange(n, dtype=np.float64) - 0.5 * (n - 1)) * self.increment_mm

    def replace(self, **changes) -> "Protocol":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_attrs(self) -> dict:
        """netCDF-safe attributes (bool -> int, None omitted), prefixed where ambiguous.

        Contains ``protocol`` (the name), ``kernel``, ``kvp``,
        ``slice_thickness_mm``, ``psf_fwhm_mm``, ``noise_sd_hu`` and the other
        fields under their own names, except: ``hu_per_mg_ha`` is always the
        value used (:attr:`ha_hu_per_mg`), with ``hu_per_mg_ha_source``
        ``"protocol"`` (given) or ``"kvp_table"``; ``nps_radial`` (when given) is
        the JSON text of its pairs, ``[[f, v], ...]`` (exact floats;
        ``Protocol(nps_radial=json.loads(text))`` gives the table back).
        """
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if f.name == "nps_radial":
                v = json.dumps([list(pair) for pair in v])
            out["protocol" if f.name == "name" else f.name] = int(v) if isinstance(v, bool) else v
        out["increment_mm"] = self.increment_mm
        out["hu_per_mg_ha"] = self.ha_hu_per_mg
        out["hu_per_mg_ha_source"] = "kvp_table" if self.hu_per_mg_ha is None else "protocol"
        return out

    def with_dose(self, mas, *, effective_diameter_mm=None, width_mm=None,
                  height_mm=None) -> "Protocol":
        """A copy whose ``noise_sd_hu`` follows from the dose and body size.

        Uses :func:`noise_sd_from_mas` with this protocol's slice thickness.

        Examples
        --------
        >>> p = Protocol().with_dose(25.0)
        >>> round(p.noise_sd_hu, 6)
        40.0
        """
        return self.replace(noise_sd_hu=noise_sd_from_mas(
            mas, slice_thickness_mm=self.slice_thickness_mm,
            effective_diameter_mm=effective_diameter_mm, width_mm=width_mm,
            height_mm=height_mm))

    @classmethod
    def from_mtf50(cls, mtf50_per_mm, **fields) -> "Protocol":
        """A protocol whose Gaussian PSF has the given MTF50 (cycles/mm).

        ``psf_fwhm_mm = 0.4413 / mtf50_per_mm``.

        Examples
        --------
        >>> round(Protocol.from_mtf50(0.34).psf_fwhm_mm, 3)
        1.298
        """
        if "psf_fwhm_mm" in fields:
            raise TypeError("give either mtf50_per_mm or psf_fwhm_mm, not both")
        m = real_in_range("mtf50_per_mm", mtf50_per_mm, 0.0, 5.0, lo_open=True, unit="cycles/mm")
        return cls(psf_fwhm_mm=MTF50_TIMES_FWHM / m, **fields)


_NPS_EXAMPLE = "e.g. ((0.0, 0.0), (0.2, 1.0), (0.5, 0.3), (0.8, 0.0))"


def _nps_table(name, value, pixel_mm):
    """A radial NPS table as a tuple of (frequency_per_mm, relative_nps) float pairs.

    Checks: at least 3 finite pairs; frequencies strictly increasing from >= 0 and
    at most ``sqrt(2) * 0.5 / pixel_mm`` (the highest radial frequency of the pixel
    grid, in its corners); values >= 0 with one > 0 at a frequency below the
    Nyquist frequency ``0.5 / pixel_mm``.
    """
    what = f"a sequence of at least 3 (frequency_per_mm, relative_nps) pairs, {_NPS_EXAMPLE}"
    if isinstance(value, (str, bytes, dict)):
        raise TypeError(f"{name} must be {what}; got {type(value).__name__} {value!r}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {what}; got {value!r}") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3:
        raise ValueError(f"{name} must be {what}; got an array of shape {arr.shape}")
    f, v = arr[:, 0].tolist(), arr[:, 1].tolist()     # Python floats (plain messages)
    for i in range(arr.shape[0]):
        if not (math.isfinite(f[i]) and math.isfinite(v[i])):
            raise ValueError(f"{name}[{i}] must be two finite numbers, got {(f[i], v[i])}")
        if v[i] < 0:
            raise ValueError(f"{name}[{i}] has a negative NPS value {v[i]!r}; the relative "
                             "NPS must be >= 0 (clip a noisy measurement at 0)")
    if f[0] < 0:
        raise ValueError(f"{name} frequencies must start at >= 0 cycles/mm, got {f[0]!r}")
    step = np.diff(f)
    if np.any(step <= 0):
        i = int(np.argmax(step <= 0)) + 1
        raise ValueError(f"{name} frequencies must increase strictly, but {name}[{i}] has "
                         f"{f[i]!r} after {f[i - 1]!r} cycles/mm; sort the pairs and merge repeats")
    nyq = 0.5 / pixel_mm
    corner = math.sqrt(2.0) * nyq
    if f[-1] > corner * (1.0 + 1e-9):
        raise ValueError(
            f"{name} reaches {f[-1]!r} cycles/mm, beyond the highest radial frequency of a "
            f"{pixel_mm:g} mm pixel grid, sqrt(2) x the Nyquist frequency 0.5 / pixel_mm = "
            f"{corner:.4g} cycles/mm; end the table there (a table measured on smaller pixels "
            "must be cut, or resampled, at this pixel size's frequencies)")
    if not any(x > 0 for x in v):
        raise ValueError(f"{name} values are all zero; give the measured NPS shape (only "
                         "relative values matter)")
    if not any(x > 0 for x, fx in zip(v, f) if fx < nyq):
        raise ValueError(f"{name} has no power below the Nyquist frequency 0.5 / pixel_mm = "
                         f"{nyq:.4g} cycles/mm of {pixel_mm:g} mm pixels; give a table with "
                         "values > 0 below it")
    return tuple(zip(f, v))


# __new__ rejects the removed heart_rate_bpm field with a pointer to its new owner;
# the signature users see stays the dataclass's __init__ one
_INIT_SIGNATURE = inspect.signature(Protocol.__init__)
Protocol.__signature__ = _INIT_SIGNATURE.replace(
    parameters=tuple(_INIT_SIGNATURE.parameters.values())[1:])


def noise_sd_from_mas(mas, *, slice_thickness_mm=3.0, effective_diameter_mm=None,
                      width_mm=None, height_mm=None, reference=None):
    """Noise SD (HU) from the tube current-time product and the body size.

    Parameters
    ----------
    mas : float
        Effective tube current-time product per rotation (mAs), > 0.
    slice_thickness_mm : float, optional
        Reconstructed thickness (noise SD ~ 1 / sqrt(thickness)). Default 3.
    effective_diameter_mm : float, optional
        Water-equivalent diameter of the body; or give ``width_mm`` and
        ``height_mm`` for ``sqrt(width * height)`` (the AAPM Report 204
        effective diameter). Default: the reference 300 x 200 mm body.
    reference : dict, optional
        The reference point; default :data:`DOSE_REFERENCE` (20 HU at 100 mAs,
        3 mm, 244.9 mm = sqrt(300 x 200)).

    Returns
    -------
    float
        Noise SD in HU.

    Notes
    -----
    Quantum noise: the SD of a reconstructed pixel scales as
    ``1 / sqrt(N)`` with N the detected photons, ``N ~ mAs * thickness *
    exp(-mu D)`` (Brooks and Di Chiro 1976), so

    ``sd = sd_ref * sqrt(mAs_ref / mAs) * sqrt(T_ref / T) * exp(mu (D - D_ref) / 2)``

    with ``mu = ln 2 / 40 mm`` (:data:`WATER_MU_PER_MM`), the "twice the mAs for
    every 4 cm" rule. The reference point is an anchor inside the 15-25 HU of
    calcium-scoring CT, not a fit to a scanner; kernel and kVp effects are not
    modelled (set ``noise_sd_hu`` directly for those).

    References
    ----------
    R. A. Brooks, G. Di Chiro, "Statistical limitations in x-ray reconstructive
    tomography", Med. Phys. 3 (1976) 237-240.
    AAPM Report 204, "Size-specific dose estimates (SSDE) in pediatric and adult
    body CT examinations", 2011.

    Examples
    --------
    >>> round(noise_sd_from_mas(100.0), 6), round(noise_sd_from_mas(25.0), 6)
    (20.0, 40.0)
    """
    ref = dict(DOSE_REFERENCE if reference is None else reference)
    m = real_in_range("mas", mas, 0.0, 5000.0, lo_open=True, unit="mAs")
    t = real_in_range("slice_thickness_mm", slice_thickness_mm, 0.25, 10.0, unit="mm")
    if effective_diameter_mm is None:
        if (width_mm is None) != (height_mm is None):
            raise ValueError("give both width_mm and height_mm (or effective_diameter_mm)")
        if width_mm is None:
            d = ref["effective_diameter_mm"]
        else:
            d = math.sqrt(real_in_range("width_mm", width_mm, 50.0, 800.0, unit="mm")
                          * real_in_range("height_mm", height_mm, 50.0, 800.0, unit="mm"))
    else:
        if width_mm is not None or height_mm is not None:
            raise ValueError("give effective_diameter_mm or width_mm/height_mm, not both")
        d = real_in_range("effective_diameter_mm", effective_diameter_mm, 50.0, 800.0, unit="mm")
    return (ref["noise_sd_hu"] * math.sqrt(ref["mas"] / m)
            * math.sqrt(ref["slice_thickness_mm"] / t)
            * math.exp(0.5 * WATER_MU_PER_MM * (d - ref["effective_diameter_mm"])))


#: Named presets (read-only mapping); sources and reasoning in ``docs/scanner.md``.
PROTOCOLS = types.MappingProxyType({
    # ECG-triggered calcium-scoring CT: 120 kVp, 3 mm contiguous, soft kernel
    # (MTF50 0.34 /mm, inside the 0.28-0.42 measured on QRM), ~20 HU noise,
    # half-rotation temporal resolution of a 0.28 s gantry (~150 ms), triggered
    # at 75% of the patient's R-R: the 150 ms window (0.675-0.825 R-R at 60 bpm,
    # 0.644-0.856 at 85 bpm) lies in or at the edge of the mid-diastolic rest of
    # phantoms.motion.CardiacMotion (0.65-0.85).
    "calcium_scoring": Protocol(
        name="calcium_scoring", kvp=120.0, pixel_mm=0.49, matrix=512,
        slice_thickness_mm=3.0, increment_mm=3.0, slice_profile="trapezoid",
        psf_fwhm_mm=1.3, kernel="soft", noise_sd_hu=20.0, temporal_resolution_ms=150.0,
        gated=True, gating_phase=0.75, rotation_time_s=0.28, pitch=1.0,
        collimation_mm=40.0),
    # Non-gated low-dose chest CT (lung-screening style): larger FOV, thin
    # 50%-overlapping slices (an increment of T/2 keeps the summed slice weight
    # flat; 1.25 / 1.0 mm would ripple 0.80-1.12, see docs/scanner.md), sharper
    # kernel, more noise, helical pitch 1, 0.5 s rotation (~250 ms half-scan
    # window at a random cardiac phase).
    "low_dose_chest": Protocol(
        name="low_dose_chest", kvp=120.0, pixel_mm=0.68, matrix=512,
        slice_thickness_mm=1.25, increment_mm=0.625, slice_profile="trapezoid",
        psf_fwhm_mm=0.8, kernel="sharp", noise_sd_hu=40.0, temporal_resolution_ms=250.0,
        gated=False, gating_phase=0.0, rotation_time_s=0.5, pitch=1.0,
        collimation_mm=40.0),
    # Thin-slice calcium-scoring CT: gated, 1 mm slices every 0.5 mm, same
    # soft kernel; noise 26 HU as measured in patients at 1 mm (Muhlenbruch 2007).
    "thin_slice_cscT": Protocol(
        name="thin_slice_cscT", kvp=120.0, pixel_mm=0.49, matrix=512,
        slice_thickness_mm=1.0, increment_mm=0.5, slice_profile="trapezoid",
        psf_fwhm_mm=1.3, kernel="soft", noise_sd_hu=26.0, temporal_resolution_ms=150.0,
        gated=True, gating_phase=0.75, rotation_time_s=0.28, pitch=1.0,
        collimation_mm=40.0),
    # Lung-screening low-dose chest CT as in the NELSON trial, the population of the
    # interscan study (Jacobs et al., AJR 2010;194:1244) that clinical scoring of
    # non-gated chest CT is compared with: 16-detector CT, 16 x 0.75 mm = 12 mm
    # collimation, 15 mm table feed per rotation (Xu et al., Lung Cancer 2006;54:177,
    # doi:10.1016/j.lungcan.2006.08.006, who call it pitch 1.5; 15 / 12 = 1.25 here),
    # 120 kVp for 50-80 kg, the whole chest in one ~12 s breath hold (Peters et al., ECR
    # 2015 C-0573, doi:10.1594/ecr2015/C-0573), hence about 0.5 s per rotation (30 mm/s
    # for a 350 mm chest in 12 s); one rotation of data
    # per image (non-cardiac reconstruction: a 500 ms window at a random phase); soft
    # kernel (the calcium-scoring PSF); 30 mAs through noise_sd_from_mas; scored on
    # 3 mm sections every 1.5 mm. Sources and the values not found in stored copies of
    # the papers: validation/interscan_population.md.
    "screening_chest": Protocol(
        name="screening_chest", kvp=120.0, pixel_mm=0.7, matrix=512,
        slice_thickness_mm=3.0, increment_mm=1.5, slice_profile="trapezoid",
        psf_fwhm_mm=1.3, kernel="soft", noise_sd_hu=36.5, temporal_resolution_ms=500.0,
        gated=False, gating_phase=0.0, rotation_time_s=0.5, pitch=1.25,
        collimation_mm=12.0),
})


def get_protocol(name, **overrides) -> Protocol:
    """A preset protocol, optionally with some fields changed.

    Parameters
    ----------
    name : str
        One of ``PROTOCOLS`` ("calcium_scoring", "low_dose_chest", "thin_slice_cscT",
        "screening_chest").
    **overrides
        Protocol fields to change (validated), e.g. ``noise_sd_hu=0``.

    Examples
    --------
    >>> get_protocol("calcium_scoring", noise_sd_hu=0.0).noise_sd_hu
    0.0
    """
    if not isinstance(name, str) or name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; valid names: {sorted(PROTOCOLS)} "
                         "(or build one with phantoms.Protocol(...))")
    if "heart_rate_bpm" in overrides:
        raise TypeError(_NO_HEART_RATE)
    bad = set(overrides) - {f.name for f in dataclasses.fields(Protocol)}
    if bad:
        raise TypeError(f"unknown Protocol field(s) {sorted(bad)}; valid fields: "
                        f"{[f.name for f in dataclasses.fields(Protocol)]}")
    return PROTOCOLS[name].replace(**overrides) if overrides else PROTOCOLS[name]
