"""A real scanner's twin: its protocol measured on its scan of the QRM phantom, then simulated.

A scan of the QRM thorax phantom with the cardiac calcification insert (CCI) holds every
number the simulator needs to imitate that scanner:

- :func:`measure_protocol`: the in-plane resolution from the edge of the 200 mg HA/cm3
  rod (edge spread -> MTF, MTF50 and MTF10, the Gaussian PSF width), the noise SD, NPS
  and lag-1 autocorrelation from uniform squares of the insert body, the HU per mg HA/cm3
  from the two rods, the insert body's HU, and the grid (pixel, matrix, slices, kVp)
  from the scan itself; it returns a :class:`phantoms.Protocol` and a tidy report.
- :func:`simulate_twin`: repeated scans of the simulated phantom with that protocol,
  scored and quantified by the same pipeline as the real scan (locate -> rod
  calibration -> :func:`pvcalc.quantify`), side by side with it.
- :func:`plot_mtf`, :func:`plot_nps`: the curves behind the report.

``docs/real_phantom.md`` ("Measure the scanner", "Simulate its twin") shows the steps.
"""

from __future__ import annotations

from pvcalc._twin_measure import INSERT_RADIUS_MM, REPORT_COLUMNS, MeasuredCurves, measure
from pvcalc._twin_report import plot_mtf as _plot_mtf
from pvcalc._twin_report import plot_nps as _plot_nps
from pvcalc._twin_run import COMPARISON_COLUMNS, NOISE_COLUMNS, TwinResult, run_twin

__all__ = ["COMPARISON_COLUMNS", "INSERT_RADIUS_MM", "NOISE_COLUMNS", "REPORT_COLUMNS",
           "MeasuredCurves", "TwinResult", "measure_protocol", "plot_mtf", "plot_nps",
           "simulate_twin"]


