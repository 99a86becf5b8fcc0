"""``TrackedRun``: a ClearML task with its run directory, opened in named steps and closed with the
run's outcome (run.json, the task's status, the console's summary)."""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking.task)
from clearml import Task
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from torch_lab import console
from torch_lab.callbacks.graceful_stop import GracefulStop
from torch_lab.callbacks.history import scalar_metrics
from torch_lab.callbacks.progress import console_callbacks
from torch_lab.console.summary import summary
from torch_lab.errors import RunFailed, RunInterrupted, TrialPruned, display_path, failure_message
from torch_lab.experiment import Experiment
from torch_lab.experiment.value_types import check_values
from torch_lab.storage.atomic import write_atomic
from torch_lab.storage.run_dir import RunDirectory, find_run_dir, now
from torch_lab.sweep import trial as sweep_trial
from torch_lab.tracking import task as tracking
from torch_lab.tracking.logger import ClearMLLogger
from torch_lab.tracking.sync import rewind_offline_metrics

log = logging.getLogger(__name__)


class TrackedRun:
    """A ClearML task with its run directory. Made in steps: the checks and the task (here), then
    ``enqueue`` when an agent is to run it, then the run directory when the ``with`` block opens;
    the block closes both with the run's outcome, and turns SIGINT/SIGTERM into a clean stop
    (see ``GracefulStop``)."""

    def __init__(self, experiment: Experiment, hparams: dict[str, Any], task_name: str,
                 task_type: str, tags: list[str], offline: bool,
                 resume: RunDirectory | None = None) -> None:
        self.experiment, self.task_type, self.offline, self.resume = experiment, task_type, offline, resume
        self.trainer: pl.Trainer | None = None  # set by the command: ``finish`` reads its metrics
        self.record_hparams: list[pl.Callback] = []
        # Other ranks of a multi-process run attach to rank zero's task and run directory.
        self.rank_zero = rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", 0)) == 0
        check_values(display_path(experiment.hparams_path), "task", hparams["task"], Task.init)
        self.stop = GracefulStop(None)
        self.stop.install()  # a signal from here on stops the run cleanly, once it exists
        self._check_tracking()
        self._rewind_offline_session()
        self.task, self.hparams, self.trial = self._start_task(hparams, task_name, tags)
        self.session_zip = tracking.offline_session_zip(self.task)
        if self.rank_zero:
            tracking.store_sources(self.task, [experiment.hparams_path, experiment.main_path])

    def _check_tracking(self) -> None:
        """ClearML's settings, and its server when online: before any task exists."""
        tracking.check_settings(self.offline)
        tracking.configure(self.offline)
        if not self.offline:
            tracking.check_server()

    def _rewind_offline_session(self) -> None:
        """A resumed offline run first drops the events its last checkpoint does not hold."""
        session = self.resume.record.get("offline_session") if self.resume is not None else None
        if session and self.rank_zero:
            rewind_offline_metrics(Path(session).with_suffix(""), self.resume.checkpoints / "last.ckpt")

    def _start_task(self, hparams: dict[str, Any], task_name: str, tags: list[str]
                    ) -> tuple[Task, dict[str, Any], dict[str, Any] | None]:
        """The task (continued when resuming; a child of its sweep's task for a sweep's trial)
        and the hparams connected to it: an agent's run gets those edited in ClearML."""
        trial = sweep_trial.trial_env() if self.resume is None and self.rank_zero else None
        task = tracking.start_task(hparams["task"], task_name, self.task_type,
                                   tags + sweep_trial.sweep_tags() if trial else tags, self.offline,
                                   continue_task=self.resume.record["task_id"] if self.resume else None)
        if trial:
            task.set_parent(trial["parent"])
        return task, tracking.connect_hparams(task, hparams), trial

    def enqueue(self, queue: str) -> None:
        """Hand the task to ClearML queue ``queue``: this process exits, and an agent's run of
        the same command goes on from here."""
        if self.rank_zero:
            tracking.enqueue(self.task, queue)

    def _open_run_dir(self) -> RunDirectory:
        """The run directory: rank zero creates it (or takes over the resumed one); the other
        ranks open rank zero's, read-only."""
        if not self.rank_zero:
            return RunDirectory.open(_rank_zero_run_dir(self.task.id), writable=False)
        if self.resume is not None:
            run = self.resume
            run.update(status="running", finished=None, error=None, pid=os.getpid(),
                       resumed=[*run.record.get("resumed", []), now()])
            # hparams.json changes once Lightning has accepted the values (see RecordHparams).
            self.record_hparams = [RecordHparams(run, self.hparams)]
            return run
        run = RunDirectory.create(
            self.task.name, self.task.id, project_name=self.task.get_project_name(),
            offline=self.offline, hparams_path=str(self.experiment.hparams_path),
            offline_session=str(self.session_zip) if self.session_zip else None, pid=os.getpid(),
            task_type=self.task_type, **({"sweep": sweep_trial.sweep_record()} if self.trial else {}))
        run.write_json("hparams.json", self.hparams)
        return run

    def evaluation_trainer(self, callbacks: list[pl.Callback]) -> pl.Trainer:
        """A Trainer for test or predict: this run's logger and directory, no checkpointing."""
        init = self.hparams["trainer"]["init"]
        self.trainer = pl.Trainer(**init, default_root_dir=self.run.path,
                                  logger=ClearMLLogger(self.task),
                                  callbacks=[*callbacks, *console_callbacks(init, callbacks), self.stop],
                                  enable_checkpointing=False)
        return self.trainer

    def __enter__(self) -> TrackedRun:
        self.run = self._open_run_dir()
        if self.rank_zero:
            console.attach(self.run.path)  # console.log, with what was printed so far
            if self.task_type == "training":
                self.stop.last_checkpoint = self.run.checkpoints / "last.ckpt"
            print(f"torch-lab: task {self.task.id} started; run directory {self.run.path}", flush=True)
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
            raise RunInterrupted(self.task.id) from error
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
