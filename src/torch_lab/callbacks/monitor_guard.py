"""Check the hparams ``monitor.metric`` while training: that it is logged at all (found at the
sanity-check validation where a logged name is close, i.e. a typo; else once a whole epoch logged
everything), and that its value is finite before it can pick a checkpoint."""

from __future__ import annotations

import difflib
import math
from typing import Any

import pytorch_lightning as pl

from torch_lab.errors import UserError


class MonitorGuard(pl.Callback):
    """Fail the run at a misspelt or non-finite ``monitor.metric`` before ``ModelCheckpoint``
    (which runs after this callback) saves anything for that epoch."""

    def __init__(self, source: str, metric: str) -> None:
        self.source = source
        self.metric = metric
        self._epoch_done = False

    def _missing(self, logged: list[str], final: bool) -> None:
        close = difflib.get_close_matches(self.metric, logged, n=1, cutoff=0.75)
        if close or final:
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"{self.source}: monitor.metric '{self.metric}' is not logged{hint}; "
                            f"logged: {', '.join(sorted(logged)) or 'nothing'}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != "fit":
            return
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
        self._epoch_done = True  # by the next epoch's start, this one has logged everything

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._epoch_done and self.metric not in trainer.callback_metrics:
            self._missing(list(trainer.callback_metrics), final=True)
