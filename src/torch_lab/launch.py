"""The ``train`` and ``infer`` commands: experiment -> checks -> ClearML task -> run directory ->
``pl.Trainer``.

Everything that can be checked before training (hparams, ``__main__.py``, what the config
functions return, Trainer arguments, the starting checkpoint) is checked before the ClearML task
and the run directory are created, so a mistake leaves nothing behind.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking)
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.callbacks.progress import ProgressBar as LightningProgressBar
from pytorch_lightning.utilities.model_summary import ModelSummary
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from torch_lab import checkpoints, tracking
from torch_lab.checkpoint_io import AtomicCheckpointIO
from torch_lab.curves import CurvesPlot
from torch_lab.callbacks import (
    CheckpointMetadata,
    GracefulStop,
    NaNGuard,
    ProgressBar,
    RandomState,
    RunHistory,
    scalar_metrics,
)
from torch_lab.errors import RunFailed, UserError, display_path, failure_message
from torch_lab.experiment import Experiment, dataloaders_of
from torch_lab.hparams import apply_overrides
from torch_lab.loggers import ClearMLLogger
from torch_lab.precheck import refuse_trainer_keys
from torch_lab.run_dir import (
    RunDirectory,
    artifacts_root,
    find_run_dir,
    now,
    runs_of,
    write_atomic,
)

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """What the command line asked for."""

    offline: bool = False
    dev_run: int | float | None = None
    extra_args: list[str] = field(default_factory=list)
    resume: str | None = None  # "" = the latest unfinished run of the hparams file
    overrides: list[str] = field(default_factory=list)
    devices: int | str | list[int] | None = None
    queue: str | None = None
    test_only: str | None = None  # a task id or .ckpt path; "" = the hparams checkpoint block


@dataclass
class StartPoint:
    """The checkpoint a training run starts from."""

    path: Path
    weights_only: bool  # True: weights only, fresh schedule; False: the full training state
    label: str  # for messages
    parent: dict[str, Any] | None = None  # lineage, when it comes from another task


def _check_kwargs(experiment: Experiment, block: str, function: Any) -> None:
    """Reject keys of ``hparams["trainer"][block]`` that ``function`` does not accept."""
    source = display_path(experiment.hparams_path)
    kwargs = experiment.hparams["trainer"][block]
    accepted = [p for p in inspect.signature(function).parameters if p != "self"]
    refuse_trainer_keys(source, block, kwargs, accepted)  # from the live signature this time
    if block == "init":
        lightning_log = logging.getLogger("pytorch_lightning")
        level = lightning_log.level
        lightning_log.setLevel(logging.WARNING)  # no device banner for the throwaway Trainer
        try:  # a throwaway Trainer validates the values, before any task exists
            quiet = {"enable_progress_bar": False, "enable_model_summary": False}
            pl.Trainer(**{**quiet, **kwargs}, logger=False, enable_checkpointing=False)
        except Exception as error:
            raise UserError(f"{source}: trainer.init is invalid: {error}") from None
        finally:
            lightning_log.setLevel(level)


def progress_bar(init: dict[str, Any], callbacks: list[pl.Callback]) -> list[pl.Callback]:
    """torch-lab's throttled bar, unless the experiment brings its own or ``trainer.init`` turns
    the bar off."""
    if init.get("enable_progress_bar", True) is False:
        return []
    return [] if any(isinstance(c, LightningProgressBar) for c in callbacks) else [ProgressBar()]


def apply_dev_run(hparams: dict[str, Any], dev_run: int | float) -> dict[str, Any]:
    """A copy of ``hparams`` for a dev run: one epoch over ``dev_run`` batches (int) or a fraction
    of the batches (float) of each dataloader."""
    hparams = copy.deepcopy(hparams)
    init = hparams["trainer"]["init"]
    for key in ("max_steps", "max_time", "val_check_interval", "check_val_every_n_epoch", "min_epochs",
                "min_steps"):
        init.pop(key, None)
    init.update(max_epochs=1, limit_train_batches=dev_run, limit_val_batches=dev_run,
                limit_test_batches=dev_run)
    return hparams


class TrackedRun:
    """A ClearML task with its run directory; as a context manager, it closes both with the
    run's outcome and turns SIGINT/SIGTERM into a clean stop (see ``GracefulStop``)."""

    def __init__(self, experiment: Experiment, hparams: dict[str, Any], task_name: str,
                 task_type: str, tags: list[str], offline: bool,
                 resume: RunDirectory | None = None, queue: str | None = None) -> None:
        self.offline = offline
        self.trainer: pl.Trainer | None = None
        # Other ranks of a multi-process run attach to rank zero's task and run directory.
        self.rank_zero = rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", 0)) == 0
        tracking.configure(offline)
        if not offline:
            tracking.check_server()
        self.task = tracking.start_task(hparams["task"], task_name, task_type, tags, offline,
                                        continue_task=resume.record["task_id"] if resume else None)
        self.hparams = tracking.connect_hparams(self.task, hparams)
        self.session_zip = tracking.offline_session_zip(self.task)
        self.stop = GracefulStop(None)
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
        else:
            self.run = RunDirectory.create(
                self.task.name,
                self.task.id,
                project_name=self.task.get_project_name(),
                offline=offline,
                hparams_path=str(experiment.hparams_path),
                offline_session=str(self.session_zip) if self.session_zip else None,
                pid=os.getpid(),
            )
        self.run.write_json("hparams.json", self.hparams)
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
        self.stop.install()
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, tb: Any) -> None:
        try:
            self.finish(error)
        finally:
            self.stop.restore()

    def finish(self, error: BaseException | None) -> None:
        """Record checkpoints, metrics and the outcome of ``error`` in run.json and on the task;
        raise ``KeyboardInterrupt`` or ``RunFailed`` when the run did not complete. Only rank
        zero records anything; other ranks let ``error`` propagate."""
        if not self.rank_zero:
            return
        interrupted = self.stop.received is not None or isinstance(error, KeyboardInterrupt) or (
            isinstance(error, SystemExit) and self.trainer is not None and self.trainer.interrupted
        )
        status = "completed" if error is None else "interrupted" if interrupted else "failed"
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
            tracking.finish_task(self.task, status, self.run.path / "run.json", message)
        print(f"torch-lab: task {self.task.id} {status}; run directory {self.run.path}", flush=True)
        if self.session_zip:
            print(f"torch-lab: ClearML offline session {self.session_zip}; import it with: "
                  f"clearml-task --import-offline-session {self.session_zip}", flush=True)
        if status == "interrupted":
            raise KeyboardInterrupt from error
        if status == "failed":
            raise RunFailed(message, self.run.path / "traceback.txt") from error


