"""The import rule of docs/dev/architecture.md: lower layers never import higher ones, and
phantoms never imports pvcalc.

Every module of phantoms/ and pvcalc/ is parsed with ``ast`` (imports inside functions
count too); each import is resolved to the module the name lives in, including names
taken from the packages' lazy top level (``from pvcalc import score``, ``pvcalc.score``).
"""

import ast
import importlib
import inspect
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("phantoms", "pvcalc")

#: Layers in the order the data flows (lowest first). A module may import modules of its
#: own layer or of lower ones. A module path matches its longest listed prefix.
LAYERS = (
    ("phantoms kernels and validators", ("phantoms._config", "phantoms._validate",
                                         "phantoms._rng", "phantoms._ssp",
                                         "phantoms._render_kernels", "phantoms._blur_kernels",
                                         "phantoms._noise_kernels")),
    ("phantoms object", ("phantoms.materials", "phantoms.shapes", "phantoms.motion",
                         "phantoms.body", "phantoms.phantom")),
    ("phantoms scanner", ("phantoms.psf", "phantoms.protocol", "phantoms.noise")),
    ("phantoms scan + truth", ("phantoms.truth", "phantoms._scene", "phantoms.simulate")),
    ("phantoms library", ("phantoms.library", "phantoms._library_estimate",
                          "phantoms._library_patients", "phantoms._library_screening")),
    ("phantoms strategies", ("phantoms.strategies",)),
    ("pvcalc scan and io", ("pvcalc.scan", "pvcalc._validate", "pvcalc._numba_config",
                            "pvcalc.io")),
    ("pvcalc rois and calibration", ("pvcalc.rois", "pvcalc.calibration",
                                     "pvcalc.reference", "pvcalc.qrm", "pvcalc._qrm_geometry",
                                     "pvcalc._qrm_inserts", "pvcalc._qrm_rods",
                                     "pvcalc._qrm_layout", "pvcalc._qrm_plot")),
    ("pvcalc scoring", ("pvcalc.scoring",)),
    ("pvcalc methods", ("pvcalc.methods",)),
    ("pvcalc evaluation", ("pvcalc.evaluation", "pvcalc.phantom_analysis", "pvcalc.twin",
                           "pvcalc._twin_edge", "pvcalc._twin_noise", "pvcalc._twin_measure",
                           "pvcalc._twin_run", "pvcalc._twin_report")),
    ("pvcalc stats", ("pvcalc.stats",)),
    ("pvcalc study report", ("pvcalc.study", "pvcalc.report")),
    ("pvcalc cli", ("pvcalc.cli",)),
)
#: Upward imports that exist today, each with its reason: (importer, imported prefix).
#: Each is a debt to pay (the test below fails once it is gone, so the line goes too);
#: never add one without saying how it will go away.
KNOWN_UPWARD = {
    ("pvcalc.rois", "pvcalc.scoring"):
        "candidate_labels reuses the clinical scoring's connected-component labelling "
        "(pvcalc.scoring._agatston.label_components and _label_kernels); moving that "
        "labelling below pvcalc.rois (a private module of the scan layer) removes it",
}
#: The packages' top levels re-export names of every layer (lazily for pvcalc): they are
#: the public surface, not a layer; an import from them is resolved to the name's module.
FACADES = set(PACKAGES)


def layer_of(module):
    """Index into LAYERS of a module of phantoms / pvcalc (None for other packages)."""
    if module.split(".")[0] not in PACKAGES or module in FACADES:
        return None
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > len(best[1])):
                best = (index, prefix)
    if best is None:
        raise LookupError(f"module {module} has no layer: add it to LAYERS in "
                          "tests/test_import_layers.py (and to docs/dev/architecture.md)")
    return best[0]


