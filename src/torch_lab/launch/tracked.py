"""``TrackedRun``: a ClearML task with its run directory, opened in named steps and closed with the
run's outcome (run.json, the task's status, the console's summary)."""

from __future__ import annotations

import logging
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking.task)
from clearml import Task

from torch_lab import console
from torch_lab.callbacks.graceful_stop import GracefulStop
from torch_lab.callbacks.history import scalar_metrics
from torch_lab.callbacks.progress import console_callbacks
from torch_lab.children.jobs import GROUP_ENV
from torch_lab.console.summary import summary
from torch_lab.errors import RunFailed, RunInterrupted, TrialPruned, display_path, failure_message
from torch_lab.experiment import Experiment
from torch_lab.experiment.value_types import check_values
from torch_lab.launch import ranks, slurm
from torch_lab.storage.atomic import write_atomic
from torch_lab.storage.run_dir import RunDirectory, find_run_dir, now
from torch_lab.sweep import trial as sweep_trial
from torch_lab.tracking import agent, deadline, outcome
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
                 resume: RunDirectory | None = None, own_loggers: bool = False,
                 queue: str | None = None) -> None:
        self.experiment, self.task_type, self.offline, self.resume = experiment, task_type, offline, resume
        self.trainer: pl.Trainer | None = None  # set by the command: ``finish`` reads its metrics
        self.record_hparams: list[pl.Callback] = []
        # Other ranks of a multi-process run attach to rank zero's task and run directory: its
        # children under Lightning's launcher inherit them, other launchers' ranks use the store.
        self.rank = ranks.detect(int(hparams["trainer"]["init"].get("num_nodes") or 1))
        self.rank_zero = self.rank.zero
        self.rendezvous = ranks.Rendezvous(self.rank) if self.rank.peers and not self.rank.inherits else None
        self._shared_run_dir: Path | None = None
        if self.rendezvous is not None:
            self._agree(experiment, hparams)
        check_values(display_path(experiment.hparams_path), "task", hparams["task"], Task.init)
        self.stop = GracefulStop(None)
        self.stop.install()  # a signal from here on stops the run cleanly, once it exists
        self._check_tracking(queue)
        self._rewind_offline_session()
        try:
            self.task, self.hparams, self.trial = self._start_task(hparams, task_name, tags, own_loggers)
        except BaseException as error:
            self._tell_ranks(error)
            raise
        self.session_zip = tracking.offline_session_zip(self.task)
        if self.rank_zero:
            tracking.store_sources(self.task, [experiment.hparams_path, experiment.main_path])

    def _agree(self, experiment: Experiment, hparams: dict[str, Any]) -> None:
        """The ranks' hparams match, before any task (a seed each rank drew is not compared)."""
        try:
            self.rendezvous.agree({**hparams, "seed": hparams["seed"] if experiment.hparams.get("seed") is not None
                                   else None})
        except BaseException as error:
            self._tell_ranks(error)
            raise

    def _check_tracking(self, queue: str | None) -> None:
        """ClearML's settings, and its server (and ``queue``) when online: before any task exists."""
        tracking.check_settings(self.offline)
        tracking.configure(self.offline)
        if not self.offline:
            tracking.check_server()
            if queue and self.rank_zero:
                tracking.check_queue(queue)

    def _rewind_offline_session(self) -> None:
        """A resumed offline run first drops the events its last checkpoint does not hold."""
        session = self.resume.record.get("offline_session") if self.resume is not None else None
        if session and self.rank_zero:
            rewind_offline_metrics(Path(session).with_suffix(""), self.resume.checkpoints / "last.ckpt")

    def _start_task(self, hparams: dict[str, Any], task_name: str, tags: list[str], own_loggers: bool
                    ) -> tuple[Task, dict[str, Any], dict[str, Any] | None]:
        """The task (continued when resuming; a child of its sweep's task for a sweep's trial)
        and the hparams connected to it: an agent's run gets those edited in ClearML."""
        if self.rendezvous is not None and not self.rank_zero:
            shared = self.rendezvous.read(ranks.RUN)
            if "error" in shared:
                self.rendezvous.done()
                raise RuntimeError(f"rank zero failed before its run started: {shared['error']}")
            self._shared_run_dir = Path(shared["run_dir"])
            task = tracking.attach_task(shared["task_id"])
            return task, tracking.connect_hparams(task, hparams), None
        trial = sweep_trial.trial_env() if self.resume is None and self.rank_zero else None
        task = tracking.start_task(hparams["task"], task_name, self.task_type,
                                   tags + (sweep_trial.sweep_tags() if trial else []) + group_tags(), self.offline,
                                   continue_task=self.resume.record["task_id"] if self.resume else None,
                                   own_loggers=own_loggers)
        if trial:
            task.set_parent(trial["parent"])
        return task, tracking.connect_hparams(task, hparams), trial

    def enqueue(self, queue: str) -> None:
        """Hand the task to ClearML queue ``queue``: this process exits, and an agent's run of
        the same command goes on from here."""
        if self.rank_zero:
            agent.enqueue(self.task, queue)  # the queue was checked before the task existed

    def _open_run_dir(self) -> RunDirectory:
        """The run directory: rank zero creates it (or takes over the resumed one); the other
        ranks open rank zero's, read-only."""
        if not self.rank_zero:
            return RunDirectory.open(self._shared_run_dir or _rank_zero_run_dir(self.task.id), writable=False)
        if self.resume is not None:
            run = self.resume
            run.update(status="running", finished=None, error=None, pid=os.getpid(), ran_s=_ran_seconds(run),
                       resumed=[*run.record.get("resumed", []), now()], **slurm.resumed_fields(run.record))
            # hparams.json changes once Lightning has accepted the values (see RecordHparams).
            self.record_hparams = [RecordHparams(run, self.hparams)]
            return run
        run = RunDirectory.create(
            self.task.name, self.task.id, project_name=self.task.get_project_name(),
            offline=self.offline, hparams_path=str(self.experiment.hparams_path),
            offline_session=str(self.session_zip) if self.session_zip else None, pid=os.getpid(),
            task_type=self.task_type, **slurm.created_fields(), **({"sweep": sweep_trial.sweep_record()} if self.trial else {}),
            **({"group": os.environ[GROUP_ENV]} if os.environ.get(GROUP_ENV) else {}))
        run.write_json("hparams.json", self.hparams)
        return run

    def _tell_ranks(self, error: BaseException | None) -> None:
        """Rank zero hands its task and run directory to the other ranks, or why it has none (so
        they stop at once rather than at ``TORCH_LAB_RANK_TIMEOUT``)."""
        if self.rendezvous is not None and self.rank_zero:
            self.rendezvous.publish(ranks.RUN, {"error": failure_message(error)} if error is not None
                                    else {"task_id": self.task.id, "run_dir": str(self.run.path)})
            if error is not None:  # the store stays up until they have read it
                self.rendezvous.wait_done()

    def evaluation_trainer(self, callbacks: list[pl.Callback]) -> pl.Trainer:
        """A Trainer for test or predict: this run's logger and directory, no checkpointing."""
        init = self.hparams["trainer"]["init"]
        self.trainer = pl.Trainer(**init, default_root_dir=self.run.path,
                                  logger=ClearMLLogger(self.task),
                                  callbacks=[*callbacks, *console_callbacks(init, callbacks), self.stop],
                                  enable_checkpointing=False)
        return self.trainer

    def __enter__(self) -> TrackedRun:
        try:
            self.run = self._open_run_dir()
        except BaseException as error:
            self._tell_ranks(error)
            raise
        self._tell_ranks(None)
        if self.task_type == "training":  # every rank: saving after a signal is collective
            self.stop.last_checkpoint = self.run.checkpoints / "last.ckpt"
        if self.rank_zero:
            console.attach(self.run.path)  # console.log, with what was printed so far
            print(f"torch-lab: task {self.task.id} started; run directory {self.run.path}", flush=True)
        self.stop.install()  # again: Task.init put ClearML's handlers in front
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, tb: Any) -> bool:
        try:
            self.finish(error)
        finally:
            self.stop.restore()
            if self.rendezvous is not None:  # a rank that attached to the task made ClearML's lock file
                Path(tempfile.gettempdir(), f"clearml_{self.task.id}.lock").unlink(missing_ok=True)
        return isinstance(error, TrialPruned)  # a pruned trial ends normally

    def finish(self, error: BaseException | None) -> None:
        """Record checkpoints, metrics and the outcome of ``error`` in run.json and on the task;
        raise ``KeyboardInterrupt`` or ``RunFailed`` when the run did not complete. Only rank
        zero records anything and tells the outcome to the ranks that use the store."""
        if not self.rank_zero:
            self._follow_outcome(error)
            return
        try:
            self._record_outcome(error)
        finally:
            if self.rendezvous is not None:
                self.rendezvous.wait_done()

    def _follow_outcome(self, error: BaseException | None) -> None:
        """Another rank ends as rank zero's run did; its own failure goes to rank zero first."""
        if self.rendezvous is None:
            return  # a child of Lightning's launcher: its parent reports
        interrupted = isinstance(error, (KeyboardInterrupt, SystemExit)) or self.stop.received is not None
        if error is not None and not interrupted:
            self.rendezvous.fail(failure_message(error))
            self.rendezvous.done()
            return  # ``error`` propagates
        outcome = self.rendezvous.read(ranks.OUTCOME)
        self.rendezvous.done()
        if outcome["status"] == "interrupted":
            raise KeyboardInterrupt from error
        if outcome["status"] == "failed":
            raise RunFailed(outcome["error"], self.run.path / "traceback.txt") from error

    def _record_outcome(self, error: BaseException | None) -> None:
        interrupted = self.stop.received is not None or isinstance(error, KeyboardInterrupt) or (
            isinstance(error, SystemExit) and self.trainer is not None and self.trainer.interrupted
        )
        status = ("completed" if error is None else "interrupted" if interrupted
                  else "pruned" if isinstance(error, TrialPruned) else "failed")
        message = None
        if status == "failed":
            message = "; ".join([failure_message(error), *(self.rendezvous.failures() if self.rendezvous else [])])
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
        if self.rendezvous is not None:
            self.rendezvous.publish(ranks.OUTCOME, {"status": status, "error": message})
        def record() -> None:
            try:
                tracking.record_checkpoints(self.task, saved, self.offline)
            finally:
                outcome.finish_task(self.task, status, self.run.path / "run.json",
                                     str(error) if status == "pruned" else message)

        deadline.bounded(self.task, "the checkpoints, run.json and the outcome", record)
        summary(self.task.id, status, self.run.record, self.run.path, self.session_zip)
        if status == "interrupted":
            if self.task_type == "training":  # a time limit's notice: the next start goes on
                slurm.requeue_after_stop(self.stop.received)
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


