"""Study specs shared by the study tests: small enough for a few seconds per run."""

#: Two protocols x two repeats of the CCI replica on a 128 x 128 matrix, two methods.
TINY = """
[study]
name = "tiny"
seed = 3
repeats = 2

[[phantoms]]
name = "cci"

[grid]
protocol = ["calcium_scoring", "low_dose_chest"]
matrix = 128
pixel_mm = 0.7

[methods.clinical]
[methods.integrated]
"""
