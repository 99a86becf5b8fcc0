"""The library's layout as rules: no import cycle between modules, no module over 300 lines, at
most 10 modules at the top level, and the light packages free of torch, Lightning and ClearML."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import torch_lab

ROOT = Path(torch_lab.__file__).parent
HEAVY = ("torch", "pytorch_lightning", "lightning_fabric", "clearml", "optuna", "matplotlib")
LIGHT_PACKAGES = ("cli", "runs", "experiment", "console", "storage.run_dir", "children", "sweep.trial", "text", "signals")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The torch_lab modules ``path`` imports anywhere (functions included): ``from a import b``
    counts as ``a.b`` when that is a module, else as ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {module for module in found if module in known and module != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules() -> None:
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    # A package's __init__ re-exporting its own modules is not a cycle of theirs.
    for name in graph:
        graph[name] = {target for target in graph[name] if not name.startswith(f"{target}.")}
    assert find_cycle(graph) is None


def test_modules_are_short_and_the_top_level_small() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > 300}
    assert long == {}
    # __main__.py is where `python -m torch_lab` must find its three lines, not a module of the API.
    top = [path.name for path in ROOT.glob("*.py") if path.name != "__main__.py"]
    assert len(top) <= 10, top


def test_every_package_says_its_role_and_what_it_may_import() -> None:
    for init in ROOT.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "import" in doc, f"{init}: its docstring must say what the package may import"


@pytest.mark.parametrize("package", LIGHT_PACKAGES)
def test_light_packages_import_nothing_heavy(package: str) -> None:
    """Each light package, with every module in it, loads no torch, Lightning or ClearML."""
    names = [name for name in modules() if name == f"torch_lab.{package}"
             or name.startswith(f"torch_lab.{package}.")]
    code = (f"import importlib, sys\nfor name in {names!r}: importlib.import_module(name)\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", (package, result.stdout)