def _is_module(name):
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _facade_home(package, name):
    """The module a name of a package's top level lives in (None: the package's own data)."""
    obj = getattr(importlib.import_module(package), name)
    if inspect.ismodule(obj):
        return obj.__name__
    home = getattr(obj, "__module__", None) if (inspect.isclass(obj) or callable(obj)) else None
    if home and home.split(".")[0] in PACKAGES:
        return home
    holders = [m for m, mod in list(sys.modules.items())
               if m.startswith(package + ".") and getattr(mod, name, None) is obj]
    return min(holders, key=layer_of) if holders else None


def _resolve(module, name):
    """Module that ``from module import name`` depends on."""
    if _is_module(f"{module}.{name}"):
        return f"{module}.{name}"
    if module in FACADES:
        return _facade_home(module, name)
    return module


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source, module, *, is_package=False):
    """[(line, imported module)] of the phantoms / pvcalc modules that ``source`` uses."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found, facade_names = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in PACKAGES:
                    continue
                if alias.name in FACADES:
                    facade_names[alias.asname or alias.name] = alias.name
                else:
                    found.append((node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                source_module = ".".join(base + ([node.module] if node.module else []))
            else:
                source_module = node.module
            if source_module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                found.append((node.lineno, _resolve(source_module, alias.name)))
    # attributes of a bare ``import pvcalc``: pvcalc.score, pvcalc.stats.icc, ...
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in facade_names):
            found.append((node.lineno, _resolve(facade_names[node.value.id], node.attr)))
    return [(line, dep) for line, dep in found if dep is not None]


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = _module_name(path)
            if name not in FACADES:
                yield path, name


def violations(source, module, *, is_package=False):
    """Messages for every import of ``source`` (module ``module``) that breaks the rule."""
    own = layer_of(module)
    out = []
    for line, dep in sorted(set(imports_of(source, module, is_package=is_package))):
        if module.startswith("phantoms") and dep.startswith("pvcalc"):
            out.append(f"{module}:{line} imports {dep}: phantoms never imports pvcalc")
            continue
        theirs = layer_of(dep)
        if theirs is not None and theirs > own:
            out.append(f"{module}:{line} ({LAYERS[own][0]}) imports {dep} "
                       f"({LAYERS[theirs][0]}), a higher layer")
    return out


def test_every_module_has_a_layer():
    for _, module in _modules():
        layer_of(module)


def _known(message):
    module, dep = message.split(":")[0], message.split(" imports ")[1].split()[0]
    return next((key for key in KNOWN_UPWARD
                 if module == key[0] and (dep == key[1] or dep.startswith(key[1] + "."))), None)


def test_no_module_imports_a_higher_layer():
    found = []
    for path, module in _modules():
        found += violations(path.read_text(), module, is_package=path.name == "__init__.py")
    broken = [m for m in found if _known(m) is None]
    assert not broken, "\n".join(broken)
    stale = set(KNOWN_UPWARD) - {_known(m) for m in found}
    assert not stale, f"these upward imports are gone: remove them from KNOWN_UPWARD: {stale}"


@pytest.mark.parametrize(("source", "module", "message"), [
    ("from pvcalc.cli import main", "pvcalc.scan", "imports pvcalc.cli (pvcalc cli)"),
    ("def f():\n    from ..stats import icc", "pvcalc.scoring._agatston",
     "imports pvcalc.stats"),
    ("import pvcalc\npvcalc.score", "pvcalc.rois", "imports pvcalc.scoring._agatston"),
    ("from pvcalc import stats", "pvcalc.evaluation", "imports pvcalc.stats"),
    ("from pvcalc.scan import make_scan", "phantoms.simulate", "never imports pvcalc"),
    ("from .simulate import simulate", "phantoms.shapes", "imports phantoms.simulate"),
])
def test_the_rule_catches_an_upward_import(source, module, message):
    found = violations(source, module)
    assert len(found) == 1 and message in found[0], found


def test_allowed_imports_pass():
    assert violations("from pvcalc.scoring import score\nimport phantoms",
                      "pvcalc.evaluation") == []
    assert violations("from . import _agatston", "pvcalc.scoring", is_package=True) == []
    with pytest.raises(LookupError, match="has no layer: add it to LAYERS"):
        layer_of("pvcalc.new_module")
