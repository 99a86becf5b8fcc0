"""Keep the ClearML task in step with the checkpoints: what a checkpoint holds is on the task,
and what was reported after it is dropped when a run resumes from it.

Before each checkpoint is written, ClearML's queued events are written out (and waited for). A run
resumed from a checkpoint first drops from the offline session's ``metrics.jsonl`` the events of
the steps the checkpoint does not hold (a checkpoint at global step S holds steps 0 to S-1, and
step k's events are reported at iteration k): the resumed run reports them again. So every
checkpointed step's metrics are on the task exactly once, however the previous process died,
including those Lightning logs after saving the checkpoint (an epoch's training metrics, at its
last step): the resumed run does not log them again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from clearml import Task

from torch_lab.errors import UserError
from torch_lab.storage.atomic import write_atomic
from torch_lab.tracking import deadline

log = logging.getLogger(__name__)

def offline_metrics(task: Task) -> Path | None:
    """The offline session's metrics file of ``task`` (None online)."""
    folder = task.get_offline_mode_folder() if Task.is_offline() else None
    return Path(folder) / "metrics.jsonl" if folder else None


class FlushBeforeCheckpoint(pl.Callback):
    """Write the task's queued events before every checkpoint (and each epoch's at the next start)."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if not trainer.is_global_zero:
            return
        deadline.bounded(self.task, "the metrics before this checkpoint",
                         lambda: self.task.flush(wait_for_uploads=True))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The previous epoch's training metrics are logged after its checkpoint: send them now.
        if trainer.is_global_zero:
            self.task.flush()


def rewind_offline_metrics(session_folder: Path, checkpoint: Path) -> None:
    """Drop from ``session_folder``'s metrics.jsonl the events of the steps from ``checkpoint``'s
    global step on, and a torn last line (a process killed mid-write), as a database drops a torn
    log tail (rewritten atomically; nothing to do without the file). Any other line that is not
    JSON is a ``UserError`` naming the file and the line."""
    metrics = session_folder / "metrics.jsonl"
    if not metrics.is_file():
        return
    step = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    lines = metrics.read_text().splitlines()
    kept, dropped = [], 0
    for number, line in enumerate(lines, 1):
        try:
            events = json.loads(line)
        except ValueError:
            if number < len(lines):
                raise UserError(f"{metrics}: line {number} is not JSON; the offline session is "
                                "damaged (move it away to resume without it)") from None
            log.warning("dropping the torn last line of %s (a write cut short)", metrics)
            dropped += 1
            continue
        before = [e for e in events if not isinstance(e.get("iter"), int) or e["iter"] < step]
        dropped += len(events) - len(before)
        if before:
            kept.append(json.dumps(before))
    if dropped:
        log.debug("dropping %d events of steps from %d on, not in %s", dropped, step, checkpoint)
        write_atomic(metrics, "".join(f"{line}\n" for line in kept))
