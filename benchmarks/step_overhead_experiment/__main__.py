"""A model so small that a training step is mostly framework overhead: its pieces are shared by
every variant of ``benchmarks/step_overhead.py`` (hand-written, bare Lightning, ``train``)."""

from __future__ import annotations

import collections
import json
import sys
import time
from typing import Any

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torch_lab.modules import TrainLabModule

BATCH_SIZE = 32
FEATURES, CLASSES = 32, 10
LEARNING_RATE = 0.05
TIMED_EPOCH = 1  # the second: the first pays one-off costs (first kernels, allocator, imports)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, CLASSES))


def loader(steps: int, seed: int = 0) -> DataLoader:
    """``steps`` batches of random points labelled by their largest feature (learnable)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(steps * BATCH_SIZE, FEATURES, generator=generator)
    return DataLoader(TensorDataset(x, x[:, :CLASSES].argmax(dim=1)), batch_size=BATCH_SIZE, shuffle=True)


def accuracy() -> torchmetrics.Metric:
    return torchmetrics.Accuracy(task="multiclass", num_classes=CLASSES)


def clocks() -> dict[str, float]:
    """Wall seconds and the CPU seconds of this process (all its threads)."""
    return {"seconds": time.perf_counter(), "cpu_seconds": time.process_time()}


class EpochTimer(pl.Callback):
    """Wall and CPU seconds of the timed epoch, from its start to the end of training (the
    epoch-end work, checkpoints included), written as JSON to ``path``."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._start = clocks()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == TIMED_EPOCH:
            self._start = clocks()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.path:
            end = clocks()
            with open(self.path, "w") as handle:
                json.dump({"steps": trainer.num_training_batches,
                           **{name: end[name] - self._start[name] for name in end}}, handle)


class CallCounter(pl.Callback):
    """Count the Python function calls of this thread (``sys.setprofile``'s ``call`` events) over
    ``window`` training steps of the timed epoch, from the start of its step ``first`` to the start
    of step ``first + window``: every hook of every callback, the module, the optimizer, the
    logger. Written to ``path`` as JSON: calls per (file, function) and the window's length."""

    def __init__(self, path: str, first: int = 10, window: int = 100) -> None:
        self.path, self.first, self.window = path, first, window
        self.counts: collections.Counter = collections.Counter()

    def _count(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            self.counts[frame.f_code] += 1

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.current_epoch != TIMED_EPOCH:
            return
        if batch_idx == self.first:
            sys.setprofile(self._count)
        elif batch_idx == self.first + self.window:
            sys.setprofile(None)
            calls = [{"file": code.co_filename, "function": code.co_qualname, "calls": n}
                     for code, n in self.counts.most_common()]
            with open(self.path, "w") as handle:
                json.dump({"steps": self.window, "calls": calls}, handle)


def train_config(hparams: dict[str, Any]) -> dict[str, Any]:
    config = hparams["config"]
    module = TrainLabModule(
        mlp(), nn.CrossEntropyLoss(),
        {"optimizer": torch.optim.SGD, "optimizer_kwargs": {"lr": LEARNING_RATE}},
        metrics={"accuracy": accuracy()} if config["metric"] else None,
    )
    return dict(module=module, train_dataloaders=loader(config["steps"]),
                val_dataloaders=loader(1, seed=1),
                callbacks=[EpochTimer(config["timing_file"]),
                           *([CallCounter(config["calls_file"])] if config.get("calls_file") else [])])