def measure_protocol(scan, layout=None, *, kvp=None, ha_density_mg_cm3=200.0, roi_size_px=None,
                     detrend="plane", n_boot=100, seed=0):
    """The scanner's protocol, measured on its scan of the QRM phantom.

    Parameters
    ----------
    scan : xarray.DataArray
        A scan of the QRM thorax phantom with the cardiac calcification insert, covering
        the insert plane and the rods' section (:func:`pvcalc.read_scan`).
    layout : pvcalc.qrm.CCILayout, optional
        Where the insert, its inserts and its rods are; default
        :func:`pvcalc.qrm.locate_cci` of the scan.
    kvp : float, optional
        Tube voltage (kV) when the scan does not record it (DICOM KVP); a given value
        is used as it is. Default: the scan's ``kvp`` attribute.
    ha_density_mg_cm3 : float, optional
        HA density of the calcium rod. Default 200 mg HA/cm3.
    roi_size_px : int, optional
        Side of the square noise ROIs in pixels (>= 8). Default: 64 pixels, at most
        32 mm (an even number of pixels).
    detrend : {"plane", "mean", "quadratic"}, optional
        Trend removed from each noise ROI before its NPS. Default "plane".
    n_boot : int, optional
        Bootstrap replicates for the standard errors (0: none, the errors are NaN).
        Default 100.
    seed : int, optional
        Seed of the bootstrap. Default 0.

    Returns
    -------
    protocol : phantoms.Protocol
        ``name="twin"`` with the measured ``psf_fwhm_mm``, ``noise_sd_hu``,
        ``nps_radial`` (the measured radial NPS, relative), ``hu_per_mg_ha``, and the
        scan's ``kvp``, ``pixel_mm``, ``matrix``, ``slice_thickness_mm``,
        ``increment_mm`` and ``kernel``; the fields a static phantom cannot tell
        (slice profile, timing) keep their defaults.
    report : pandas.DataFrame
        One row per quantity (:data:`REPORT_COLUMNS`): ``quantity``, ``value``,
        ``unit``, ``se`` (standard error: block bootstrap over slices and angular
        octants of the rod edge, bootstrap over noise ROIs, spread of the rods'
        quadrant means), ``roi`` (where it was measured), ``method`` and ``n`` (pixels
        or ROIs). Quantities: ``psf_fwhm_mm``, ``esf_fwhm_mm``, ``mtf50_per_mm``,
        ``mtf10_per_mm``, ``mtf10_over_mtf50``, ``psf_non_gaussian`` (1 when the shape
        is not Gaussian: the reason is in ``method``), ``esf_rms_residual_hu``,
        ``ha_rod_radius_mm``, ``noise_sd_hu``, ``nps_peak_freq_per_mm``,
        ``nps_mean_freq_per_mm``, ``lag1_autocorrelation``, ``insert_body_hu`` (the
        material the simulator's insert cylinder needs), ``hu_per_mg_ha``,
        ``ha_rod_hu``, ``water_rod_hu``, ``body_height_mm``, ``kvp``,
        ``slice_thickness_mm``, ``increment_mm``, ``pixel_mm``, ``matrix``.
        ``report.attrs["curves"]`` holds the :class:`MeasuredCurves` (ESF, MTF, NPS,
        noise ROIs) that :func:`plot_mtf` and :func:`plot_nps` draw.

    Notes
    -----
    **Resolution.** Pixel centres of the slices inside the HA rod's z section (their
    whole slice profile in it) are binned by their distance to the rod's centre (the
    excess-weighted centroid, iterated) in bins of a tenth of a pixel, from
    ``min(0.8 R, 6 mm)`` inside the edge to 6 mm outside, clear of the water rod: the
    oversampled radial edge spread function (ESF) of a circular rod (Richard et al.
    2012; Friedman et al. 2013; the task-based MTF of AAPM TG-233, Samei et al. 2019).
    Its derivative (the LSF, tapered over the outer 30% of each side) gives the presampled MTF by a direct
    Fourier transform, normalised at 0; MTF50 and MTF10 by linear interpolation. The
    same ESF is fitted (least squares, scipy.optimize) by a disc of radius R blurred
    by a Gaussian of SD s, ``bg + (top - bg) F_ncx2((R/s)^2; 2, (r/s)^2)``, exact for a
    disc. In the simulator an edge's variance is p^2 / 12 (the voxel's average of the
    object) plus the variance of the pixel-integrated PSF taps of
    :func:`phantoms.blur_inplane` (which tends to sigma^2 + p^2 / 12 for a PSF wider
    than a pixel), so the twin's ``psf_fwhm_mm`` is the FWHM whose taps give s^2
    (solved numerically). It is within 1% for a PSF FWHM of 1.6 pixels or more and
    reads 3-4% low at 1.2-1.5 pixels, 8-13% low below (nearly noise-free scans,
    ``validation/measure_protocol.py --pixels``): a PSF narrower than a pixel is not
    Gaussian-like once sampled. The shape is flagged non-Gaussian
    when MTF10 / MTF50 differs from the Gaussian's 1.8226 by more than 15% and by more
    than 3 of its bootstrap standard errors, or the fit's RMS residual exceeds twice
    the bins' noise plus 1% of the contrast.

    **Noise.** Non-overlapping squares inside 46 mm of the insert's axis, clear (by
    2 mm + 3 s) of the inserts and rods in their slices, in every slice; squares whose
    mean or SD is far from the others' are dropped. Each is detrended; the pooled SD,
    the 2D NPS ``p^2 / N^2 |DFT|^2`` averaged over squares and its radial average
    (rings of ``1 / (N p)``; ICRU Report 87; Dolly et al. 2016), the peak frequency
    (local fit of ``log NPS = a + b log f - c f^2``) and the mean frequency
    (Solomon et al. 2012), and the lag-1 autocorrelation of neighbouring pixels.

    **HU per mg HA.** ``(HA rod mean - water rod mean) / ha_density_mg_cm3``, each rod
    a disc shrunk by 2 mm, in the slices inside its z section.

    References
    ----------
    S. Richard, D. B. Husarik, G. Yadava, S. N. Murphy, E. Samei, "Towards task-based
    assessment of CT performance: system and object MTF across different
    reconstruction algorithms", Med. Phys. 39 (2012) 4115-4122. doi:10.1118/1.4725171
    S. N. Friedman, G. S. K. Fung, J. H. Siewerdsen, B. M. W. Tsui, "A simple approach
    to measure computed tomography (CT) modulation transfer function (MTF) and
    noise-power spectrum (NPS) using the American College of Radiology (ACR)
    accreditation phantom", Med. Phys. 40 (2013) 051907. doi:10.1118/1.4800795
    E. Samei et al., "Performance evaluation of computed tomography systems: summary of
    AAPM Task Group 233", Med. Phys. 46 (2019) e735-e756. doi:10.1002/mp.13763
    ICRU Report 87, "Radiation dose and image-quality assessment in computed
    tomography", J. ICRU 12 (2012). doi:10.1093/jicru/ndt007
    S. Dolly, H.-C. Chen, M. Anastasio, S. Mutic, H. Li, "Practical considerations for
    noise power spectra estimation for clinical CT scanners", J. Appl. Clin. Med. Phys.
    17 (2016) 392-407. doi:10.1120/jacmp.v17i3.5841
    J. B. Solomon, O. Christianson, E. Samei, "Quantitative comparison of noise texture
    across CT scanners from different manufacturers", Med. Phys. 39 (2012) 6048-6055.
    doi:10.1118/1.4752209
    IEC 61223-3-5:2019, Evaluation and routine testing in medical imaging departments,
    Part 3-5: imaging performance of computed tomography X-ray equipment.
    """
    if layout is None:
        from pvcalc.qrm import locate_cci

        layout = locate_cci(scan)
    protocol, report, _ = measure(scan, layout, kvp=kvp, ha_density_mg_cm3=ha_density_mg_cm3,
                                  roi_size_px=roi_size_px, detrend=detrend, n_boot=n_boot,
                                  seed=seed)
    return protocol, report