def _rank_zero_run_dir(task_id: str, timeout: float = 300.0) -> Path:
    """Rank zero's run directory of ``task_id``; under torchrun or SLURM all ranks start at once,
    so wait for rank zero to create it."""
    deadline = time.monotonic() + timeout
    while (path := find_run_dir(task_id)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"rank zero created no run directory for task {task_id} in {timeout:.0f} s")
        time.sleep(0.2)
    return path


def _select_offline(requested: bool) -> bool:
    if requested:
        return True
    if not tracking.is_configured():
        print("torch-lab: no ClearML configuration found (clearml.conf or CLEARML_API_*); "
              "running offline", flush=True)
        return True
    return False


def _from_task(hparams: dict[str, Any]) -> StartPoint | None:
    """The start point named by the hparams ``checkpoint`` block, if any."""
    block = hparams["checkpoint"]
    if not block["checkpoint_task_id"]:
        return None
    task_id, name = block["checkpoint_task_id"], block["checkpoint_name"]
    path = checkpoints.resolve_checkpoint(task_id, name)
    return StartPoint(path, block["weights_only"], f"checkpoint task '{task_id}' ('{name}', {path})",
                      {"task_id": task_id, "checkpoint": name, "path": str(path),
                       "weights_only": block["weights_only"]})


def _resumable(experiment: Experiment, task_id: str) -> RunDirectory:
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


def _record_reproducibility(tracked: TrackedRun, experiment: Experiment, module: Any) -> None:
    """Keep the experiment folder's sources and the model summary (parameters per layer) in the
    run directory and on the task."""
    sources = tracked.run.snapshot_sources(experiment.hparams_path.parent)
    summary = tracked.run.path / "model_summary.txt"
    write_atomic(summary, f"{ModelSummary(module, max_depth=-1)}\n")
    tracking.record_file(tracked.task, sources)
    tracking.record_file(tracked.task, summary, configuration=True)


def _default_scheduler_monitor(module: Any, metric: str) -> None:
    """A scheduler configured without a ``monitor`` follows the hparams ``monitor`` metric."""
    config = getattr(module, "optimizer_config", None)
    if isinstance(config, dict) and config.get("scheduler") is not None and "monitor" not in config:
        module.optimizer_config = {**config, "monitor": metric}


def _check_start(module: Any, start: StartPoint) -> None:
    """Fail before training when the checkpoint does not fit; load it when weights only."""
    state_dict = checkpoints.fitting_state_dict(module, start.path, start.label)
    if start.weights_only:
        module.load_state_dict(state_dict)


