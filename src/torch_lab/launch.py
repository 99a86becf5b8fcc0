"""The ``train`` and ``infer`` commands: experiment -> checks -> ClearML task -> run directory ->
``pl.Trainer``.

Everything that can be checked before training (hparams, ``__main__.py``, what the config
functions return, Trainer arguments, the starting checkpoint) is checked before the ClearML task
and the run directory are created, so a mistake leaves nothing behind.
"""

from __future__ import annotations

import copy
import inspect
import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking)
from pytorch_lightning.callbacks import ModelCheckpoint

from torch_lab import checkpoints, tracking
from torch_lab.callbacks import CheckpointMetadata, GracefulStop, RunHistory, scalar_metrics
from torch_lab.errors import RunFailed, UserError, display_path
from torch_lab.experiment import Experiment
from torch_lab.hparams import did_you_mean
from torch_lab.loggers import ClearMLLogger
from torch_lab.run_dir import RunDirectory, now

log = logging.getLogger(__name__)

#: Trainer arguments torch-lab sets itself.
OWNED_TRAINER_KEYS = ("logger", "callbacks", "enable_checkpointing", "default_root_dir")
#: The metric that picks best.ckpt.
BEST_MONITOR, BEST_MODE = "loss/val", "min"


@dataclass
class RunOptions:
    """What the command line asked for."""

    offline: bool = False
    dev_run: int | float | None = None
    extra_args: list[str] = field(default_factory=list)


def _check_kwargs(experiment: Experiment, block: str, function: Any) -> None:
    """Reject keys of ``hparams["trainer"][block]`` that ``function`` does not accept."""
    source = display_path(experiment.hparams_path)
    kwargs = experiment.hparams["trainer"][block]
    accepted = [p for p in inspect.signature(function).parameters if p != "self"]
    for key in kwargs:
        if key in OWNED_TRAINER_KEYS or key in ("model", "dataloaders", "train_dataloaders",
                                                "val_dataloaders", "datamodule"):
            raise UserError(f"{source}: trainer.{block}.{key} is set by torch-lab; remove it")
        if key not in accepted:
            raise UserError(
                f"{source}: trainer.{block}.{key} is not an argument of "
                f"{function.__qualname__}{did_you_mean(key, accepted)}"
            )
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


def _dataloaders(config: dict[str, Any]) -> list[Any]:
    loaders: list[Any] = []
    for key, value in config.items():
        if key.endswith("_dataloaders") and value is not None:
            loaders += value if isinstance(value, (list, tuple)) else [value]
    return loaders


