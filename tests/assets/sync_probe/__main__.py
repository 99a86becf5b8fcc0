"""Counts the calls that wait on a device (``Tensor.item``, ``tolist``, ``cpu``, ``bool()``,
``float()``, ``int()``) that torch-lab's code makes during training steps, in a real ``train`` run:
from the first callback's ``on_train_batch_start`` to the module's ``on_train_batch_end``, which
Lightning calls after every callback's. A call counts when the first library frame above it is
torch-lab's (torch-lab itself, or torchmetrics called by torch-lab), not Lightning's. At the first
step the probe plants one such call (``scalar_metrics`` on a tensor) to show the counting works.
The calls are written as JSON to ``config.report`` when training ends."""

import json
import sys

import torch
import torchmetrics
from pytorch_lightning import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torch_lab.callbacks.history import scalar_metrics
from torch_lab.modules import TrainLabModule
from torch_lab.schedules import warmup_cosine

SYNCS = ("item", "tolist", "cpu", "__bool__", "__float__", "__int__")
window = {"open": False, "steps": 0}
calls = []


def counting(name):
    original = getattr(torch.Tensor, name)

    def counted(self, *args, **kwargs):
        if window["open"]:
            frame = sys._getframe(1)
            while frame is not None:
                module = frame.f_globals.get("__name__", "")
                if module.startswith(("torch_lab", "pytorch_lightning", "lightning")):
                    if module.startswith("torch_lab"):
                        calls.append(f"{name} in {module}.{frame.f_code.co_name}")
                    break
                frame = frame.f_back
        return original(self, *args, **kwargs)

    return counted


class Probed(TrainLabModule):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        window["open"] = False


class Window(Callback):
    def __init__(self, report):
        self.report = report

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        window["open"] = True
        window["steps"] += 1
        if window["steps"] == 1:
            scalar_metrics({"planted": torch.ones(())})

    def on_train_end(self, trainer, pl_module):
        with open(self.report, "w") as handle:
            json.dump({"steps": window["steps"], "calls": calls}, handle)


def points(n, seed):
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


def train_config(hparams):
    for name in SYNCS:
        setattr(torch.Tensor, name, counting(name))
    module = Probed(
        nn.Linear(4, 2), nn.CrossEntropyLoss(),
        {"optimizer": torch.optim.SGD, "optimizer_kwargs": {"lr": 0.1}, "scheduler": warmup_cosine,
         "scheduler_kwargs": {"warmup_steps": 3, "total_steps": 12}, "interval": "step"},
        metrics={"accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=2)},
    )
    return dict(module=module, train_dataloaders=DataLoader(points(96, 0), batch_size=16, shuffle=True),
                val_dataloaders=DataLoader(points(32, 1), batch_size=16),
                callbacks=[Window(hparams["config"]["report"])])
