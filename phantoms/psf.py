"""The scanner's in-plane point spread function.

:func:`blur_inplane` applies the in-plane Gaussian PSF; the constants relate its
FWHM to sigma, to MTF50 and to the peak of the model noise power spectrum. The
physical model and the sources of every number are in ``docs/scanner.md``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from phantoms._blur_kernels import _blur_volume_parallel, _blur_volume_serial, gaussian_taps
from phantoms._validate import real_in_range

#: FWHM of a Gaussian divided by its sigma, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: MTF50 x FWHM for a Gaussian PSF, MTF(f) = exp(-2 pi^2 sigma^2 f^2): 2 ln 2 / pi = 0.4413.
MTF50_TIMES_FWHM = 2.0 * math.log(2.0) / math.pi
#: Peak of the model NPS f exp(-f^2 / (2 f_p^2)) when the apodisation equals the
#: PSF's MTF: f_p = 1 / (2 pi sqrt(2) sigma) = 0.2650 / FWHM.
NPS_PEAK_TIMES_FWHM = FWHM_PER_SIGMA / (2.0 * math.pi * math.sqrt(2.0))
#: Arrays with fewer voxels than this are blurred on one thread (patch mode).
_SERIAL_BLUR_VOXELS = 1 << 16


def blur_inplane(volume, fwhm_mm, pixel_mm, *, out=None):
    """Separable in-plane Gaussian blur (the scanner PSF) of a (Z, Y, X) or (Y, X) array.

    Parameters
    ----------
    volume : (Z, Y, X) or (Y, X) array_like
        Values to blur (converted to C-contiguous float32).
    fwhm_mm : float
        FWHM of the Gaussian PSF in mm (> 0).
    pixel_mm : float or (float, float)
        Pixel size in mm; a pair gives (y, x) sizes.
    out : ndarray of float32, optional
        Output with the shape of ``volume``; may be ``volume`` itself (in place).

    Returns
    -------
    ndarray of float32
        The blurred array (``out`` if given).

    Notes
    -----
    Taps are the Gaussian integrated over each pixel,
    ``t_j = Phi((j + 1/2) p / sigma) - Phi((j - 1/2) p / sigma)`` for
    ``|j| <= ceil(4 sigma / p)``, normalised to sum 1, so the total is conserved
    (exactly away from the edges) even for sigma below a pixel. Boundary:
    'nearest' (edge values repeated), like ``scipy.ndimage`` ``mode="nearest"``.
    Slices run in parallel; the bytes do not depend on the thread count.

    Examples
    --------
    >>> img = np.zeros((9, 9), np.float32); img[4, 4] = 1.0
    >>> b = blur_inplane(img, 1.3, 0.5)
    >>> round(float(b.sum()), 5), bool(b[4, 4] < 1)
    (1.0, True)
    """
    if isinstance(volume, (list, tuple)) or hasattr(volume, "__array__"):
        arr = np.asarray(volume)
    else:
        raise TypeError(f"volume must be an array, got {type(volume).__name__}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"volume must be 2D (y, x) or 3D (z, y, x), got {arr.ndim}D "
                         f"with shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"volume must hold real numbers, got dtype {arr.dtype}")
    fwhm = real_in_range("fwhm_mm", fwhm_mm, 0.0, 1e3, lo_open=True, unit="mm")
    py, px = (pixel_mm, pixel_mm) if np.ndim(pixel_mm) == 0 else tuple(pixel_mm)
    py = real_in_range("pixel_mm", py, 0.0, 1e3, lo_open=True, unit="mm")
    px = real_in_range("pixel_mm", px, 0.0, 1e3, lo_open=True, unit="mm")
    src = np.ascontiguousarray(arr, dtype=np.float32)
    src3 = src.reshape((1,) + src.shape) if src.ndim == 2 else src
    if out is None:
        dst = np.empty_like(src3)
    else:
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != arr.shape \
                or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {arr.shape}, "
                             f"got {getattr(out, 'dtype', type(out).__name__)} "
                             f"{getattr(out, 'shape', '')}")
        dst = out.reshape(src3.shape)
    taps_y = gaussian_taps(fwhm, py)
    taps_x = taps_y if px == py else gaussian_taps(fwhm, px)
    if src3.size < _SERIAL_BLUR_VOXELS:
        _blur_volume_serial(src3, dst, taps_y, taps_x)
    else:
        _blur_volume_parallel(src3, dst, taps_y, taps_x, numba.get_num_threads())
    return out if out is not None else dst.reshape(arr.shape)
