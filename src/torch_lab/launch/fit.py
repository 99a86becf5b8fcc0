"""The fit step of ``train``: torch-lab's callbacks around the experiment's, the Trainer, ``fit``
(after validating an inherited model), the best epoch, and ``test`` on the best checkpoint."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking.task)
from pytorch_lightning.callbacks import EarlyStopping

from torch_lab.callbacks.checkpoint import Checkpoint, CheckpointMetadata
from torch_lab.callbacks.curves import CurvesPlot
from torch_lab.callbacks.group import CallbackGroup
from torch_lab.callbacks.history import RunHistory, scalar_metrics
from torch_lab.callbacks.learning_rates import LearningRates
from torch_lab.callbacks.loader_epoch_end import LoaderEpochEnd
from torch_lab.callbacks.monitor_guard import MonitorGuard
from torch_lab.callbacks.nan_guard import NaNGuard
from torch_lab.callbacks.header import RunHeader
from torch_lab.callbacks.progress import progress_display
from torch_lab.callbacks.pruning import pruning_callbacks
from torch_lab.callbacks.random_state import RandomState
from torch_lab.errors import display_path
from torch_lab.launch.loggers import log_best, own_loggers
from torch_lab.launch.start_points import StartPoint
from torch_lab.launch.tracked import TrackedRun
from torch_lab.launch.trainer_args import default_scheduler_monitor
from torch_lab.storage.checkpoint_io import AtomicCheckpointIO
from torch_lab.tracking import task as tracking
from torch_lab.tracking.logger import ClearMLLogger
from torch_lab.tracking.sync import FlushBeforeCheckpoint


def _training_callbacks(tracked: TrackedRun, config: dict[str, Any], dev_run: bool
                        ) -> tuple[list[pl.Callback], Checkpoint, RunHistory]:
    """The experiment's callbacks and torch-lab's (its plain ones as one ``CallbackGroup``, in the
    order they must run: the guards before any checkpoint of the epoch), the best-model checkpoint
    and the history (drawn as curves.png, but in dev runs: too short)."""
    run, monitor, init = tracked.run, tracked.hparams["monitor"], tracked.hparams["trainer"]["init"]
    best = Checkpoint(dirpath=run.checkpoints, filename="best", monitor=monitor["metric"],
                      mode=monitor["mode"], save_top_k=1, save_last=True,
                      enable_version_counter=False, auto_insert_metric_name=False)
    stopping = [EarlyStopping(monitor["metric"], mode=monitor["mode"], patience=monitor["patience"],
                              min_delta=monitor["min_delta"])] if monitor["patience"] is not None else []
    history = RunHistory(run, monitor)
    every = tracked.hparams["checkpoint"]["every_n_train_steps"]
    periodic = [Checkpoint(dirpath=run.checkpoints, save_top_k=0, save_last=True,
                           every_n_train_steps=every)] if every else []
    source = display_path(run.record.get("hparams_path") or "hparams")
    group = CallbackGroup([RunHeader(), NaNGuard(), MonitorGuard(source, monitor["metric"]), history,
                           *([] if dev_run else [CurvesPlot(history)]), LearningRates(),
                           CheckpointMetadata(tracked.task.id, tracked.hparams), RandomState(),
                           LoaderEpochEnd(config["train_dataloaders"]),
                           FlushBeforeCheckpoint(tracked.task), *tracked.record_hparams, tracked.stop,
                           *pruning_callbacks()])
    callbacks = [*config["callbacks"], *progress_display(init, config["callbacks"]), group, best, *periodic,
                 *stopping]
    return callbacks, best, history


def fit(tracked: TrackedRun, config: dict[str, Any], start: StartPoint | None, dev_run: bool) -> None:
    """Fit (after validating an inherited model), record the best epoch, then test on the best
    checkpoint when ``test_dataloaders`` is given."""
    run, monitor = tracked.run, tracked.hparams["monitor"]
    default_scheduler_monitor(config["module"], monitor["metric"])
    callbacks, best, history = _training_callbacks(tracked, config, dev_run)
    # 1: an experiment's own per-step self.log reaches ClearML each step (and Lightning does not warn
    # about epochs shorter than its default 50); with nothing logged per step it costs nothing measurable.
    # No model summary printed (model_summary.txt and the console's header have it).
    init = {"log_every_n_steps": 1, "enable_model_summary": False, **tracked.hparams["trainer"]["init"]}
    plugins = init.pop("plugins", None) or []
    loggers = own_loggers(tracked, config, start.path if tracked.resume is not None else None)
    trainer = tracked.trainer = pl.Trainer(
        **init,
        plugins=[*(plugins if isinstance(plugins, list) else [plugins]), AtomicCheckpointIO()],
        default_root_dir=run.path,
        logger=[ClearMLLogger(tracked.task), *loggers],
        callbacks=callbacks,
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
        log_best(loggers, outcome, trainer.global_step)
    if config.get("test_dataloaders") is not None:
        trainer.test(config["module"], config["test_dataloaders"],
                     ckpt_path="best" if best.best_model_path else None,
                     weights_only=True if best.best_model_path else None, verbose=False)
