"""Check the hparams ``monitor.metric`` while training: that it is logged at all (found at the
sanity-check validation when a logged name is close, i.e. a typo; else at the end of the first
epoch that validated, before any checkpoint or early stopping looks for it), and that its value
is finite before it can pick a checkpoint."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl

from torch_lab.errors import UserError, did_you_mean


class MonitorGuard(pl.Callback):
    """Fail the run at a misspelt or non-finite ``monitor.metric`` before ``ModelCheckpoint``
    (which runs after this callback) saves anything for that epoch."""

    def __init__(self, source: str, metric: str) -> None:
        self.source = source
        self.metric = metric
        self._validated = False  # a validation of fit (not the sanity check) has logged its metrics

    def _missing(self, logged: list[str], final: bool) -> None:
        hint = did_you_mean(self.metric, sorted(logged), listing=False)
        if hint or final:
            raise UserError(f"{self.source}: monitor.metric '{self.metric}' is not logged{hint}; "
                            f"logged: {', '.join(sorted(logged)) or 'nothing'}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != "fit":
            return
        self._validated = self._validated or not trainer.sanity_checking
        metrics: dict[str, Any] = trainer.callback_metrics
        if self.metric not in metrics:
            # Training metrics are logged at the epoch's end, after the sanity check and validation.
            if trainer.sanity_checking and not self.metric.endswith("/train"):
                self._missing(list(metrics), final=False)
            return
        value = float(metrics[self.metric])
        if not trainer.sanity_checking and not math.isfinite(value):
            raise FloatingPointError(
                f"NaN guard: the monitored {self.metric} is {value} at epoch {trainer.current_epoch} "
                "(validation); stopped before checkpointing it")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning calls this before the module's own on_train_epoch_end and before the callbacks
        # that monitor (ModelCheckpoint, EarlyStopping): all is logged unless the module's hook logs more.
        own_hook = type(pl_module).on_train_epoch_end is not pl.LightningModule.on_train_epoch_end
        if self._validated and not own_hook and self.metric not in trainer.callback_metrics:
            self._missing(list(trainer.callback_metrics), final=True)
