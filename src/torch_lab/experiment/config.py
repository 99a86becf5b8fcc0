"""An experiment: its hparams file, validated hparams and ``__main__`` module, and what its config
functions must return (the keys, a pytorch_lightning module with the steps the command runs, non-empty
dataloaders; ``infer``'s weights rule)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from torch_lab.errors import UserError, display_path
from torch_lab.experiment import precheck
from torch_lab.experiment.user_code import Exited, exits_refused, first_line

TRAIN_KEYS = {"module", "train_dataloaders", "val_dataloaders", "test_dataloaders", "callbacks", "loggers"}
TRAIN_REQUIRED = ("module", "train_dataloaders", "val_dataloaders")
INFER_KEYS = {"module", "predict_dataloaders", "callbacks", "weights"}
INFER_REQUIRED = ("module", "predict_dataloaders")


def default_task_name(hparams_path: Path) -> str:
    """``<experiment folder>-<hparams file stem>``, the task name when ``task.task_name`` is unset."""
    return f"{hparams_path.parent.name}-{hparams_path.stem}"


@dataclass
class Experiment:
    """An hparams file, its validated hparams (with overrides) and its experiment's ``__main__``."""

    hparams_path: Path
    hparams: dict[str, Any]
    main_path: Path
    main: ModuleType

    @property
    def name(self) -> str:
        """The ClearML task name: ``task.task_name``, else ``default_task_name``; a dev run, a test,
        ... prefix it (``dev_``, ``test_``, ...)."""
        return self.hparams["task"].get("task_name") or default_task_name(self.hparams_path)

    def config_function(self, name: str) -> Callable[..., Any]:
        function = getattr(self.main, name, None)
        if not callable(function):
            raise UserError(precheck.no_function_message(self.main_path, name))
        return function

    def train_config(self, hparams: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call ``train_config(hparams)`` and check what it returns."""
        function = self.config_function("train_config")
        config = self._call(function, hparams or self.hparams)
        return self._check_config("train_config", config, TRAIN_KEYS, TRAIN_REQUIRED)

    def infer_config(self, args: list[str], hparams: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call ``infer_config(hparams, *args)`` and check what it returns."""
        function = self.check_infer_args(args)
        config = self._call(function, hparams or self.hparams, *args)
        return self._check_config("infer_config", config, INFER_KEYS, INFER_REQUIRED)

    def check_infer_args(self, args: list[str]) -> Callable[..., Any]:
        """Return ``infer_config`` after checking it accepts ``(hparams, *args)``."""
        function = self.config_function("infer_config")
        message = precheck.infer_args_message(self.main_path, inspect.signature(function), args)
        if message:
            raise UserError(message)
        return function

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            with exits_refused():
                return function(*args)
        except UserError:
            raise
        except Exited as error:
            raise UserError(f"{display_path(self.main_path)}: {function.__name__} called {error}; "
                            "it must return its dict") from None
        except Exception as error:
            raise UserError(
                f"{display_path(self.main_path)}: {function.__name__} raised {first_line(error)}"
            ) from error

    def _check_config(self, function: str, config: Any, allowed: set, required: tuple) -> dict[str, Any]:
        from torch.utils.data import DataLoader

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
        _check_module(where, STEPS[function], config)
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
        _check_callbacks(where, config["callbacks"])
        if "loggers" in allowed:
            config["loggers"] = _check_loggers(where, config.get("loggers"))
        return config


#: The steps each function's module must have, and what needs them: ``train`` fits and validates
#: (and tests when given test loaders), ``infer`` predicts.
STEPS = {"train_config": {"training_step": "train fits with it", "validation_step": "val_dataloaders need it"},
         "infer_config": {"predict_step": "infer predicts with it"}}
TEST_STEP = {"test_step": "test_dataloaders need it"}


def _check_module(where: str, steps: dict[str, str], config: dict[str, Any]) -> None:
    """``module``: any ``pytorch_lightning.LightningModule`` (``torch_lab.modules.TrainLabModule`` is
    one) that has the steps the command runs; refused before any task, naming the missing one.
    Lightning's default ``predict_step`` calls ``forward``: either will do."""
    import pytorch_lightning as pl
    from pytorch_lightning.utilities.model_helpers import is_overridden

    module = config["module"]
    name = type(module).__name__
    if not isinstance(module, pl.LightningModule):
        _refuse_lightning_package(where, "'module' is", module, "LightningModule")
        raise UserError(f"{where}: 'module' must be a pytorch_lightning LightningModule (e.g. "
                        f"torch_lab.modules.TrainLabModule), got {name}")
    if config.get("test_dataloaders") is not None:
        steps = {**steps, **TEST_STEP}
    for step, needs in steps.items():
        if not (is_overridden(step, module) or step == "predict_step" and is_overridden("forward", module)):
            also = " (nor forward, which Lightning's default calls)" if step == "predict_step" else ""
            raise UserError(f"{where}: 'module' ({name}) has no {step}{also}; {needs}")


def _check_callbacks(where: str, callbacks: list[Any]) -> None:
    import pytorch_lightning as pl

    for index, callback in enumerate(callbacks):
        if not isinstance(callback, pl.Callback):
            _refuse_lightning_package(where, f"'callbacks[{index}]' is", callback, "Callback")
            raise UserError(f"{where}: 'callbacks[{index}]' must be a pytorch_lightning Callback, "
                            f"got {type(callback).__name__}")


def _refuse_lightning_package(where: str, subject: str, value: Any, kind: str) -> None:
    """Refuse an object of the ``lightning`` package (``import lightning as L``) in one line:
    ``lightning.pytorch`` is a second copy of Lightning, whose classes pytorch_lightning's Trainer
    (torch-lab's) does not recognise (it refuses such a module; callbacks and loggers would meet
    checks for the other copy's classes deep inside a run)."""
    if any(cls.__module__.startswith(("lightning.pytorch", "lightning.fabric")) for cls in type(value).__mro__):
        raise UserError(f"{where}: {subject} a lightning.pytorch {kind} (the lightning package); torch-lab runs "
                        "pytorch_lightning, a separate copy of Lightning whose Trainer does not take the "
                        "other's classes: import it from pytorch_lightning instead")


def _check_loggers(where: str, loggers: Any) -> list[Any] | dict[str, Any]:
    """``loggers``: Lightning ``Logger`` objects, or functions of the run directory returning one
    (called by ``train`` once the run directory exists, see ``logger_of``); a list, or a dict of
    named ones (messages name their keys)."""
    from pytorch_lightning.loggers import Logger

    items = [] if loggers is None else loggers
    if not isinstance(items, (list, tuple, dict)):
        items = [items]
    for label, item in zip(logger_labels(items), logger_items(items)):
        if not (isinstance(item, Logger) or callable(item)):
            _refuse_lightning_package(where, f"'{label}' is", item, "Logger")
            raise UserError(f"{where}: '{label}' must be a pytorch_lightning Logger (or a "
                            f"function of the run directory returning one), got {type(item).__name__}")
    return dict(items) if isinstance(items, dict) else list(items)


def logger_labels(loggers: Any) -> list[str]:
    """How messages name each entry of ``loggers``: ``loggers[0]``, or ``loggers["tb"]`` in a dict."""
    if isinstance(loggers, dict):
        return [f'loggers["{key}"]' for key in loggers]
    return [f"loggers[{index}]" for index in range(len(loggers or []))]


def logger_items(loggers: Any) -> list[Any]:
    """The entries of ``loggers`` (a dict's values), in order."""
    return list(loggers.values()) if isinstance(loggers, dict) else list(loggers or [])


def logger_of(main_path: Path, label: str, item: Any, run_dir: Path) -> Any:
    """The Logger of entry ``label`` (see ``logger_labels``): the object itself, or what the function returns when
    called with the run directory (a new run's, or the resumed run's: its logs go on there)."""
    from pytorch_lightning.loggers import Logger

    if isinstance(item, Logger):
        return item
    try:
        logger = item(run_dir)
    except Exception as error:
        raise UserError(f"{display_path(main_path)}: train_config's '{label}' raised "
                        f"{first_line(error)}") from error
    if not isinstance(logger, Logger):
        _refuse_lightning_package(f"{display_path(main_path)}: train_config's", f"'{label}' returned", logger,
                                  "Logger")
        raise UserError(f"{display_path(main_path)}: train_config's '{label}' returned "
                        f"{type(logger).__name__}, not a pytorch_lightning Logger")
    return logger


def infer_weights(experiment: Experiment, config: dict[str, Any], checkpoint_label: str | None) -> str:
    """Where ``infer``'s weights come from: the hparams ``checkpoint`` block (loaded by torch-lab,
    ``checkpoint_label`` describes it), else what ``infer_config`` says it loaded (its
    ``weights`` entry). Neither: a UserError, rather than predicting with random weights."""
    if checkpoint_label is not None:
        return checkpoint_label
    if config.get("weights"):
        missing = missing_weights_file(config["weights"])
        if missing is not None:
            raise UserError(f"{display_path(experiment.main_path)}: infer_config's 'weights' names "
                            f"{missing}: no such file")
        return f"{config['weights']} (loaded by infer_config)"
    raise UserError(
        f"{display_path(experiment.hparams_path)}: no weights to predict with: "
        "checkpoint.checkpoint_task_id is None and infer_config returned no 'weights'; "
        "--set checkpoint.checkpoint_task_id=<task id>, or load them in infer_config and return "
        "'weights': '<where they come from>'"
    )


#: Endings of weights files: a ``weights`` string (or its last word) ending so names a file.
WEIGHTS_SUFFIXES = (".pt", ".pth", ".ckpt", ".pt2", ".bin", ".safetensors", ".onnx", ".pkl", ".h5", ".npz")


def missing_weights_file(weights: str) -> str | None:
    """The file ``weights`` names when that file does not exist, else None. ``weights`` names a
    file when it, or its last word (``"checkpoint <path>"``), is a path (absolute, ``./``, ``../``,
    ``~/``) or ends as a weights file does; other strings ("a task id", "torchvision ResNet-18
    ImageNet", a hub name) say where the weights come from and are taken as they are."""
    candidates = dict.fromkeys([weights.strip(), *weights.split()[-1:]])
    named = [c for c in candidates if c.startswith(("/", "./", "../", "~/")) or c.lower().endswith(WEIGHTS_SUFFIXES)]
    if not named or any(Path(c).expanduser().is_file() for c in named):
        return None
    return named[-1]


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
