"""Load an experiment folder: its hparams script and the config functions of its ``__main__.py``.

Everything a user can get wrong here is reported as a :class:`UserError` naming the file and key.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import itertools
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

from torch_lab import hparams as hp
from torch_lab import precheck
from torch_lab.errors import UserError, display_path
from torch_lab.utils import import_script_as_module

TRAIN_KEYS = {"module", "train_dataloaders", "val_dataloaders", "test_dataloaders", "callbacks"}
TRAIN_REQUIRED = ("module", "train_dataloaders", "val_dataloaders")
INFER_KEYS = {"module", "predict_dataloaders", "callbacks", "weights"}
INFER_REQUIRED = ("module", "predict_dataloaders")
_packages = itertools.count()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class _Exited(Exception):
    """User code called ``sys.exit`` or ``os._exit`` while torch-lab ran it."""


@contextmanager
def _exits_refused() -> Iterator[None]:
    """Turn ``sys.exit(...)`` and ``os._exit(...)`` in the code run inside into ``_Exited``
    (``os._exit`` only in this process: forked children, e.g. dataloader workers, exit as usual)."""
    real_exit, pid = os._exit, os.getpid()

    def refused(code: int) -> None:
        if os.getpid() != pid:
            real_exit(code)
        raise _Exited(f"os._exit({code})")

    os._exit = refused
    try:
        yield
    except SystemExit as error:
        raise _Exited(f"sys.exit({error.code!r})") from None
    finally:
        os._exit = real_exit


def run_script(path: Path, run: Callable[[], Any] | None = None) -> Any:
    """Execute a user's script at ``path`` (hparams, sweep, ``__main__.py``) (``run()``, by default ``import_script_as_module(path)``);
    any way it fails or exits is a ``UserError`` naming it."""
    try:
        with _exits_refused():
            return run() if run is not None else import_script_as_module(path)
    except SyntaxError as error:
        raise UserError(precheck.syntax_error_message(path, error)) from error
    except _Exited as error:
        raise UserError(f"{display_path(path)}: called {error} while torch-lab imported it; "
                        "experiment code must not exit") from None
    except Exception as error:
        raise UserError(f"{display_path(path)}: raised {_first_line(error)}") from error


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


@dataclass
class Experiment:
    """An hparams file, its validated hparams (with overrides) and its experiment's ``__main__``."""

    hparams_path: Path
    hparams: dict[str, Any]
    main_path: Path
    main: ModuleType

    @property
    def name(self) -> str:
        """``<experiment folder>-<hparams file stem>``, the default ClearML task name."""
        return f"{self.hparams_path.parent.name}-{self.hparams_path.stem}"

    def config_function(self, name: str) -> Callable[..., Any]:
        function = getattr(self.main, name, None)
        if not callable(function):
            raise UserError(precheck.no_function_message(self.main_path, name))
        return function

    def train_config(self, hparams: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call ``train_config(hparams)`` and check what it returns."""
        function = self.config_function("train_config")
        config = self._call(function, hparams or self.hparams)
        return self._check_config("train_config", config, TRAIN_KEYS, TRAIN_REQUIRED, "TrainLabModule")

    def infer_config(self, args: list[str], hparams: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call ``infer_config(hparams, *args)`` and check what it returns."""
        function = self.check_infer_args(args)
        config = self._call(function, hparams or self.hparams, *args)
        return self._check_config("infer_config", config, INFER_KEYS, INFER_REQUIRED, "LabModule")

    def check_infer_args(self, args: list[str]) -> Callable[..., Any]:
        """Return ``infer_config`` after checking it accepts ``(hparams, *args)``."""
        function = self.config_function("infer_config")
        message = precheck.infer_args_message(self.main_path, inspect.signature(function), args)
        if message:
            raise UserError(message)
        return function

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            with _exits_refused():
                return function(*args)
        except UserError:
            raise
        except _Exited as error:
            raise UserError(f"{display_path(self.main_path)}: {function.__name__} called {error}; "
                            "it must return its dict") from None
        except Exception as error:
            raise UserError(
                f"{display_path(self.main_path)}: {function.__name__} raised {_first_line(error)}"
            ) from error

    def _check_config(
        self, function: str, config: Any, allowed: set, required: tuple, module_class: str
    ) -> dict[str, Any]:
        from torch.utils.data import DataLoader

        from torch_lab import modules

        where = f"{display_path(self.main_path)}: {function}"
        if not isinstance(config, dict):
            raise UserError(f"{where} must return a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise UserError(
                f"{where} returned unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})"
            )
        for key in required:
            if config.get(key) is None:
                raise UserError(f"{where} returned no '{key}'")
        if not isinstance(config["module"], getattr(modules, module_class)):
            raise UserError(
                f"{where}: 'module' must be a torch_lab.modules.{module_class}, "
                f"got {type(config['module']).__name__}"
            )
        for key in sorted(k for k in config if k.endswith("_dataloaders") and config[k] is not None):
            items = dataloaders_of({key: config[key]})
            if not items or not all(isinstance(item, DataLoader) for item in items):
                raise UserError(f"{where}: '{key}' must be a DataLoader or a list of them")
            for index, item in enumerate(items):
                if _batches(item) == 0:
                    name = f"{key}[{index}]" if isinstance(config[key], (list, tuple)) else key
                    raise UserError(f"{where}'s {name} is empty (0 batches)")
        if config.get("weights") is not None and not (isinstance(config["weights"], str) and config["weights"]):
            raise UserError(f"{where}: 'weights' must be a non-empty string saying where the "
                            f"weights it loaded come from, got {config['weights']!r}")
        callbacks = config.setdefault("callbacks", [])
        if not isinstance(callbacks, (list, tuple)):
            raise UserError(f"{where}: 'callbacks' must be a list of pytorch_lightning.Callback")
        config["callbacks"] = list(callbacks)
        return config


def infer_weights(experiment: Experiment, config: dict[str, Any], checkpoint_label: str | None) -> str:
    """Where ``infer``'s weights come from: the hparams ``checkpoint`` block (loaded by torch-lab,
    ``checkpoint_label`` describes it), else what ``infer_config`` says it loaded (its
    ``weights`` entry). Neither: a UserError, rather than predicting with random weights."""
    if checkpoint_label is not None:
        return checkpoint_label
    if config.get("weights"):
        return f"{config['weights']} (loaded by infer_config)"
    raise UserError(
        f"{display_path(experiment.hparams_path)}: no weights to predict with: "
        "checkpoint.checkpoint_task_id is None and infer_config returned no 'weights'; "
        "--set checkpoint.checkpoint_task_id=<task id>, or load them in infer_config and return "
        "'weights': '<where they come from>'"
    )


def _batches(loader: Any) -> int | None:
    """The number of batches of ``loader``; None when it has no length (an iterable dataset)."""
    try:
        return len(loader)
    except TypeError:
        return None


def dataloaders_of(config: dict[str, Any]) -> list[Any]:
    """Every dataloader in a config dict's ``*_dataloaders`` entries (each one or a list)."""
    loaders: list[Any] = []
    for key, value in config.items():
        if key.endswith("_dataloaders") and value is not None:
            loaders += list(value) if isinstance(value, (list, tuple)) else [value]
    return loaders


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
    static ones of the command, see ``torch_lab.precheck``), import ``__main__.py``."""
    path, hparams = load_hparams(path, overrides)
    main_path = path.parent / "__main__.py"
    if not main_path.is_file():
        raise UserError(f"{display_path(main_path)}: missing; the experiment folder needs a __main__.py")
    if checks is not None:
        checks(path, main_path, hparams)
    return Experiment(path, hparams, main_path, _import_main(main_path))
