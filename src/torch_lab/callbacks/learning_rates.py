"""Log the learning rates when they change, instead of at every step."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch


class LearningRates(pl.Callback):
    """Log every optimizer's learning rate at each training epoch's start and at each step where
    one changed, at the step it applies to: ``lr-<Optimizer>`` (as Lightning's
    ``LearningRateMonitor`` names them), ``-<n>`` for a repeated optimizer class, ``/pg<n>`` (or the
    group's ``name``) for each parameter group when there are several.

    Learning rates are Python floats, so the comparison before each step waits on no device
    (Lightning's monitor turns each one into a device tensor at every logged step). A learning
    rate held in a tensor is logged at epoch starts only.
    """

    def __init__(self) -> None:
        self._groups: list[tuple[str, dict[str, Any]]] = []
        self._logged: dict[str, float] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._groups = named_param_groups(trainer.optimizers)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log(trainer, {name: float(group["lr"]) for name, group in self._groups})

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        changed = {name: group["lr"] for name, group in self._groups
                   if isinstance(group["lr"], float) and self._logged.get(name) != group["lr"]}
        if changed:
            self._log(trainer, changed)

    def _log(self, trainer: pl.Trainer, rates: dict[str, float]) -> None:
        self._logged.update(rates)
        for logger in trainer.loggers:
            logger.log_metrics(rates, step=trainer.global_step)


def named_param_groups(optimizers: list[torch.optim.Optimizer]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, parameter group)`` of every parameter group of ``optimizers``, named as above."""
    named = []
    classes = [type(optimizer).__name__ for optimizer in optimizers]
    for index, optimizer in enumerate(optimizers):
        name = f"lr-{classes[index]}"
        if repeat := classes[:index].count(classes[index]):
            name += f"-{repeat}"
        groups = optimizer.param_groups
        for number, group in enumerate(groups, start=1):
            named.append((name if len(groups) == 1 else f"{name}/{group.get('name', f'pg{number}')}", group))
    return named