class TrackedRun:
    """A ClearML task with its run directory; as a context manager, it closes both with the
    run's outcome and turns SIGINT/SIGTERM into a clean stop (see ``GracefulStop``)."""

    def __init__(self, experiment: Experiment, hparams: dict[str, Any], task_name: str,
                 task_type: str, tags: list[str], offline: bool) -> None:
        self.offline = offline
        self.trainer: pl.Trainer | None = None
        tracking.configure(offline)
        if not offline:
            tracking.check_server()
        self.task = tracking.start_task(hparams["task"], task_name, task_type, tags, offline)
        self.hparams = tracking.connect_hparams(self.task, hparams)
        tracking.store_sources(self.task, [experiment.hparams_path, experiment.main_path])
        self.session_zip = tracking.offline_session_zip(self.task)
        self.run = RunDirectory.create(
            self.task.name,
            self.task.id,
            project_name=self.task.get_project_name(),
            offline=offline,
            hparams_path=str(experiment.hparams_path),
            offline_session=str(self.session_zip) if self.session_zip else None,
        )
        self.run.write_json("hparams.json", self.hparams)
        self.stop = GracefulStop(self.run.checkpoints / "last.ckpt" if task_type == "training" else None)
        print(f"torch-lab: task {self.task.id} started; run directory {self.run.path}", flush=True)

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
        raise ``KeyboardInterrupt`` or ``RunFailed`` when the run did not complete."""
        interrupted = self.stop.received is not None or isinstance(error, KeyboardInterrupt) or (
            isinstance(error, SystemExit) and self.trainer is not None and self.trainer.interrupted
        )
        status = "completed" if error is None else "interrupted" if interrupted else "failed"
        message = None
        if status == "failed":
            message = f"{type(error).__name__}: {error}"
            trace = "".join(traceback.format_exception(error))
            (self.run.path / "traceback.txt").write_text(trace)
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


def _select_offline(requested: bool) -> bool:
    if requested:
        return True
    if not tracking.is_configured():
        print("torch-lab: no ClearML configuration found (clearml.conf or CLEARML_API_*); "
              "running offline", flush=True)
        return True
    return False


def _start_checkpoint(hparams: dict[str, Any]) -> Path | None:
    task_id = hparams["checkpoint"]["checkpoint_task_id"]
    if not task_id:
        return None
    return checkpoints.resolve_checkpoint(task_id, hparams["checkpoint"]["checkpoint_name"])


def train(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """Run ``train``: fit, then test on the best checkpoint when ``test_dataloaders`` is given."""
    hparams = experiment.hparams
    task_name, tags = experiment.name, []
    if options.dev_run is not None:
        hparams = experiment.hparams = apply_dev_run(hparams, options.dev_run)
        task_name, tags = f"dev_{task_name}", ["dev-run"]
    experiment.config_function("train_config")
    _check_kwargs(experiment, "init", pl.Trainer)
    _check_kwargs(experiment, "fit", pl.Trainer.fit)
    pl.seed_everything(0, workers=True, verbose=False)
    config = experiment.train_config(hparams)
    start_from = _start_checkpoint(hparams)
    if start_from is not None and hparams["checkpoint"]["weights_only"]:
        checkpoints.load_weights(config["module"], start_from)

    offline = _select_offline(options.offline)
    tracked = TrackedRun(experiment, hparams, task_name, "training", tags, offline)
    if tracked.hparams != hparams:  # edited in ClearML (run by an agent): rebuild from them
        pl.seed_everything(0, workers=True, verbose=False)
        config = experiment.train_config(tracked.hparams)
    if options.dev_run is not None:
        for loader in _dataloaders(config):
            loader.num_workers = 0
    run = tracked.run
    with tracked:
        best = ModelCheckpoint(dirpath=run.checkpoints, filename="best", monitor=BEST_MONITOR,
                               mode=BEST_MODE, save_top_k=1, save_last=True,
                               enable_version_counter=False, auto_insert_metric_name=False)
        trainer = tracked.trainer = pl.Trainer(
            **tracked.hparams["trainer"]["init"],
            default_root_dir=run.path,
            logger=ClearMLLogger(tracked.task),
            callbacks=[*config["callbacks"], best, RunHistory(run),
                       CheckpointMetadata(tracked.task.id, tracked.hparams), tracked.stop],
        )
        resume = start_from if start_from and not hparams["checkpoint"]["weights_only"] else None
        trainer.fit(config["module"], config["train_dataloaders"], config["val_dataloaders"],
                    ckpt_path=resume, weights_only=True if resume else None,
                    **tracked.hparams["trainer"]["fit"])
        run.update(metrics=scalar_metrics(trainer.callback_metrics),
                   best={"monitor": BEST_MONITOR, "mode": BEST_MODE,
                         "value": float(best.best_model_score) if best.best_model_score is not None
                         else None, "path": best.best_model_path or None})
        if config.get("test_dataloaders") is not None:
            trainer.test(config["module"], config["test_dataloaders"],
                         ckpt_path="best" if best.best_model_path else None,
                         weights_only=True if best.best_model_path else None)
    return run


def infer(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """Run ``infer``: ``trainer.predict`` on ``infer_config(hparams, *extra_args)``."""
    hparams = experiment.hparams
    experiment.check_infer_args(options.extra_args)
    _check_kwargs(experiment, "init", pl.Trainer)
    _check_kwargs(experiment, "predict", pl.Trainer.predict)
    config = experiment.infer_config(options.extra_args, hparams)
    start_from = _start_checkpoint(hparams)
    if start_from is not None:
        checkpoints.load_weights(config["module"], start_from)

    offline = _select_offline(options.offline)
    tracked = TrackedRun(experiment, hparams, f"infer_{experiment.name}", "inference", ["infer"],
                         offline)
    if tracked.hparams != hparams:
        config = experiment.infer_config(options.extra_args, tracked.hparams)
        if start_from is not None:
            checkpoints.load_weights(config["module"], start_from)

    with tracked:
        trainer = tracked.trainer = pl.Trainer(
            **tracked.hparams["trainer"]["init"],
            default_root_dir=tracked.run.path,
            logger=ClearMLLogger(tracked.task),
            callbacks=[*config["callbacks"], tracked.stop],
            enable_checkpointing=False,
        )
        trainer.predict(config["module"], config["predict_dataloaders"],
                        **tracked.hparams["trainer"]["predict"])
    return tracked.run