def simulate_twin(scan, *, repeats=5, seed=0, layout=None, methods="all", kvp=None,
                  extension_ring=None, tolerance_sd=2.0, reposition=True, n_boot=100,
                  out=None) -> TwinResult:
    """Simulate the scanner's twin and compare it, insert by insert, with the real scan.

    Parameters
    ----------
    scan : xarray.DataArray
        The real scan of the QRM phantom (as :func:`measure_protocol`).
    repeats : int, optional
        Number of twin scans (>= 1; each a new noise realisation and repositioning,
        :func:`phantoms.simulate_repeat`). Default 5.
    seed : int, optional
        Seed of the twin scans (and of the bootstrap). Default 0.
    layout : pvcalc.qrm.CCILayout, optional
        The real scan's layout; default :func:`pvcalc.qrm.locate_cci`. Each twin scan
        is always located anew.
    methods : "all", str or sequence of str, optional
        The methods of :func:`pvcalc.quantify`. Default all.
    kvp : float, optional
        As :func:`measure_protocol`.
    extension_ring : bool, optional
        Body of the twin; default from the measured body height (200 mm: without,
        300 mm: with the extension ring; a field of view that cuts a body taller than
        210 mm means the ring).
    tolerance_sd : float, optional
        A real value outside twin mean +- ``tolerance_sd`` x twin SD is flagged.
        Default 2.
    reposition : bool, optional
        Reposition the phantom between twin scans (default True), as repeated real
        scans of a phantom do.
    n_boot : int, optional
        Bootstrap replicates for the real scan's report. Default 100.
    out : str or path, optional
        Folder for ``twin.csv``, ``twin_noise.csv``, ``twin.png`` and ``report.md``
        (:meth:`TwinResult.write`). Default: write nothing.

    Returns
    -------
    TwinResult
        ``protocol``, ``report``, ``phantom``, ``real`` and ``twin`` (quantify tables),
        ``comparison`` (twin.csv: per insert, method and quantity, the real value, the
        twins' mean, SD and number, the z-score and ``outside``), ``noise``
        (twin_noise.csv), ``failures``, ``notes``.

    Notes
    -----
    The twin phantom is ``phantoms.cci_phantom(geometry="physical")`` with the measured
    insert body HU, rotated and moved in-plane like the real insert, over the real
    scan's z range relative to the insert plane. The same pipeline measures both: the
    layout located in the scan, its rod calibration (:meth:`CCILayout.calibration`),
    :func:`pvcalc.quantify` of its insert ROIs (:meth:`CCILayout.rois`), and
    :func:`measure_protocol` for the image quality. Agreement within the twin's spread
    says the simulator reproduces that scanner for these inserts; a value outside it
    points at what the measured protocol does not capture (the phantom's material, a
    non-Gaussian PSF, a slice profile, non-linear reconstruction).
    """
    result = run_twin(scan, repeats=repeats, seed=seed, layout=layout, methods=methods, kvp=kvp,
                      extension_ring=extension_ring, tolerance_sd=tolerance_sd, n_boot=n_boot,
                      reposition=reposition)
    if out is not None:
        result.write(out)
    return result


def plot_mtf(report, ax=None):
    """The MTF measured on the rod edge, with the fitted Gaussian's, MTF50 and MTF10.

    Parameters
    ----------
    report : DataFrame or MeasuredCurves
        The report of :func:`measure_protocol` (or its ``attrs["curves"]``).
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _plot_mtf(report, ax)


def plot_nps(report, ax=None):
    """The radial NPS measured in the insert body (+- 2 standard errors) and its peak.

    Parameters
    ----------
    report : DataFrame or MeasuredCurves
        The report of :func:`measure_protocol` (or its ``attrs["curves"]``).
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _plot_nps(report, ax)
