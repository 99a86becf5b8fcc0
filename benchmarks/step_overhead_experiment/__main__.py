"""A model so small that a training step is mostly framework overhead: its pieces are shared by
every variant of ``benchmarks/step_overhead.py`` (hand-written, bare Lightning, ``train``)."""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
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
    """Wall seconds, the CPU seconds of this process (all its threads) and of this thread alone."""
    return {"seconds": time.perf_counter(), "cpu_seconds": time.process_time(),
            "thread_cpu_seconds": time.thread_time()}


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user and system) of each of this process's threads, by native thread id, from
    ``/proc/self/task/*/stat`` (Linux; clock-tick resolution, 10 ms)."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        seconds[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return seconds


def thread_owners() -> dict[int, str]:
    """The package each Python thread runs code of (its target's, else its class's): ``clearml``,
    ``torch_lab``, ...; this (the training) thread is ``training``."""
    owners = {}
    for thread in threading.enumerate():
        if thread.native_id is None:
            continue
        code = getattr(thread, "_target", None)
        owner = (getattr(code, "__module__", None) if code is not None else None) or type(thread).__module__
        owners[thread.native_id] = owner.split(".")[0]
    owners[threading.get_native_id()] = "training"
    return owners


def cpu_by_owner(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    """CPU seconds spent between two ``thread_cpu`` readings, summed by ``thread_owners``; threads
    that are not Python threads (torch's intra-op pool, native libraries) are ``native``."""
    owners = thread_owners()
    spent: dict[str, float] = collections.Counter()
    for tid, seconds in after.items():
        spent[owners.get(tid, "native")] += seconds - before.get(tid, 0.0)
    return dict(spent)


class EpochTimer(pl.Callback):
    """Wall and CPU seconds of the timed epoch, from its start to the end of training (the
    epoch-end work, checkpoints included), and every thread's CPU seconds by owner, written as
    JSON to ``path``."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._start, self._threads = clocks(), thread_cpu()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == TIMED_EPOCH:
            self._start, self._threads = clocks(), thread_cpu()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.path:
            end, threads = clocks(), thread_cpu()
            with open(self.path, "w") as handle:
                json.dump({"steps": trainer.num_training_batches,
                           **{name: end[name] - self._start[name] for name in end},
                           "threads": cpu_by_owner(self._threads, threads)}, handle)


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
