"""Where a training run starts: an earlier task's checkpoint, or the unfinished run it resumes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch_lab import checkpoints
from torch_lab.errors import UserError, display_path
from torch_lab.experiment import Experiment
from torch_lab.run_dir import RunDirectory, artifacts_root, find_run_dir, runs_of


@dataclass
class StartPoint:
    """The checkpoint a training run starts from."""

    path: Path
    weights_only: bool  # True: weights only, fresh schedule; False: the full training state
    label: str  # for messages
    parent: dict[str, Any] | None = None  # lineage, when it comes from another task


def from_task(hparams: dict[str, Any]) -> StartPoint | None:
    """The start point named by the hparams ``checkpoint`` block, if any."""
    block = hparams["checkpoint"]
    if not block["checkpoint_task_id"]:
        return None
    task_id, name = block["checkpoint_task_id"], block["checkpoint_name"]
    path = checkpoints.resolve_checkpoint(task_id, name)
    return StartPoint(path, block["weights_only"], f"checkpoint task '{task_id}' ('{name}', {path})",
                      {"task_id": task_id, "checkpoint": name, "path": str(path),
                       "weights_only": block["weights_only"]})


def resumable(experiment: Experiment, task_id: str) -> RunDirectory:
    """The run ``--resume [TASK_ID]`` continues: that task's, or the latest unfinished run of the
    hparams file."""
    if task_id:
        path = find_run_dir(task_id)
        if path is None:
            raise UserError(f"--resume {task_id}: no run directory of that task under {artifacts_root()}")
        run = RunDirectory.open(path)
    else:
        unfinished = [r for r in runs_of(experiment.hparams_path) if r.record.get("status") != "completed"]
        if not unfinished:
            raise UserError(f"--resume: no unfinished run of {display_path(experiment.hparams_path)} "
                            f"under {artifacts_root()}")
        run = unfinished[-1]
    name = run.record["task_id"]
    if run.record.get("status") == "completed":
        raise UserError(f"--resume {name}: that run completed; to train on from it, set "
                        "checkpoint.checkpoint_task_id in a new run")
    if run.record.get("status") == "running" and _alive(run.record.get("pid")):
        raise UserError(f"--resume {name}: that run is still running (pid {run.record['pid']})")
    if not (run.checkpoints / "last.ckpt").is_file():
        raise UserError(f"--resume {name}: no checkpoints/last.ckpt to resume from in {run.path}")
    return run


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_start(module: Any, start: StartPoint) -> None:
    """Fail before training when the checkpoint does not fit; load it when weights only."""
    state_dict = checkpoints.fitting_state_dict(module, start.path, start.label)
    if start.weights_only:
        module.load_state_dict(state_dict)
