"""Every method has a page, linked from the methods overview.

(The python blocks of every docs page, these included, run in tests/test_docs.py.)
"""

from pathlib import Path

from pvcalc.methods import METHODS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "methods"


def test_every_method_has_a_page_linked_from_the_index():
    index = (DOCS / "index.md").read_text()
    for name in METHODS:
        assert (DOCS / f"{name}.md").exists(), f"docs/methods/{name}.md is missing"
        assert f"]({name}.md)" in index, f"docs/methods/index.md does not link {name}.md"
