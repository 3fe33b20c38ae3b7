"""``python -m pvcalc.cli``: the same as the ``pvcalc`` command."""

import sys

from pvcalc.cli import main

sys.exit(main())
