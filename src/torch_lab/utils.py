"""Small helpers shared by experiments and the launcher."""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
from pathlib import Path
from types import ModuleType

_module_counter = itertools.count()


def import_script_as_module(path: str | Path) -> ModuleType:
    """Execute the Python file at ``path`` as a new module and return it.

    Every call makes a fresh module with a unique name (never ``__main__``), so two imports of one
    hparams file give two independent ``hparams`` dicts: a layered variant can change its copy
    without touching the base file's.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    stem = re.sub(r"\W", "_", path.stem)
    name = f"torch_lab_script_{next(_module_counter)}_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} (not a Python script?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
