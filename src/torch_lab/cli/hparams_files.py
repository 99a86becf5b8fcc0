"""Which files a quoted glob on the command line selects: hparams scripts only.

An hparams script is a ``.py`` file that binds ``hparams`` at module level (an assignment or an
import); the experiment's ``__init__.py`` and ``__main__.py`` never are. Read with :mod:`ast`,
nothing is executed.
"""

from __future__ import annotations

import ast
import glob
import os
from pathlib import Path
from typing import Iterator

from torch_lab.errors import UserError

NEVER_HPARAMS = frozenset({"__init__.py", "__main__.py"})


def _module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, including those inside ``if`` / ``try`` / ``with`` / loops."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _module_statements(getattr(node, field, []) or [])
        for handler in getattr(node, "handlers", []) or []:
            yield from _module_statements(handler.body)


def _binds_hparams(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((alias.asname or alias.name) == "hparams" for alias in node.names)
    targets = node.targets if isinstance(node, ast.Assign) else (
        [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
    return any(isinstance(name, ast.Name) and name.id == "hparams"
               for target in targets for name in ast.walk(target))


def is_hparams_script(path: str | Path) -> bool:
    """Whether ``path`` is a ``.py`` file defining ``hparams`` (a file that cannot be parsed
    counts, so that its run reports the syntax error)."""
    path = Path(path)
    if path.name in NEVER_HPARAMS or path.suffix != ".py" or not path.is_file():
        return False
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError):
        return True
    return any(_binds_hparams(node) for node in _module_statements(tree.body))


def expand_paths(patterns: list[str]) -> list[str]:
    """Expand quoted glob patterns (``"experiments/*/*.py"``) to the hparams scripts they match;
    plain paths, and existing files whose names hold ``*?[``, pass through (a wrong one is
    reported when it is loaded)."""
    paths: list[str] = []
    for pattern in patterns:
        if any(char in pattern for char in "*?[") and not os.path.exists(pattern):  # else literal
            matches = [path for path in sorted(glob.glob(pattern)) if is_hparams_script(path)]
            if not matches:
                raise UserError(f"no hparams script matches {pattern!r} (a .py file defining "
                                "'hparams'; __init__.py and __main__.py never are)")
            paths += matches
        elif "=" in pattern and not Path(pattern).exists():
            raise UserError(f"{pattern}: no such file; --set takes one KEY=VALUE each "
                            f"(--set a=1 --set b=2)")
        else:
            paths.append(pattern)
    return paths
