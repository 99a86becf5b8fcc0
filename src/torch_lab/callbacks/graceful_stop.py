"""``GracefulStop``: SIGINT and SIGTERM stop a run at the next batch boundary, saving its state."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from torch_lab.signals import STOPS

log = logging.getLogger(__name__)


class GracefulStop(pl.Callback):
    """Turn SIGINT/SIGTERM into a clean stop at the next batch boundary.

    The signal handler only sets a flag (an exception raised at an arbitrary point could leave
    ClearML's reporter holding a lock). At the next batch end the callback raises
    ``KeyboardInterrupt``, which Lightning handles as an interruption; when fitting, the current
    state is then saved to ``last_checkpoint``, so no finished batch is lost. A signal that came
    before the first batch stops the run when its Trainer starts; nothing is saved when no batch
    ran since the last checkpoint. A signal during a training run's validation stops it before
    the next training batch, once that validation and its checkpoint are done (a run resumed from
    inside a validation would skip it). A second signal interrupts at once (saying so), when it comes
    at least ``signals.REPEAT_WINDOW_S`` (2 s) after the first: signals closer together are one stop
    delivered more than once (``torch_lab.signals``; the window is the process's, the CLI's too). Taken as "stop at once", such a burst
    aborted the stop during the epoch's plots, before any checkpoint was written.

    A stop at a batch's start comes after the loader yielded that batch; a resumable loader's
    state counts it, so a checkpoint saved there would skip it on resume. So a run stops at a
    batch's start only when nothing is to be saved (e.g. right after a validation's checkpoint);
    otherwise that batch is trained and the run stops at its end. After an epoch's last batch, the
    run stops once the epoch's validation and checkpoint are done. SIGTERM is this callback's
    too: Lightning's own SIGTERM handler (which runs first, and forwards the signal to processes
    it launched) would stop the run inside a validation.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, last_checkpoint: Path | None) -> None:
        self.last_checkpoint = last_checkpoint
        self.received: int | None = None
        self._burst = STOPS  # the process's: the CLI's handler takes this stop's repeats too
        self._previous: dict[int, Any] = {}
        self._unsaved = False  # a training batch ran since the last checkpoint was written
        self._trainer: pl.Trainer | None = None

    def install(self) -> None:
        """Take over SIGINT and SIGTERM (main thread only); again after another library did."""
        for signum in self.SIGNALS:
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)

    def restore(self) -> None:
        """Give SIGINT and SIGTERM back the handlers they had before the first ``install``."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        # Should Lightning's SIGTERM handler have run (before this one was put back in front), its
        # flag would stop its loops at their next step, a validation's included (whose checkpoint
        # resumes without that validation's metrics): clear it, so SIGTERM stops where SIGINT does.
        connector = getattr(self._trainer, "_signal_connector", None)
        if connector is not None:
            connector.received_sigterm = False
        if self._burst.repeats():
            return  # the same stop, delivered again (see the class)
        if self.received is not None:
            log.warning("received %s again: stopping now, inside the batch", signal.Signals(signum).name)
            raise KeyboardInterrupt
        self.received = signum
        log.warning("received %s: stopping after this batch", signal.Signals(signum).name)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a signal came."""
        if self.received is not None:
            raise KeyboardInterrupt

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        if (self.received is not None and trainer.state.fn == "fit" and self.last_checkpoint
                and self._unsaved):
            trainer.save_checkpoint(self.last_checkpoint)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self._unsaved = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check()

    # Lightning puts its own SIGTERM handler in front once the hooks above ran; in a multi-process
    # run it broadcasts from inside the handler, which deadlocks when one node alone got the signal.
    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.install()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.install()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.install()
        self.check()

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.install()
        self.check()

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        # E.g. after a validation during which a signal came, and its checkpoint. The batch has
        # been fetched: with batches unsaved, train it and stop at its end (see the class).
        if not self._unsaved:
            self._check_all(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._unsaved = True
        # After an epoch's last batch, its validation and checkpoint come first: resumed from a
        # checkpoint of that batch's end, Lightning goes on with the next epoch without them.
        if not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._check_all(trainer)

    def _check_all(self, trainer: pl.Trainer) -> None:
        """``check`` on every rank at once when one got a signal (a signal may reach one node
        only), so that all ranks stop at the same batch and save the checkpoint together. The
        conditions above are the same on every rank, so each rank takes part in each vote."""
        if trainer.world_size > 1 and trainer.strategy.reduce_boolean_decision(
                self.received is not None, all=False) and self.received is None:
            self.received = 0  # another rank's signal
            self._burst.begin()
        self.check()

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.state.fn != "fit":
            self.check()

    def on_test_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.check()

    def on_predict_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.check()
