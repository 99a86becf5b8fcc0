"""Checkpoints: Lightning's ``ModelCheckpoint`` with a cached state key, and the provenance
(task id, hparams) stored in each checkpoint."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class Checkpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with its ``state_key`` built once: Lightning formats it at
    every hook call (six a step), from settings that do not change. The key is
    ``ModelCheckpoint``'s own, so checkpoints hold the same state either way."""

    @property
    def state_key(self) -> str:
        if "_state_key" not in self.__dict__:
            key = super().state_key  # "<class name>{settings}"
            self.__dict__["_state_key"] = "ModelCheckpoint" + key[len(type(self).__qualname__):]
        return self.__dict__["_state_key"]


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
