"""The run on the console: a header when Lightning starts, then a progress bar on a terminal, or
one progress line every ``PROGRESS_LINE_INTERVAL_S`` seconds into a file or pipe (no redraws
there), and a summary at the end."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytorch_lightning as pl
from pytorch_lightning.callbacks.progress import ProgressBar as LightningProgressBar

from torch_lab import console
from torch_lab.callbacks import ProgressBar

#: Seconds between progress lines when the console is not a terminal (env TORCH_LAB_PROGRESS_INTERVAL).
PROGRESS_LINE_INTERVAL_S = 30.0


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
    ``epoch 2: 120/430 batches (28%), 35.1 batches/s, loss/train=0.31``."""

    def __init__(self, interval: float | None = None) -> None:
        super().__init__()
        self.interval = interval if interval is not None else float(
            os.environ.get("TORCH_LAB_PROGRESS_INTERVAL", PROGRESS_LINE_INTERVAL_S))
        self._enabled = True
        self._last = time.monotonic()
        self._stage_start = self._last

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        return _without_version(super().get_metrics(trainer, pl_module))

    def _start(self, *args: Any) -> None:
        self._stage_start = time.monotonic()

    on_train_epoch_start = on_validation_epoch_start = on_test_epoch_start = on_predict_epoch_start = _start

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
        shown = "".join(f", {k}={v:.4g}" if isinstance(v, float) else f", {k}={v}" for k, v in values.items())
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


class RunHeader(pl.Callback):
    """The header's second line, once Lightning knows the device: task name and project, online
    or offline, device, precision and parameter count."""

    def __init__(self) -> None:
        self._shown = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._shown or not trainer.is_global_zero:
            return
        self._shown = True
        from clearml import Task

        task = Task.current_task()
        where = "offline" if Task.is_offline() else "online"
        name = f"{task.name} ({task.get_project_name()}), {where}" if task is not None else where
        total = sum(p.numel() for p in pl_module.parameters())
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        device = trainer.strategy.root_device
        devices = f" x {trainer.num_devices * trainer.num_nodes}" if trainer.world_size > 1 else ""
        params = f"{total:,} parameters" + (f" ({trainable:,} trainable)" if trainable != total else "")
        console.say(f"torch-lab: {name}; {device.type}{devices}, precision {trainer.precision}; {params}")


def console_callbacks(init: dict[str, Any], callbacks: list[pl.Callback]) -> list[pl.Callback]:
    """The header, and the progress display unless ``trainer.init`` turns the bar off or the
    experiment brings its own: a bar on a terminal, progress lines otherwise."""
    header: list[pl.Callback] = [RunHeader()]
    if init.get("enable_progress_bar", True) is False or any(
            isinstance(c, LightningProgressBar) for c in callbacks):
        return header
    active = console.current()
    interactive = active.interactive if active is not None else sys.stderr.isatty()
    return [*header, TerminalBar() if interactive else ProgressLines()]


def summary(task_id: str, status: str, record: dict[str, Any], run_path: Path,
            session_zip: Path | None) -> None:
    """The end of a run: its outcome, best value, test metrics and duration, where everything
    is, and how to import an offline session. A failed run first shows the last warnings that
    went to console.log only."""
    active = console.current()
    if status == "failed" and active is not None and active.hidden:
        console.say(f"torch-lab: the last warnings in {run_path / console.LOG_NAME}:")
        for line in active.hidden:
            console.say(f"  {line}")
    parts = [f"torch-lab: {status}"]
    if active is not None:
        parts[0] += f" in {_duration(time.monotonic() - active.started)}"
    best = record.get("best") or {}
    if isinstance(best.get("value"), (int, float)):
        parts.append(f"best {best['monitor']}={best['value']:.4g} (epoch {best.get('epoch')})")
    tests = {k: v for k, v in (record.get("metrics") or {}).items() if k.endswith("/test")}
    if tests:
        parts.append("test " + " ".join(f"{k}={v:.4g}" for k, v in sorted(tests.items())))
    console.say("; ".join(parts))
    console.say(f"torch-lab: task {task_id} {status}; run directory {run_path}")
    if session_zip:
        console.say(f"torch-lab: ClearML offline session {session_zip}; import it with: "
                    f"clearml-task --import-offline-session {session_zip}")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}" if minutes \
        else f"{seconds} s"
