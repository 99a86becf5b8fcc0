"""A ClearML task with its run directory, opened and closed with the run's outcome."""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking)
from clearml import Task
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from torch_lab import console, sweep_trial, tracking
from torch_lab.callbacks import GracefulStop, scalar_metrics
from torch_lab.console_progress import console_callbacks, summary
from torch_lab.errors import RunFailed, TrialPruned, display_path, failure_message
from torch_lab.experiment import Experiment
from torch_lab.loggers import ClearMLLogger
from torch_lab.run_dir import RunDirectory, find_run_dir, now, write_atomic
from torch_lab.task_sync import rewind_offline_metrics
from torch_lab.value_types import check_values

log = logging.getLogger(__name__)


def progress_bar(init: dict[str, Any], callbacks: list[pl.Callback]) -> list[pl.Callback]:
    """The console's header and progress (a bar, or lines without a terminal), unless the
    experiment brings its own bar or ``trainer.init`` turns the bar off."""
    return console_callbacks(init, callbacks)


class TrackedRun:
    """A ClearML task with its run directory; as a context manager, it closes both with the
    run's outcome and turns SIGINT/SIGTERM into a clean stop (see ``GracefulStop``)."""

    def __init__(self, experiment: Experiment, hparams: dict[str, Any], task_name: str,
                 task_type: str, tags: list[str], offline: bool,
                 resume: RunDirectory | None = None, queue: str | None = None) -> None:
        self.offline = offline
        self.trainer: pl.Trainer | None = None
        check_values(display_path(experiment.hparams_path), "task", hparams["task"], Task.init)
        self.stop = GracefulStop(None)
        self.stop.install()  # a signal from here on stops the run cleanly, once it exists
        # Other ranks of a multi-process run attach to rank zero's task and run directory.
        self.rank_zero = rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", 0)) == 0
        tracking.check_settings(offline)
        tracking.configure(offline)
        if not offline:
            tracking.check_server()
        if resume is not None and resume.record.get("offline_session") and self.rank_zero:
            rewind_offline_metrics(Path(resume.record["offline_session"]).with_suffix(""),
                                   resume.checkpoints / "last.ckpt")
        # A sweep's trial (see torch_lab.sweep); other ranks attach to rank zero's task.
        trial = sweep_trial.trial_env() if resume is None and self.rank_zero else None
        self.task = tracking.start_task(hparams["task"], task_name, task_type,
                                        tags + sweep_trial.sweep_tags() if trial else tags, offline,
                                        continue_task=resume.record["task_id"] if resume else None)
        if trial:
            sweep_trial.follow_sweep(trial)
            self.task.set_parent(trial["parent"])
        self.hparams = tracking.connect_hparams(self.task, hparams)
        self.session_zip = tracking.offline_session_zip(self.task)
        self.record_hparams: list[pl.Callback] = []
        if not self.rank_zero:
            self.run = RunDirectory.open(_rank_zero_run_dir(self.task.id), writable=False)
            return
        tracking.store_sources(self.task, [experiment.hparams_path, experiment.main_path])
        if queue:
            tracking.enqueue(self.task, queue)  # exits here; an agent's run goes on below
        if resume is not None:
            self.run = resume
            self.run.update(status="running", finished=None, error=None, pid=os.getpid(),
                            resumed=[*resume.record.get("resumed", []), now()])
            # hparams.json changes once Lightning has accepted the values (see RecordHparams).
            self.record_hparams = [RecordHparams(self.run, self.hparams)]
        else:
            self.run = RunDirectory.create(
                self.task.name,
                self.task.id,
                project_name=self.task.get_project_name(),
                offline=offline,
                hparams_path=str(experiment.hparams_path),
                offline_session=str(self.session_zip) if self.session_zip else None,
                pid=os.getpid(),
                task_type=task_type,
                **({"sweep": sweep_trial.sweep_record()} if trial else {}),
            )
            self.run.write_json("hparams.json", self.hparams)
        console.attach(self.run.path)  # console.log, with what was printed so far
        if task_type == "training":
            self.stop.last_checkpoint = self.run.checkpoints / "last.ckpt"
        print(f"torch-lab: task {self.task.id} started; run directory {self.run.path}", flush=True)

    def evaluation_trainer(self, callbacks: list[pl.Callback]) -> pl.Trainer:
        """A Trainer for test or predict: this run's logger and directory, no checkpointing."""
        init = self.hparams["trainer"]["init"]
        self.trainer = pl.Trainer(**init, default_root_dir=self.run.path,
                                  logger=ClearMLLogger(self.task),
                                  callbacks=[*callbacks, *progress_bar(init, callbacks), self.stop],
                                  enable_checkpointing=False)
        return self.trainer

    def __enter__(self) -> TrackedRun:
        self.stop.install()  # again: Task.init put ClearML's handlers in front
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, tb: Any) -> bool:
        try:
            self.finish(error)
        finally:
            self.stop.restore()
        return isinstance(error, TrialPruned)  # a pruned trial ends normally

    def finish(self, error: BaseException | None) -> None:
        """Record checkpoints, metrics and the outcome of ``error`` in run.json and on the task;
        raise ``KeyboardInterrupt`` or ``RunFailed`` when the run did not complete. Only rank
        zero records anything; other ranks let ``error`` propagate."""
        if not self.rank_zero:
            return
        interrupted = self.stop.received is not None or isinstance(error, KeyboardInterrupt) or (
            isinstance(error, SystemExit) and self.trainer is not None and self.trainer.interrupted
        )
        status = ("completed" if error is None else "interrupted" if interrupted
                  else "pruned" if isinstance(error, TrialPruned) else "failed")
        message = None
        if status == "failed":
            message = failure_message(error)
            trace = "".join(traceback.format_exception(error))
            try:
                write_atomic(self.run.path / "traceback.txt", trace)
            except OSError as write_error:  # e.g. a full disk: run.json still gets the message
                log.warning("could not write traceback.txt: %s", failure_message(write_error))
        saved = {p.stem: p for p in sorted(self.run.checkpoints.glob("*.ckpt"))}
        fields: dict[str, Any] = {"checkpoints": {k: str(v) for k, v in saved.items()}}
        if self.trainer is not None:
            fields["metrics"] = {**self.run.record.get("metrics", {}),
                                 **scalar_metrics(self.trainer.callback_metrics)}
        self.run.update(status=status, finished=now(), error=message, **fields)
        try:
            tracking.record_checkpoints(self.task, saved, self.offline)
        finally:
            tracking.finish_task(self.task, status, self.run.path / "run.json",
                                 str(error) if status == "pruned" else message)
        summary(self.task.id, status, self.run.record, self.run.path, self.session_zip)
        if status == "interrupted":
            raise KeyboardInterrupt from error
        if status == "failed":
            raise RunFailed(message, self.run.path / "traceback.txt") from error


class RecordHparams(pl.Callback):
    """Write a resumed run's hparams (with its ``--set``) into hparams.json once training starts,
    i.e. once every check passed: a resume that fails its checks leaves the record as it was."""

    def __init__(self, run: RunDirectory, hparams: dict[str, Any]) -> None:
        self.run = run
        self.hparams = hparams

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.run.write_json("hparams.json", self.hparams)


def _rank_zero_run_dir(task_id: str, timeout: float = 300.0) -> Path:
    """Rank zero's run directory of ``task_id``; under torchrun or SLURM all ranks start at once,
    so wait for rank zero to create it."""
    deadline = time.monotonic() + timeout
    while (path := find_run_dir(task_id)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"rank zero created no run directory for task {task_id} in {timeout:.0f} s")
        time.sleep(0.2)
    return path
