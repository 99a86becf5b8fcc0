"""Where a training run starts: an earlier task's checkpoint, or the unfinished run it resumes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch_lab import checkpoints
from torch_lab.errors import UserError, display_path
from torch_lab.experiment import Experiment
from torch_lab.experiment.hparams import apply_overrides
from torch_lab.launch import ranks
from torch_lab.storage.run_dir import (RunDirectory, artifacts_root, find_run_dir, resolve_task_id,
                                       runs_of)

#: Outcomes a run does not resume from.
FINISHED = ("completed", "pruned")


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
    if block["checkpoint_task_id"] is None:
        return None
    given = checkpoints.given_id(block["checkpoint_task_id"], "checkpoint.checkpoint_task_id")
    task_id, name = resolve_task_id(given), block["checkpoint_name"]
    path = checkpoints.resolve_checkpoint(task_id, name)
    return StartPoint(path, block["weights_only"], f"checkpoint task '{task_id}' ('{name}', {path})",
                      {"task_id": task_id, "checkpoint": name, "path": str(path),
                       "weights_only": block["weights_only"]})


def is_training_run(record: dict[str, Any]) -> bool:
    """Whether a run record is a training run (records before ``task_type`` was kept: by name)."""
    kind = record.get("task_type")
    if kind is not None:
        return kind == "training"
    return not str(record.get("task_name", "")).startswith(("infer_", "test_"))


def resumable(experiment: Experiment, task_id: str, other: bool = False) -> RunDirectory:
    """The run ``--resume [TASK_ID]`` continues: that task's (an id or its unique start, never a
    pattern), or the latest unfinished training run of the hparams file. A run recorded for
    another hparams file is refused unless ``other`` (``--resume-other``). The run directory is
    owned (``RunDirectory.lock``) before anything else is decided, so two resumes of one run never
    both go ahead."""
    if task_id:
        try:
            full_id = resolve_task_id(checkpoints.given_id(task_id, "task id"))
        except UserError as error:
            raise UserError(f"--resume {error}") from None
        path = find_run_dir(full_id)
        if path is None:
            raise UserError(f"--resume {task_id}: no run directory of that task under {artifacts_root()}")
        run = RunDirectory.open(path)
        recorded = run.record.get("hparams_path")
        if not other and recorded and Path(recorded).resolve() != experiment.hparams_path.resolve():
            raise UserError(f"--resume {task_id}: that run is of {display_path(Path(recorded))}, not "
                            f"{display_path(experiment.hparams_path)}; give its hparams file, or add "
                            "--resume-other to resume it with this one")
    else:
        unfinished = [r for r in runs_of(experiment.hparams_path)
                      if r.record.get("status") not in FINISHED and is_training_run(r.record)]
        if not unfinished:
            raise UserError(f"--resume: no unfinished training run of "
                            f"{display_path(experiment.hparams_path)} under {artifacts_root()}")
        run = unfinished[-1]
    name = run.record["task_id"]
    if not is_training_run(run.record):
        raise UserError(f"--resume {name}: that is not a training run ({run.record.get('task_name')}); "
                        "only training runs resume")
    if ranks.detect(1).zero:  # the job's other ranks use rank zero's run directory, read-only
        try:
            run.lock()
        except UserError as error:
            raise UserError(f"--resume {name}: {error}") from None
    run.record = RunDirectory.open(run.path).record  # as its last owner left it
    if run.record.get("status") in FINISHED:
        raise UserError(f"--resume {name}: that run {run.record['status']}; to train on from it, "
                        "set checkpoint.checkpoint_task_id in a new run")
    if not (run.checkpoints / "last.ckpt").is_file():
        raise UserError(f"--resume {name}: {display_path(run.checkpoints / 'last.ckpt')} is missing, nothing "
                        "to resume from (runs prune --keep best removes it); to train on from another "
                        "checkpoint of the run, set checkpoint.checkpoint_task_id in a new run")
    return run


def recorded_hparams(run: RunDirectory, label: str | None = None) -> dict[str, Any]:
    """The resolved hparams a run recorded (its hparams.json); unreadable is a ``UserError``
    starting with ``label`` (default ``--resume <task id>``)."""
    label = label or f"--resume {run.record['task_id']}"
    path = run.path / "hparams.json"
    try:
        hparams = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else f"not valid JSON: {error}"
        raise UserError(f"{label}: {display_path(path)}: cannot be read ({reason})") from None
    if not isinstance(hparams, dict):
        raise UserError(f"{label}: {display_path(path)}: not an hparams dict")
    return hparams


def task_hparams(experiment: Experiment, task_id: str, overrides: list[str]) -> dict[str, Any] | None:
    """The hparams task ``task_id`` recorded in its run directory, plus ``overrides`` (``--set``),
    to build its model as it was trained (a sweep's trial, a run trained with ``--set``); None
    when it has no run directory with hparams.json here. Says so on the console."""
    path = find_run_dir(task_id)
    if path is None or not (path / "hparams.json").is_file():
        return None
    run = RunDirectory.open(path, writable=False)
    hparams = apply_overrides(recorded_hparams(run, f"task {task_id}"), overrides, experiment.hparams_path)
    extra = " with --set " + " ".join(overrides) if overrides else ""
    print(f"torch-lab: building the model from the hparams task {task_id} recorded "
          f"({display_path(path / 'hparams.json')}){extra}", flush=True)
    return hparams


def check_resume_epochs(run: RunDirectory, hparams: dict[str, Any]) -> None:
    """Refuse a ``max_epochs`` below the epoch the run's last checkpoint reached (Lightning would
    fail after the task started, and mark the run failed)."""
    max_epochs = hparams["trainer"]["init"].get("max_epochs")
    if not isinstance(max_epochs, int) or max_epochs == -1:  # None, or a type check_kwargs refuses
        return
    path = run.checkpoints / "last.ckpt"
    state = checkpoints.load_checkpoint(path)
    epoch = _restored_epoch(state)
    if epoch is not None and epoch > max_epochs:
        raise UserError(f"--resume {run.record['task_id']}: trainer.init.max_epochs={max_epochs} is below "
                        f"the {epoch} epochs {display_path(path)} has done; set max_epochs to at least {epoch}")


def _restored_epoch(state: Any) -> int | None:
    """The ``current_epoch`` Lightning restores from a checkpoint: its fit loop's completed epochs
    (the top-level ``epoch`` when the loops were not saved)."""
    try:
        return int(state["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"])
    except (KeyError, TypeError, ValueError):
        epoch = state.get("epoch") if isinstance(state, dict) else None
        return epoch if isinstance(epoch, int) else None


def check_start(module: Any, start: StartPoint) -> None:
    """Fail before training when the checkpoint does not fit; load it when weights only."""
    state_dict = checkpoints.fitting_state_dict(module, start.path, start.label)
    if start.weights_only:
        module.load_state_dict(state_dict)
