"""Trainer arguments: the hparams ``trainer`` blocks checked against Lightning's live signatures
and type hints (and a throwaway ``pl.Trainer``) before any task exists, and the limits of a dev run."""

from __future__ import annotations

import copy
import inspect
import logging
from typing import Any

import pytorch_lightning as pl

from torch_lab.errors import UserError, display_path
from torch_lab.experiment import Experiment, dataloaders_of
from torch_lab.experiment.precheck import refuse_trainer_keys
from torch_lab.experiment.value_types import check_values


def check_kwargs(experiment: Experiment, hparams: dict[str, Any], block: str, function: Any) -> None:
    """Reject keys of ``hparams["trainer"][block]`` that ``function`` does not accept."""
    source = display_path(experiment.hparams_path)
    kwargs = hparams["trainer"][block]
    accepted = [p for p in inspect.signature(function).parameters if p != "self"]
    refuse_trainer_keys(source, block, kwargs, accepted)  # from the live signature this time
    check_values(source, f"trainer.{block}", kwargs, function)
    if block == "init":
        lightning_log = logging.getLogger("pytorch_lightning")
        level = lightning_log.level
        lightning_log.setLevel(logging.WARNING)  # no device banner for the throwaway Trainer
        try:  # a throwaway Trainer validates the values, before any task exists
            quiet = {"enable_progress_bar": False, "enable_model_summary": False}
            pl.Trainer(**{**quiet, **kwargs}, logger=False, enable_checkpointing=False)
        except Exception as error:
            raise UserError(f"{source}: trainer.init is invalid: {error}") from None
        finally:
            lightning_log.setLevel(level)


def apply_dev_run(hparams: dict[str, Any], dev_run: int | float) -> dict[str, Any]:
    """A copy of ``hparams`` for a dev run: one epoch over ``dev_run`` batches (int) or a fraction
    of the batches (float) of each dataloader."""
    hparams = copy.deepcopy(hparams)
    init = hparams["trainer"]["init"]
    for key in ("max_steps", "max_time", "val_check_interval", "check_val_every_n_epoch", "min_epochs",
                "min_steps"):
        init.pop(key, None)
    init.update(max_epochs=1, limit_train_batches=dev_run, limit_val_batches=dev_run,
                limit_test_batches=dev_run)
    return hparams


def whole_batches(init: dict[str, Any], config: dict[str, Any], fraction: float) -> None:
    """A dev run's fraction of each stage's batches as a whole number, at least one: a dev run
    always runs (Lightning rounds a fraction down, to no batch for a small one)."""
    for key, loaders in (("limit_train_batches", "train_dataloaders"), ("limit_val_batches", "val_dataloaders"),
                         ("limit_test_batches", "test_dataloaders")):
        counts = [len(loader) for loader in dataloaders_of({loaders: config.get(loaders)})
                  if hasattr(loader, "__len__")]
        if counts:
            init[key] = max(1, int(fraction * max(counts)))


def default_scheduler_monitor(module: Any, metric: str) -> None:
    """A scheduler configured without a ``monitor`` follows the hparams ``monitor`` metric."""
    config = getattr(module, "optimizer_config", None)
    if isinstance(config, dict) and config.get("scheduler") is not None and "monitor" not in config:
        module.optimizer_config = {**config, "monitor": metric}
