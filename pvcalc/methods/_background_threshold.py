"""``adaptive_background``: a threshold from the noise of the lesion's own background.

After Song et al., who set each lesion's threshold from the intensity
statistics of its local background (their exact rule was not found in the
literature available to us), here ``T = mean + k x SD`` of the background
shell. ``rule="qian"`` uses instead the noise-adapted threshold reported for
Qian et al. (Acad Radiol 2015): ``T = 4.66 x SD + 20.44 HU``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pvcalc._validate import check_real
from pvcalc.methods._base import MethodSpec
from pvcalc.methods._groen import threshold_result

__all__ = ["QIAN_OFFSET_HU", "QIAN_SLOPE", "SPEC", "BackgroundThresholdParams"]

#: Qian et al. (Acad Radiol 2015) individual threshold T = 4.66 x SD + 20.44 HU, as
#: reported in a secondary summary for 0.5 mm reconstructions (not checked
#: against the paper itself).
QIAN_SLOPE = 4.66
QIAN_OFFSET_HU = 20.44

_RULES = ("mean_sd", "qian")


@dataclass(frozen=True)
class BackgroundThresholdParams:
    """Parameters of ``adaptive_background``.

    Parameters
    ----------
    rule : {"mean_sd", "qian"}, default "mean_sd"
        "mean_sd": ``T = background_hu + k x background_sd_hu``; a voxel counts
        when its HU is above T (strictly, so that a noise-free scan does not
        count its background). "qian":
        ``T = 4.66 x background_sd_hu + 20.44`` HU (absolute HU, not relative
        to the background; derived for 0.5 mm reconstructions).
    k : float, default 3.0
        Multiplier of the background SD for "mean_sd". At k = 3 a single
        voxel of pure Gaussian noise exceeds the threshold with probability
        0.13%, and at 20 HU noise over a 40 HU background T = 100 HU, near the
        clinical 130 HU.

    Examples
    --------
    >>> BackgroundThresholdParams(rule="qian").rule
    'qian'
    >>> BackgroundThresholdParams(rule="song")
    Traceback (most recent call last):
    ...
    ValueError: rule must be one of ['mean_sd', 'qian'], got 'song'
    """

    rule: str = "mean_sd"
    k: float = 3.0

    def __post_init__(self):
        if self.rule not in _RULES:
            raise ValueError(f"rule must be one of {list(_RULES)}, got {self.rule!r}")
        object.__setattr__(self, "k", check_real("k", self.k, lo=0.0))


def compute(region, params, calibration):
    """Volume at the background-derived threshold, grown from the core."""
    bkg, sd = region.background_hu, region.background_sd_hu
    if params.rule == "qian":
        threshold = QIAN_SLOPE * sd + QIAN_OFFSET_HU
    else:
        threshold = bkg + params.k * sd
    peak = float(region.hu[region.core].max()) if region.core.any() else region.peak_hu
    # strict: a voxel must exceed the background by more than k SD (in a noise-free
    # scan, SD = 0 and an inclusive threshold would take the whole background)
    return threshold_result(region, threshold, calibration, peak, inclusive=False)


SPEC = MethodSpec(
    name="adaptive_background", params=BackgroundThresholdParams, compute=compute,
    requires_calibration=False, defines={"volume_mm3", "mass_mg", "threshold_hu"},
    summary="threshold mean + k SD of the local background shell (or Qian's rule), grown "
            "from the core",
    reference="after Song et al. (rule not public); Qian et al., Acad Radiol 2015")