def group_tags() -> list[str]:
    """``group:<name>`` for a run of a group (``train --seeds``)."""
    return [f"group:{os.environ[GROUP_ENV]}"] if os.environ.get(GROUP_ENV) else []


def _ran_seconds(run: RunDirectory) -> float | None:
    """Seconds a resumed run ran before this resume (run.json ``ran_s``): its earlier parts, to
    their end (``finished``, else, killed, its last checkpoint), not the time stopped in between."""
    from datetime import datetime

    record = run.record
    try:
        start = datetime.fromisoformat((record.get("resumed") or [record["started"]])[-1])
        end = (datetime.fromisoformat(record["finished"]) if record.get("finished") else
               datetime.fromtimestamp((run.checkpoints / "last.ckpt").stat().st_mtime, start.tzinfo))
    except (KeyError, TypeError, ValueError, OSError):
        return record.get("ran_s")
    return round((record.get("ran_s") or 0.0) + max((end - start).total_seconds(), 0.0), 1)


def _rank_zero_run_dir(task_id: str, timeout: float = 300.0) -> Path:
    """Rank zero's run directory of ``task_id``; under torchrun or SLURM all ranks start at once,
    so wait for rank zero to create it."""
    deadline = time.monotonic() + timeout
    while (path := find_run_dir(task_id)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"rank zero created no run directory for task {task_id} in {timeout:.0f} s")
        time.sleep(0.2)
    return path
