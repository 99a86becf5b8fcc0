"""Callbacks the launcher adds to every training run."""

from __future__ import annotations

import csv
import logging
import random
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar

from torch_lab.learning_rates import named_param_groups
from torch_lab.run_dir import RunDirectory

log = logging.getLogger(__name__)

#: Seconds between redraws of the training progress bar.
PROGRESS_REFRESH_S = 0.25


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The single-number entries of a Lightning metrics dict, as floats."""
    return {
        name: float(value)
        for name, value in metrics.items()
        if not isinstance(value, torch.Tensor) or value.numel() == 1
    }


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM bars (rate, ETA, metrics), redrawn at most every ``interval`` seconds and
    at each loop's last batch: redrawing after every batch costs fast steps a measurable share of
    their time."""

    def __init__(self, interval: float = PROGRESS_REFRESH_S) -> None:
        super().__init__()
        self.interval = interval
        self._drawn = float("-inf")  # the first batch is always drawn

    def _due(self, bar: Any, batch_idx: int) -> bool:
        now = time.monotonic()
        if now - self._drawn >= self.interval or batch_idx + 1 == bar.total:
            self._drawn = now
            return True
        return False

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self._due(self.train_progress_bar, batch_idx):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._due(self.val_progress_bar, batch_idx):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._due(self.test_progress_bar, batch_idx):
            super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                             batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._due(self.predict_progress_bar, batch_idx):
            super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)


class RunHistory(pl.Callback):
    """Write one history.csv row per training epoch (epoch, the epoch metrics, train and val
    seconds) and log a one-line report: the metrics, the durations, the best so far, the
    early-stopping counter and the expected end time."""

    def __init__(self, run: RunDirectory, monitor: dict[str, Any]) -> None:
        self.run = run
        self.monitor = monitor
        history = run.path / "history.csv"
        # A resumed run continues its history; re-run epochs replace their rows.
        self.rows: list[dict[str, Any]] = list(csv.DictReader(open(history))) if history.is_file() else []
        self._epoch_start = 0.0
        self._val_start = 0.0
        self._val_seconds = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()  # a run resumed mid-epoch starts no new epoch

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
        # The epoch's learning rates (Python floats: no device sync), logged only when they change.
        metrics.update((name, float(group["lr"])) for name, group in named_param_groups(trainer.optimizers))
        row = {
            "epoch": trainer.current_epoch,
            **dict(sorted(metrics.items())),
            "train_seconds": round(seconds - self._val_seconds, 3),
            "val_seconds": round(self._val_seconds, 3),
        }
        self.rows = [r for r in self.rows if int(r["epoch"]) < row["epoch"]] + [row]
        self.run.write_history(self.rows)
        log.info("%s", self.report(trainer, row))

    def report(self, trainer: pl.Trainer, row: dict[str, Any]) -> str:
        """One line: epoch, metrics, durations, best so far, early-stopping counter, expected end."""
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        metrics = "  ".join(f"{k}={v:.4g}" for k, v in row.items() if "/" in k)
        parts = [f"epoch {row['epoch']}{f'/{epochs - 1}' if epochs else ''}: {metrics}",
                 f"{row['train_seconds']:.1f} s train + {row['val_seconds']:.1f} s val"]
        metric, mode = self.monitor["metric"], self.monitor["mode"]
        best = self.best_epoch(metric, mode)
        if best is not None:
            value = next(float(r[metric]) for r in self.rows if int(r["epoch"]) == best)
            parts.append(f"best {metric}={value:.4g} (epoch {best})")
            if self.monitor["patience"] is not None:  # early stopping's counter, from the history
                parts.append(f"no improvement {row['epoch'] - best}/{self.monitor['patience']}")
        if epochs:
            durations = [float(r["train_seconds"]) + float(r["val_seconds"]) for r in self.rows]
            remaining = (epochs - 1 - row["epoch"]) * sum(durations) / len(durations)
            parts.append(f"ends ~{datetime.now() + timedelta(seconds=remaining):%H:%M:%S}")
        return " | ".join(parts)


    def best_epoch(self, metric: str, mode: str) -> int | None:
        """The epoch with the best ``metric`` in history (the first one on ties, as
        ``ModelCheckpoint`` keeps it); None when the metric was never logged."""
        scored = [(float(row[metric]), int(row["epoch"])) for row in self.rows
                  if row.get(metric) not in (None, "")]
        if not scored:
            return None
        sign = 1 if mode == "min" else -1
        return min(scored, key=lambda pair: (sign * pair[0], pair[1]))[1]


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


class GracefulStop(pl.Callback):
    """Turn SIGINT/SIGTERM into a clean stop at the next batch boundary.

    The signal handler only sets a flag (an exception raised at an arbitrary point could leave
    ClearML's reporter holding a lock). At the next batch end the callback raises
    ``KeyboardInterrupt``, which Lightning handles as an interruption; when fitting, the current
    state is then saved to ``last_checkpoint``, so no finished batch is lost. A signal that came
    before the first batch stops the run when its Trainer starts; nothing is saved when no batch
    ran since the last checkpoint. A signal during a training run's validation stops it before
    the next training batch, once that validation and its checkpoint are done (a run resumed from
    inside a validation would skip it). A second signal interrupts at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, last_checkpoint: Path | None) -> None:
        self.last_checkpoint = last_checkpoint
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._unsaved = False  # a training batch ran since the last checkpoint was written

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
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        log.warning("received %s: stopping after this batch", signal.Signals(signum).name)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a signal came."""
        if self.received is not None:
            raise KeyboardInterrupt

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        # Lightning's own SIGTERM handling may stop the loop first; either way, save when fitting.
        if (self.received is not None and trainer.state.fn == "fit" and self.last_checkpoint
                and self._unsaved):
            trainer.save_checkpoint(self.last_checkpoint)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self._unsaved = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check()

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check()

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self.check()  # e.g. after a validation during which a signal came, and its checkpoint

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._unsaved = True
        self.check()

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.state.fn != "fit":
            self.check()

    def on_test_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.check()

    def on_predict_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.check()


class RandomState(pl.Callback):
    """Keep the global random generators (torch, Python, NumPy) in checkpoints, as plain data, so
    a run resumed from an epoch-end checkpoint shuffles, drops out and augments exactly as the
    uninterrupted run would have."""

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = random.getstate()
        name, keys, position, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": [version, list(internal), gauss],
            "numpy": [name, keys.tolist(), int(position), int(has_gauss), float(cached)],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        name, keys, position, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
