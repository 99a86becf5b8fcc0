"""Fail a run at its first non-finite training loss without waiting on the device at each step."""

from __future__ import annotations

from array import array
from typing import Any

import pytorch_lightning as pl
import torch

from torch_lab import console

#: Losses kept before they are folded (on the device, without a synchronisation) into the verdict.
CHUNK = 256


class NaNGuard(pl.Callback):
    """Stop the run at the first non-finite training loss, naming its step, before that state can
    reach a checkpoint: the last good checkpoint is kept.

    A step only keeps a reference to its (detached) loss; every ``CHUNK`` steps the kept losses
    are folded on the device into the index of the first non-finite one. That index is read back,
    which waits on the device, only when a checkpoint is about to be written, when validation
    starts and at each training epoch's end. By then the optimizer has stepped on the bad loss;
    no checkpoint holds that state, and the run fails naming the first bad step.

    A module optimising by hand (``automatic_optimization = False``) whose first training step
    returns no loss has nothing to guard: one line says the guard is off, and why.
    """

    def __init__(self) -> None:
        self._step = 0
        self._losses: list[torch.Tensor] = []
        self._places = array("q")  # step, batch, step, batch, ... of every loss since the last check
        self._epoch = 0
        self._first: torch.Tensor | None = None  # index of the first non-finite loss, -1: none yet
        self._value: torch.Tensor | None = None  # that loss
        self._started = False  # the run's first training step is done

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._step = trainer.global_step  # the step this batch belongs to

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        guarded = isinstance(loss, torch.Tensor) and loss.numel() == 1
        if not self._started:
            self._started = True
            if not guarded and not pl_module.automatic_optimization and trainer.is_global_zero:
                console.say("torch-lab: NaN guard off: training_step returns no loss (manual optimisation); "
                            "return the loss (a one-element tensor) to have each step's checked")
        if not guarded:
            return
        if not self._places:
            self._epoch = trainer.current_epoch
        self._losses.append(loss.detach().reshape(()))
        self._places.extend((self._step, batch_idx))
        if len(self._losses) == CHUNK:
            self._fold()

    def _fold(self) -> None:
        """Fold the kept losses into ``_first`` and ``_value``, on their device."""
        losses = torch.stack(self._losses)
        offset = len(self._places) // 2 - len(self._losses)
        self._losses = []
        bad = ~torch.isfinite(losses)
        index = torch.argmax(bad.to(torch.uint8))  # the first bad one (0 when none)
        if self._first is None:
            self._first = torch.full((), -1, dtype=torch.int64, device=losses.device)
            self._value = torch.zeros((), dtype=losses.dtype, device=losses.device)
        new = bad.any() & (self._first < 0)
        self._first = torch.where(new, index + offset, self._first)
        self._value = torch.where(new, losses.gather(0, index.reshape(1)).reshape(()), self._value)

    def check(self, trainer: pl.Trainer) -> None:
        """Raise ``FloatingPointError`` naming the first non-finite loss so far; this waits on
        the device. A bad loss fails every later check too."""
        if self._losses:
            self._fold()
        first = -1 if self._first is None else int(self._first)
        if first < 0:  # all finite: start afresh
            self._first, self._value, self._places = None, None, array("q")
            return
        step, batch = self._places[2 * first], self._places[2 * first + 1]
        raise FloatingPointError(
            f"NaN guard: the training loss is {float(self._value)} at step {step} "
            f"(epoch {self._epoch}, batch {batch}); stopped before checkpointing it"
        )

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self.check(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check(trainer)
