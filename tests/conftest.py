"""Shared test configuration: hypothesis profiles.

The "ci" profile (default) has no deadline, because the first example of a test
may pay numba's compile or cache-load time; "dev" runs more examples.
Select with ``HYPOTHESIS_PROFILE=dev pytest``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", deadline=None, max_examples=50, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
