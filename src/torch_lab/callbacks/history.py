"""``RunHistory``: history.csv, one row per training epoch, and the epoch's report line."""

from __future__ import annotations

import csv
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import pytorch_lightning as pl
import torch

from torch_lab.callbacks.learning_rates import named_param_groups
from torch_lab.storage.run_dir import RunDirectory

log = logging.getLogger(__name__)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The single-number entries of a Lightning metrics dict, as floats."""
    return {
        name: float(value)
        for name, value in metrics.items()
        if not isinstance(value, torch.Tensor) or value.numel() == 1
    }


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
