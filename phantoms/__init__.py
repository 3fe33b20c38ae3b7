"""phantoms: CT scans of calcifications with exactly known volume and mass.

The simulator works in the image domain: an analytic object (body, calibration
rods, calcified lesions) is integrated over each voxel's in-plane footprint and
the scanner's slice sensitivity profile, blurred by the in-plane point spread
function, time-averaged over cardiac motion, and overlaid with correlated
noise. ``phantoms`` never imports ``pvcalc``; it produces the same
``xarray`` scan objects.
"""

__version__ = "0.1.0"

# --- object side (materials, shapes, motion, body, phantom) ---
from . import truth
from .body import Rod, ThoraxBody, render_cross_section

# --- named phantoms ---
from .library import cci_phantom, motion_phantom, virtual_patient
from .materials import HA_HU_PER_MG_CM3, TISSUE_HU, density_to_hu, hu_per_mg_cm3
from .motion import CardiacMotion, ConstantVelocity, Static, acquisition_times
from .noise import noise_field
from .phantom import Lesion, Phantom

# --- scanner (protocols, PSF, noise) ---
from .protocol import PROTOCOLS, Protocol, get_protocol, noise_sd_from_mas
from .psf import blur_inplane
from .shapes import Blob, Cylinder, Ellipsoid, Sphere, Tube

# --- pipeline ---
from .simulate import repeat, simulate, simulate_patches, simulate_repeat
from .truth import fraction_box, fraction_boxes, fraction_map, lesion_table, validate_truth

# Every public name, grouped by the module it lives in, in the order the data flows
# (docs/make_api.py follows it). Not listed: phantoms.strategies, which needs the optional
# test dependency hypothesis (import it as ``from phantoms import strategies``).
__all__ = [
    "materials", "TISSUE_HU", "HA_HU_PER_MG_CM3", "density_to_hu", "hu_per_mg_cm3",
    "shapes", "Blob", "Cylinder", "Ellipsoid", "Sphere", "Tube",
    "motion", "CardiacMotion", "ConstantVelocity", "Static", "acquisition_times",
    "body", "Rod", "ThoraxBody", "render_cross_section",
    "phantom", "Lesion", "Phantom",
    "protocol", "PROTOCOLS", "Protocol", "get_protocol", "noise_sd_from_mas",
    "psf", "blur_inplane",
    "noise", "noise_field",
    "simulate", "simulate_patches", "simulate_repeat", "repeat",  # phantoms.simulate
    "truth", "fraction_box", "fraction_boxes", "fraction_map", "lesion_table", "validate_truth",
    "library", "cci_phantom", "motion_phantom", "virtual_patient",
]
