"""A toy experiment for the tests: a linear classifier on random 4-d points, seconds to train."""

import os
import signal
import time

import torch
import torchmetrics
from torch import nn
from pytorch_lightning import Callback
from torch.utils.data import DataLoader, TensorDataset
from torchdata.stateful_dataloader import StatefulDataLoader

from torch_lab.modules import LabModule, TrainLabModule
from torch_lab.schedules import warmup_cosine


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


#: Where a run sends itself a signal: TOY_SIGNAL_AT="epoch=3,batch=1,moment=batch_end,signal=15"
#: (see ``signal_at``). Tests name moments instead of timing them.
SIGNAL_AT = "TOY_SIGNAL_AT"

#: The moments, in the order they come in a training epoch. ``batch`` counts training batches
#: (validation batches for ``validation``); the ``after_*`` ones come after every callback's hook
#: (torch-lab's too), from the LightningModule's own.
MOMENTS = ("epoch_start", "fetch", "batch_start", "after_batch_start", "backward", "optimizer_step",
           "batch_end", "after_batch_end", "validation", "after_validation", "checkpoint", "epoch_end")


def signal_at():
    """``{"epoch": int, "batch": int, "moment": str, "signal": int}`` from TOY_SIGNAL_AT, or None."""
    text = os.environ.get(SIGNAL_AT)
    if not text:
        return None
    spec = dict(item.split("=") for item in text.split(","))
    at = {"epoch": int(spec.get("epoch", 0)), "batch": int(spec.get("batch", 0)),
          "moment": spec["moment"], "signal": int(spec.get("signal", signal.SIGTERM))}
    if at["moment"] not in MOMENTS:
        raise ValueError(f"{SIGNAL_AT}: unknown moment {at['moment']!r}")
    return at


class Signaller:
    """Sends the signal once, at the moment ``at`` names."""

    def __init__(self, at):
        self.at = at
        self.sent = False

    def __call__(self, trainer, moment, batch_idx=0):
        at = self.at
        if (self.sent or trainer.sanity_checking or trainer.state.fn != "fit" or moment != at["moment"]
                or trainer.current_epoch != at["epoch"] or batch_idx != at["batch"]):
            return
        self.sent = True
        os.kill(os.getpid(), at["signal"])


class SignalCallback(Callback):  # runs before torch-lab's callbacks (the experiment's come first)
    def __init__(self, send):
        self.send = send

    def on_train_epoch_start(self, trainer, pl_module):
        self.send(trainer, "epoch_start")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.send(trainer, "batch_start", batch_idx)

    def on_before_backward(self, trainer, pl_module, loss):
        self.send(trainer, "backward", trainer.fit_loop.epoch_loop.batch_idx)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.send(trainer, "optimizer_step", trainer.fit_loop.epoch_loop.batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.send(trainer, "batch_end", batch_idx)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.send(trainer, "validation", batch_idx)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self.send(trainer, "checkpoint")

    def on_train_epoch_end(self, trainer, pl_module):
        self.send(trainer, "epoch_end")


class SignalledModule(TrainLabModule):  # its hooks run after every callback's
    send = None

    def on_before_batch_transfer(self, batch, dataloader_idx):
        if self.trainer.training:  # the batch has just been fetched
            self.send(self.trainer, "fetch", self.trainer.fit_loop.epoch_loop.batch_idx + 1)
        return batch

    def on_train_batch_start(self, batch, batch_idx):
        self.send(self.trainer, "after_batch_start", batch_idx)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.send(self.trainer, "after_batch_end", batch_idx)

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        self.send(self.trainer, "after_validation", batch_idx)


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
