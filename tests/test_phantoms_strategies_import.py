"""hypothesis is optional: phantoms works without it, phantoms.strategies says how to get it.

Each check runs in a fresh interpreter where ``sys.modules["hypothesis"] = None``
makes every ``import hypothesis`` fail, as on an install without the ``test`` extra.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, check=True).stdout


def test_strategies_without_hypothesis_raise_import_error_naming_the_fix():
    out = _run("""
        import sys
        sys.modules["hypothesis"] = None
        try:
            import phantoms.strategies
        except ImportError as err:
            print(type(err).__name__, "|", err)
        else:
            print("imported")
        """)
    assert out.startswith("ImportError | phantoms.strategies needs hypothesis")
    assert 'pip install "pvcalc[test]"' in out and "pip install hypothesis" in out


def test_phantoms_works_without_hypothesis_and_does_not_import_it():
    out = _run("""
        import sys
        import phantoms
        print("hypothesis" in sys.modules)
        sys.modules["hypothesis"] = None
        import phantoms.library
        print(len(phantoms.library.cci_phantom().lesions))
        """)
    assert out.split() == ["False", "9"]
