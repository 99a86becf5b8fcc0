"""Named moments at which the toy run sends itself a signal, so tests choose where a run is
interrupted instead of timing it (kept out of __main__.py, whose source every task stores)."""

import os
import signal

from pytorch_lightning import Callback

from torch_lab.modules import TrainLabModule


#: Where a run sends itself a signal: TOY_SIGNAL_AT="epoch=3,batch=1,moment=batch_end,signal=15"
#: (see ``signal_at``; ``repeat=3`` sends it three times in a row, as a killed parent's Linux
#: does). Tests name moments instead of timing them.
SIGNAL_AT = "TOY_SIGNAL_AT"

#: The moments, in the order they come in a training epoch. ``batch`` counts training batches
#: (validation batches for ``validation``); the ``after_*`` ones come after every callback's hook
#: (torch-lab's too), from the LightningModule's own.
MOMENTS = ("epoch_start", "fetch", "batch_start", "after_batch_start", "backward", "optimizer_step",
           "batch_end", "after_batch_end", "validation", "after_validation", "checkpoint", "epoch_end")


def signal_at():
    """``{"epoch": int, "batch": int, "moment": str, "signal": int, "repeat": int}`` from
    TOY_SIGNAL_AT, or None."""
    text = os.environ.get(SIGNAL_AT)
    if not text:
        return None
    spec = dict(item.split("=") for item in text.split(","))
    at = {"epoch": int(spec.get("epoch", 0)), "batch": int(spec.get("batch", 0)),
          "moment": spec["moment"], "signal": int(spec.get("signal", signal.SIGTERM)),
          "repeat": int(spec.get("repeat", 1))}
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
        for _ in range(at["repeat"]):
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
