"""Loading an experiment folder: the hparams script (validated, ``--set`` applied) and its
``__main__.py``, imported as a package of its own. Imports nothing heavy until ``__main__.py`` does."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from torch_lab.errors import UserError, display_path
from torch_lab.experiment import hparams as hp
from torch_lab.experiment import precheck
from torch_lab.experiment.config import Experiment
from torch_lab.experiment.user_code import run_script

_packages = itertools.count()


def _import_main(main_path: Path) -> ModuleType:
    """Import ``__main__.py`` as the ``__main__`` module of its experiment folder, made a package
    with a unique name: ``from .models import Net`` works, and so does ``import models`` (the
    folder is put first on ``sys.path``)."""
    folder = main_path.parent
    package = f"torch_lab_experiment_{next(_packages)}"
    init = folder / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(package, init, submodule_search_locations=[str(folder)])
    else:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
    assert spec is not None
    sys.modules[package] = importlib.util.module_from_spec(spec)
    if spec.loader is not None:
        run_script(init, lambda: spec.loader.exec_module(sys.modules[package]))
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    main_spec = importlib.util.spec_from_file_location(f"{package}.__main__", main_path)
    assert main_spec is not None and main_spec.loader is not None
    main = sys.modules[main_spec.name] = importlib.util.module_from_spec(main_spec)
    run_script(main_path, lambda: main_spec.loader.exec_module(main))
    return main


def load_hparams(path: str | Path, overrides: list[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """Run the hparams script at ``path``, validate its ``hparams`` (defaults filled in) and apply
    ``overrides``; the resolved path and hparams. Imports nothing heavy."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{display_path(path)}: no such file")
    if path.is_dir():
        raise UserError(f"{display_path(path)}: is a directory; give the hparams script, e.g. {path}/hparams.py")
    if path.suffix != ".py":
        raise UserError(f"{display_path(path)}: not a Python script (.py)")
    path = Path(os.path.abspath(path))  # a symlink's own folder is the experiment, not its target's
    module = run_script(path)
    if not hasattr(module, "hparams"):
        raise UserError(f"{display_path(path)}: defines no 'hparams' dict")
    hparams = hp.validate(module.hparams, path)
    return path, hp.apply_overrides(hparams, overrides or [], path)


def load_experiment(path: str | Path, overrides: list[str] | None = None,
                    checks: precheck.Precheck | None = None) -> Experiment:
    """Import the hparams script at ``path``, validate it, apply overrides, run ``checks`` (the
    static ones of the command, see ``torch_lab.experiment.precheck``), import ``__main__.py``."""
    path, hparams = load_hparams(path, overrides)
    main_path = path.parent / "__main__.py"
    if not main_path.is_file():
        raise UserError(f"{display_path(main_path)}: missing; the experiment folder needs a __main__.py")
    if checks is not None:
        checks(path, main_path, hparams)
    return Experiment(path, hparams, main_path, _import_main(main_path))