def train(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """Run ``train``: fit, then test on the best checkpoint when ``test_dataloaders`` is given.

    With ``options.resume`` the run continues an unfinished run in its own task and directory,
    from its last checkpoint and with its recorded hparams (plus any ``--set``). With
    ``options.test_only`` nothing is trained (see ``evaluate``).
    """
    if options.test_only is not None:
        return evaluate(experiment, options)
    resume = _resumable(experiment, options.resume) if options.resume is not None else None
    if resume is not None:
        if options.dev_run is not None:
            raise UserError("--resume and --dev-run cannot be combined")
        recorded = json.loads((resume.path / "hparams.json").read_text())
        experiment.hparams = apply_overrides(recorded, options.overrides, experiment.hparams_path)
    hparams = experiment.hparams
    task_name, tags = experiment.name, []
    if options.dev_run is not None:
        hparams = experiment.hparams = apply_dev_run(hparams, options.dev_run)
        task_name, tags = f"dev_{task_name}", ["dev-run"]
    if options.devices is not None:
        hparams = experiment.hparams = copy.deepcopy(hparams)
        hparams["trainer"]["init"]["devices"] = options.devices
    if hparams["seed"] is None:  # draw one and record it, so the run can be repeated
        hparams = experiment.hparams = {**hparams, "seed": random.SystemRandom().randrange(2**31)}
    experiment.config_function("train_config")
    _check_kwargs(experiment, "init", pl.Trainer)
    _check_kwargs(experiment, "fit", pl.Trainer.fit)
    pl.seed_everything(hparams["seed"], workers=True, verbose=False)
    config = experiment.train_config(hparams)
    if resume is not None:
        start: StartPoint | None = StartPoint(resume.checkpoints / "last.ckpt", False,
                                              f"--resume {resume.record['task_id']}")
    else:
        start = _from_task(hparams)
    if start is not None:
        _check_start(config["module"], start)

    offline = resume.record["offline"] if resume is not None else _select_offline(options.offline)
    if options.queue and offline:
        raise UserError(f"--queue {options.queue}: a ClearML agent needs a ClearML server, and this "
                        "run is offline (--offline, or no ClearML configuration)")
    tracked = TrackedRun(experiment, hparams, task_name, "training", tags, offline, resume,
                         options.queue)
    if tracked.hparams != hparams:  # edited in ClearML (run by an agent): rebuild from them
        pl.seed_everything(tracked.hparams["seed"], workers=True, verbose=False)
        config = experiment.train_config(tracked.hparams)
        if start is not None:
            _check_start(config["module"], start)
    if start is not None and start.parent is not None and tracked.rank_zero:
        tracking.record_parent(tracked.task, start.parent)
        tracked.run.update(started_from=start.parent)
    if tracked.rank_zero:
        _record_reproducibility(tracked, experiment, config["module"])
    if options.dev_run is not None:
        for loader in dataloaders_of(config):
            loader.num_workers = 0
    run = tracked.run
    with tracked:
        monitor = tracked.hparams["monitor"]
        _default_scheduler_monitor(config["module"], monitor["metric"])
        best = ModelCheckpoint(dirpath=run.checkpoints, filename="best", monitor=monitor["metric"],
                               mode=monitor["mode"], save_top_k=1, save_last=True,
                               enable_version_counter=False, auto_insert_metric_name=False)
        stopping = [EarlyStopping(monitor["metric"], mode=monitor["mode"], patience=monitor["patience"],
                                  min_delta=monitor["min_delta"])] if monitor["patience"] is not None else []
        history = RunHistory(run, monitor)
        every = tracked.hparams["checkpoint"]["every_n_train_steps"]
        periodic = [ModelCheckpoint(dirpath=run.checkpoints, save_top_k=0, save_last=True,
                                    every_n_train_steps=every)] if every else []
        init = {"log_every_n_steps": 1, **tracked.hparams["trainer"]["init"]}  # e.g. the LR per step
        plugins = init.pop("plugins", None) or []
        trainer = tracked.trainer = pl.Trainer(
            **init,
            plugins=[*(plugins if isinstance(plugins, list) else [plugins]), AtomicCheckpointIO()],
            default_root_dir=run.path,
            logger=ClearMLLogger(tracked.task),
            callbacks=[*config["callbacks"], *progress_bar(init, config["callbacks"]), NaNGuard(),
                       best, *periodic, *stopping, history,
                       *([CurvesPlot(history)] if options.dev_run is None else []),  # dev runs: too short
                       LearningRateMonitor(logging_interval="step"),
                       CheckpointMetadata(tracked.task.id, tracked.hparams), RandomState(),
                       tracked.stop],
        )
        state = start.path if start is not None and not start.weights_only else None
        if start is not None and start.parent is not None:
            # Where the inherited model stands, before any training: logged at step 0.
            baseline = trainer.validate(config["module"], config["val_dataloaders"], ckpt_path=state,
                                        weights_only=True if state else None, verbose=False)
            run.update(start_metrics=baseline[0] if baseline else {})
        if state is not None:
            print(f"torch-lab: resuming the training state of {start.label}", flush=True)
        trainer.fit(config["module"], config["train_dataloaders"], config["val_dataloaders"],
                    ckpt_path=state, weights_only=True if state else None,
                    **tracked.hparams["trainer"]["fit"])
        outcome = {"monitor": monitor["metric"], "mode": monitor["mode"],
                   "value": float(best.best_model_score) if best.best_model_score is not None else None,
                   "epoch": history.best_epoch(monitor["metric"], monitor["mode"]),
                   "path": best.best_model_path or None}
        run.update(metrics=scalar_metrics(trainer.callback_metrics), best=outcome)
        if tracked.rank_zero:
            tracking.report_best(tracked.task, outcome)
        if config.get("test_dataloaders") is not None:
            trainer.test(config["module"], config["test_dataloaders"],
                         ckpt_path="best" if best.best_model_path else None,
                         weights_only=True if best.best_model_path else None)
    return run


def evaluate(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """``train --test-only``: test a checkpoint (a task's best, else last; or a .ckpt path) on
    ``train_config``'s ``test_dataloaders``, without training, as a task of its own."""
    hparams = experiment.hparams
    block = hparams["checkpoint"]
    reference = options.test_only or block["checkpoint_task_id"]
    if not reference:
        raise UserError("--test-only needs a task id or a .ckpt path (or checkpoint.checkpoint_task_id)")
    experiment.config_function("train_config")
    _check_kwargs(experiment, "init", pl.Trainer)
    pl.seed_everything(hparams["seed"] or 0, workers=True, verbose=False)
    config = experiment.train_config(hparams)
    if config.get("test_dataloaders") is None:
        raise UserError(f"{display_path(experiment.main_path)}: train_config returned no "
                        "'test_dataloaders' for --test-only")
    path = checkpoints.resolve_checkpoint(reference, None if options.test_only else block["checkpoint_name"])
    lineage = {"path": str(path)} if str(reference).endswith(".ckpt") else {"task_id": reference,
                                                                            "path": str(path)}
    start = StartPoint(path, True, f"checkpoint {reference} ({path})", lineage)
    _check_start(config["module"], start)

    offline = _select_offline(options.offline)
    tracked = TrackedRun(experiment, hparams, f"test_{experiment.name}", "testing", ["test-only"], offline)
    tracked.run.update(started_from=start.parent)
    if "task_id" in start.parent:
        tracking.record_parent(tracked.task, start.parent)
    with tracked:
        tracked.evaluation_trainer(config["callbacks"]).test(config["module"], config["test_dataloaders"])
    return tracked.run


def infer(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """Run ``infer``: ``trainer.predict`` on ``infer_config(hparams, *extra_args)``."""
    hparams = experiment.hparams
    experiment.check_infer_args(options.extra_args)
    _check_kwargs(experiment, "init", pl.Trainer)
    _check_kwargs(experiment, "predict", pl.Trainer.predict)
    config = experiment.infer_config(options.extra_args, hparams)
    start = _from_task(hparams)
    if start is not None:
        start.weights_only = True  # prediction needs the weights only
        _check_start(config["module"], start)

    offline = _select_offline(options.offline)
    tracked = TrackedRun(experiment, hparams, f"infer_{experiment.name}", "inference", ["infer"],
                         offline)
    if tracked.hparams != hparams:
        config = experiment.infer_config(options.extra_args, tracked.hparams)
        if start is not None:
            _check_start(config["module"], start)
    if start is not None:
        tracking.record_parent(tracked.task, start.parent)
        tracked.run.update(started_from=start.parent)

    with tracked:
        trainer = tracked.evaluation_trainer(config["callbacks"])
        began = time.perf_counter()
        # The writers in config["callbacks"] keep the predictions; Lightning need not hold them all.
        trainer.predict(config["module"], config["predict_dataloaders"],
                        **{"return_predictions": False, **tracked.hparams["trainer"]["predict"]})
        tracked.run.update(predict_seconds=round(time.perf_counter() - began, 3))
    return tracked.run
