"""The documentation stays true: the API reference is current and every link resolves."""

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_is_current():
    make_api = runpy.run_path(str(ROOT / "docs" / "make_api.py"))
    assert make_api["main"](["--check"]) == 0, "run: python docs/make_api.py"


def test_relative_links_in_docs_and_readme_resolve():
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "validation").glob("*.md")]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
