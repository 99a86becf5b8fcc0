"""Callbacks the launcher adds to every training run."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytorch_lightning as pl
import torch

from torch_lab.run_dir import RunDirectory

log = logging.getLogger(__name__)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The single-number entries of a Lightning metrics dict, as floats."""
    return {
        name: float(value)
        for name, value in metrics.items()
        if not isinstance(value, torch.Tensor) or value.numel() == 1
    }


class RunHistory(pl.Callback):
    """Write one history.csv row per training epoch: epoch, the epoch metrics, train and val
    seconds; log the row on one line."""

    def __init__(self, run: RunDirectory) -> None:
        self.run = run
        self.rows: list[dict[str, Any]] = []
        self._epoch_start = 0.0
        self._val_start = 0.0
        self._val_seconds = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._val_seconds = 0.0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_seconds += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = scalar_metrics(trainer.callback_metrics)
        if not self._val_seconds:  # no validation this epoch: don't repeat the last values
            metrics = {k: v for k, v in metrics.items() if not k.endswith("/val")}
        seconds = time.perf_counter() - self._epoch_start
        row = {
            "epoch": trainer.current_epoch,
            **dict(sorted(metrics.items())),
            "train_seconds": round(seconds - self._val_seconds, 3),
            "val_seconds": round(self._val_seconds, 3),
        }
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        self.run.write_history(self.rows)
        log.info("epoch %s: %s", row["epoch"], "  ".join(
            f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"
        ))


class CheckpointMetadata(pl.Callback):
    """Store plain-data provenance (task id, resolved hparams) in every checkpoint, so checkpoints
    load with ``torch.load(weights_only=True)``."""

    def __init__(self, task_id: str, hparams: dict[str, Any]) -> None:
        self.task_id = task_id
        self.hparams = hparams

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["torch_lab"] = {"task_id": self.task_id, "hparams": self.hparams}
