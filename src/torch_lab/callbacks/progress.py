"""The run on the console: a header when Lightning starts, then a progress bar on a terminal, or
one progress line every ``TORCH_LAB_PROGRESS_INTERVAL`` seconds into a file or pipe (no redraws
there), and a summary at the end."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress import ProgressBar as LightningProgressBar

from torch_lab import console
from torch_lab.console.interval import progress_interval
from torch_lab.callbacks.header import RunHeader

#: Seconds between redraws of the training progress bar.
PROGRESS_REFRESH_S = 0.25


def _without_version(metrics: dict[str, Any]) -> dict[str, Any]:
    metrics.pop("v_num", None)  # the logger's version: the task id, already in the header
    return metrics


@contextmanager
def _onto_terminal() -> Iterator[None]:
    """While a bar is created: ``sys.stdout`` is the terminal's stderr, which the bar keeps (its
    redraws stay out of console.log)."""
    active = console.current()
    saved = sys.stdout
    if active is not None:
        sys.stdout = active.stderr  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout = saved


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


class TerminalBar(ProgressBar):
    """torch-lab's throttled TQDM bars, drawn on the terminal directly, without ``v_num``."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        return _without_version(super().get_metrics(trainer, pl_module))

    def init_sanity_tqdm(self) -> Any:
        with _onto_terminal():
            return super().init_sanity_tqdm()

    def init_train_tqdm(self) -> Any:
        with _onto_terminal():
            return super().init_train_tqdm()

    def init_validation_tqdm(self) -> Any:
        with _onto_terminal():
            return super().init_validation_tqdm()

    def init_test_tqdm(self) -> Any:
        with _onto_terminal():
            return super().init_test_tqdm()

    def init_predict_tqdm(self) -> Any:
        with _onto_terminal():
            return super().init_predict_tqdm()


class ProgressLines(LightningProgressBar):
    """Without a terminal: one line per ``interval`` seconds, e.g.
    ``epoch 2: 120/430 batches (28%), 35.1 batches/s, loss/train=0.31; epoch 1's validation:
    loss/val=0.35`` (an earlier epoch's values labelled as such)."""

    def __init__(self, interval: float | None = None) -> None:
        super().__init__()
        self.interval = interval if interval is not None else progress_interval()
        self._enabled = True
        self._last = time.monotonic()
        self._stage_start = self._last
        self._before: dict[str, Any] = {}
        self._validated: tuple[int, set[str]] = (-1, set())  # the last validation's epoch and metrics

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        return _without_version(super().get_metrics(trainer, pl_module))

    def _start(self, *args: Any) -> None:
        self._stage_start = time.monotonic()

    on_train_epoch_start = on_test_epoch_start = on_predict_epoch_start = _start

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start()
        self._before = dict(self.get_metrics(trainer, pl_module))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            missing = object()
            self._validated = (trainer.current_epoch, {key for key, value in self.get_metrics(trainer, pl_module).items()
                                                       if self._before.get(key, missing) != value})

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str, done: int,
                dataloader_idx: int | None = None) -> None:
        now = time.monotonic()
        if not self._enabled or trainer.sanity_checking or now - self._last < self.interval:
            return
        self._last = now
        if dataloader_idx is not None:
            self._current_eval_dataloader_idx = dataloader_idx
        total = {"validation": lambda: self.total_val_batches_current_dataloader,
                 "test": lambda: self.total_test_batches_current_dataloader,
                 "predict": lambda: self.total_predict_batches_current_dataloader}.get(
                     stage, lambda: self.total_train_batches)()
        known = isinstance(total, int) or (isinstance(total, float) and total != float("inf"))
        count = f"{done}/{int(total)} batches ({100 * done / total:.0f}%)" if known and total else f"{done} batches"
        rate = done / max(now - self._stage_start, 1e-9)
        values = self.get_metrics(trainer, pl_module) if dataloader_idx is None else {}
        epoch, validated = self._validated
        earlier = {k: values.pop(k) for k in list(values) if k in validated} if epoch < trainer.current_epoch else {}
        shown = "".join(f", {_shown(k, v)}" for k, v in values.items())
        if earlier:
            shown += f"; epoch {epoch}'s validation: " + ", ".join(_shown(k, v) for k, v in earlier.items())
        console.say(f"{stage}: {count}, {rate:.1f} batches/s{shown}")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._report(trainer, pl_module, f"epoch {trainer.current_epoch}", batch_idx + 1)

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._report(trainer, pl_module, "validation", batch_idx + 1, dataloader_idx)

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._report(trainer, pl_module, "test", batch_idx + 1, dataloader_idx)

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                             batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._report(trainer, pl_module, "predict", batch_idx + 1, dataloader_idx)


def _shown(key: str, value: Any) -> str:
    return f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"


def progress_display(init: dict[str, Any], callbacks: list[pl.Callback]) -> list[pl.Callback]:
    """The progress display unless ``trainer.init`` turns the bar off or the experiment brings its
    own: a bar on a terminal, progress lines otherwise."""
    if init.get("enable_progress_bar", True) is False or any(
            isinstance(c, LightningProgressBar) for c in callbacks):
        return []
    return [TerminalBar() if interactive() else ProgressLines()]


def interactive() -> bool:
    """Whether the console is a terminal (bars redraw there; in a pipe or file they are noise)."""
    active = console.current()
    return active.interactive if active is not None else sys.stderr.isatty()


def console_callbacks(init: dict[str, Any], callbacks: list[pl.Callback]) -> list[pl.Callback]:
    """The header and the progress display (see ``progress_display``)."""
    return [RunHeader(), *progress_display(init, callbacks)]
