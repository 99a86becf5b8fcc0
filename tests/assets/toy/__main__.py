"""A toy experiment for the tests: a linear classifier on random 4-d points, seconds to train."""

import time

import torch
import torchmetrics
from torch import nn
from pytorch_lightning import Callback
from torch.utils.data import DataLoader, TensorDataset
from torchdata.stateful_dataloader import StatefulDataLoader

from torch_lab.modules import LabModule, TrainLabModule
from torch_lab.schedules import warmup_cosine

from .signals import SignalCallback, SignalledModule, Signaller, signal_at


def points(n, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


class Noisy(torch.utils.data.Dataset):  # draws from the global torch generator at every sample
    def __init__(self, dataset, scale):
        self.dataset, self.scale = dataset, scale

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        x, y = self.dataset[index]
        return x + self.scale * torch.randn(x.shape), y


class Broken(torch.utils.data.Dataset):  # a dataset whose samples raise (in a worker)
    def __len__(self):
        return 32

    def __getitem__(self, index):
        raise ValueError("bad sample")



SCHEDULES = {
    "step": lambda lr: {"optimizer": torch.optim.SGD, "optimizer_kwargs": {"lr": lr},
                        "scheduler": torch.optim.lr_scheduler.StepLR,
                        "scheduler_kwargs": {"step_size": 1, "gamma": 0.5}},
    "warmup_cosine": lambda lr: {"optimizer": torch.optim.SGD, "optimizer_kwargs": {"lr": lr},
                                 "scheduler": warmup_cosine, "interval": "step",
                                 "scheduler_kwargs": {"warmup_steps": 3, "total_steps": 12}},
}


def train_config(hparams):
    config = hparams["config"]
    at = signal_at()
    module = (SignalledModule if at else TrainLabModule)(
        nn.Linear(4, 2),
        loss_function=nn.CrossEntropyLoss(),
        optimizer_config=SCHEDULES[config["schedule"]](config["lr"]),
        metrics={"accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=2)},
    )
    result = dict(
        module=module,
        train_dataloaders=(StatefulDataLoader if config["stateful_loader"] else DataLoader)(
            Noisy(points(64, 0), config["noise"]) if config.get("noise") else points(64, 0),
            batch_size=16, shuffle=True, num_workers=config.get("num_workers", 0)),
        val_dataloaders=DataLoader(Broken(), batch_size=16, num_workers=1) if config.get("val_worker_raises")
        else DataLoader(points(32, 1), batch_size=16),
        test_dataloaders=DataLoader(points(32, 2), batch_size=16),
    )
    callbacks = []
    if at:
        module.send = send = Signaller(at)
        callbacks.append(SignalCallback(send))
    if config.get("crash_at_epoch") is not None:
        class Crash(Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                if trainer.current_epoch == config["crash_at_epoch"] and config.get("crash_rank") in (
                        None, trainer.global_rank):
                    raise RuntimeError("injected crash")

        callbacks.append(Crash())
    if config.get("batch_sleep"):
        class Slow(Callback):  # gives a test time to interrupt the run mid-epoch
            def on_train_batch_end(self, *args):
                time.sleep(config["batch_sleep"])

        callbacks.append(Slow())
    if config.get("nan_at_step") is not None:
        class Poison(Callback):  # makes the loss NaN from that step on
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if trainer.global_step == config["nan_at_step"]:
                    with torch.no_grad():
                        pl_module.model.weight.fill_(float("nan"))

        callbacks.append(Poison())
    if config.get("setup_sleep") or config.get("val_batch_sleep"):
        class Pause(Callback):  # gives a test time to signal the run before training, or in validation
            def setup(self, trainer, pl_module, stage):
                time.sleep(config.get("setup_sleep") or 0)

            def on_validation_batch_end(self, *args):
                time.sleep(config.get("val_batch_sleep") or 0)

        callbacks.append(Pause())
    if config.get("nan_val_at_epoch") is not None:
        class PoisonValidation(Callback):  # makes that epoch's validation loss NaN
            def on_validation_start(self, trainer, pl_module):
                if trainer.current_epoch == config["nan_val_at_epoch"] and not trainer.sanity_checking:
                    with torch.no_grad():
                        pl_module.model.weight.fill_(float("nan"))

        callbacks.append(PoisonValidation())
    result["callbacks"] = callbacks
    return result


def infer_config(hparams, count):
    return dict(
        module=LabModule(nn.Linear(4, 2)),
        predict_dataloaders=DataLoader(points(int(count), 3), batch_size=8),
    )
