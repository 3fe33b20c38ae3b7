"""The documentation stays true: every code block runs, the API reference is current and
every link resolves."""

import re
import runpy
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: A ```python block; a block that truly needs data the docs cannot make (a real DICOM
#: folder, say) is skipped when the line before it is `<!-- no-run: why -->`.
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_NO_RUN = re.compile(r"<!--\s*no-run:\s*(.+?)\s*-->")


@dataclass(frozen=True)
class Block:
    page: Path
    index: int      # position among the page's python blocks
    line: int       # line of the opening fence
    code: str
    no_run: str     # reason, or "" for a block that runs

    @property
    def name(self):
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page):
    text = page.read_text()
    out = []
    for index, match in enumerate(_FENCE.finditer(text)):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = _NO_RUN.fullmatch(before.strip())
        out.append(Block(page, index, text.count("\n", 0, match.start()) + 1, match.group(1),
                         reason.group(1) if reason else ""))
    return out


BLOCKS = [block for page in PAGES for block in _blocks(page)]
#: One namespace per page: its blocks run in order, each seeing the names of the ones
#: before (state: the namespace, the number of blocks run, the first failure).
_PAGE_RUNS = {}


def _exec(block, namespace):
    # pad with blank lines so that tracebacks give the line in the Markdown page
    code = "\n" * block.line + block.code
    exec(compile(code, str(block.page.relative_to(ROOT)), "exec"), namespace)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_code_block_runs(block, tmp_path_factory, monkeypatch):
    """Every ```python block of README.md and docs/ runs (in a scratch folder)."""
    if block.no_run:
        pytest.skip(f"marked no-run: {block.no_run}")
    run = _PAGE_RUNS.setdefault(block.page, {
        "namespace": {"__name__": "__docs__"}, "done": 0, "failed": None,
        "folder": tmp_path_factory.mktemp(block.page.stem)})
    monkeypatch.chdir(run["folder"])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for earlier in _blocks(block.page)[run["done"]:block.index + 1]:
        if run["failed"]:
            pytest.fail(f"an earlier block of the page failed ({run['failed']}); this one "
                        "needs its names")
        if not earlier.no_run:
            try:
                _exec(earlier, run["namespace"])
            except Exception:
                run["failed"] = earlier.name
                raise
        run["done"] = earlier.index + 1


def test_every_no_run_block_says_why():
    for block in BLOCKS:
        if block.no_run:
            assert len(block.no_run.split()) >= 3, f"{block.name}: say why it cannot run"


def test_blocks_and_no_run_markers_are_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nx = 1\n```\n\n<!-- no-run: needs a real DICOM "
                    "folder -->\n```python\nread('/data')\n```\n```bash\nls\n```\n")
    first, second = _blocks(page)
    assert (first.line, first.code, first.no_run) == (3, "x = 1\n", "")
    assert (second.line, second.no_run) == (8, "needs a real DICOM folder")


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
