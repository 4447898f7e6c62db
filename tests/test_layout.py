"""The architecture as the imports show it: every bridge module imports, and imports run one way.

bridge: cli → live → sonify, io → control → sources → models, synth (a module may also import its own
subpackage). Only bridge.cli imports training. models imports only torch and itself; synth never imports
bridge or training; training never imports bridge.
"""

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import bridge

ROOT = Path(__file__).resolve().parents[1]
LEVELS = {"sources": 0, "control": 1, "sonify": 2, "io": 2, "live": 3, "cli": 4}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _runtime_imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (functions too), leaving out ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and ast.unparse(block.test) == "TYPE_CHECKING" for child in block.body for node in ast.walk(child)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "bridge" else None


def test_every_bridge_module_imports():
    names = [info.name for info in pkgutil.walk_packages(bridge.__path__, "bridge.") if info.name != "bridge.__main__"]
    assert len(names) > 30
    for name in names:
        importlib.import_module(name)


def test_bridge_subpackages_cover_every_module():
    loose = [path.name for path in (ROOT / "bridge").glob("*.py") if path.name not in ("__init__.py", "__main__.py")]
    assert loose == []
    assert {path.name for path in (ROOT / "bridge").iterdir() if path.is_dir() and path.name != "__pycache__"} == set(LEVELS)


@pytest.mark.parametrize("path", _modules("bridge"), ids=lambda p: str(p.relative_to(ROOT)))
def test_bridge_imports_run_one_way(path):
    own = path.relative_to(ROOT).parts[1] if len(path.relative_to(ROOT).parts) > 2 else None
    wrong = []
    for name in _runtime_imports(path):
        if name.startswith("training") and own != "cli":
            wrong.append(name)
        target = _subpackage(name)
        if own is None or target is None or target == own:
            continue
        if LEVELS[target] >= LEVELS[own]:
            wrong.append(name)
    assert wrong == [], f"{own} must not import {wrong}"


@pytest.mark.parametrize("package, forbidden", [("models", ("bridge", "synth", "training")),
                                                 ("synth", ("bridge", "training")),
                                                 ("training", ("bridge",))])
def test_lower_packages_never_import_higher_ones(package, forbidden):
    wrong = {str(path.relative_to(ROOT)): name for path in _modules(package) for name in _runtime_imports(path)
             if name.split(".")[0] in forbidden}
    assert wrong == {}
