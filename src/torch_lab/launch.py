"""The ``train`` and ``infer`` commands: experiment -> checks -> ClearML task -> run directory ->
``pl.Trainer``.

Everything that can be checked before training (hparams, ``__main__.py``, what the config
functions return, Trainer arguments, the starting checkpoint) is checked before the ClearML task
and the run directory are created, so a mistake leaves nothing behind.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking)
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.utilities.model_summary import ModelSummary

from torch_lab import checkpoints, tracking
from torch_lab.callback_group import CallbackGroup, Checkpoint
from torch_lab.callbacks import (
    CheckpointMetadata,
    RandomState,
    RunHistory,
    scalar_metrics,
)
from torch_lab.checkpoint_io import AtomicCheckpointIO
from torch_lab.curves import CurvesPlot
from torch_lab.errors import UserError, display_path
from torch_lab.experiment import Experiment, dataloaders_of, infer_weights
from torch_lab.hparams import apply_overrides
from torch_lab.learning_rates import LearningRates
from torch_lab.loggers import ClearMLLogger
from torch_lab.monitor_guard import MonitorGuard
from torch_lab.nan_guard import NaNGuard
from torch_lab.pruning import pruning_callbacks
from torch_lab.run_dir import RunDirectory, write_atomic
from torch_lab.start_points import (
    StartPoint,
    check_start,
    from_task,
    recorded_hparams,
    resumable,
)
from torch_lab.task_sync import FlushBeforeCheckpoint
from torch_lab.tracked_run import TrackedRun, progress_bar
from torch_lab.trainer_args import (
    apply_dev_run,
    check_kwargs,
    default_scheduler_monitor,
    whole_batches,
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
    lr_find: int | None = None  # --lr-find: the number of steps (0: the default)


def _record_reproducibility(tracked: TrackedRun, experiment: Experiment, module: Any) -> None:
    """Keep the experiment folder's sources and the model summary (parameters per layer) in the
    run directory and on the task."""
    sources = tracked.run.snapshot_sources(experiment.hparams_path.parent)
    summary = tracked.run.path / "model_summary.txt"
    write_atomic(summary, f"{ModelSummary(module, max_depth=-1)}\n")
    tracking.record_file(tracked.task, sources)
    tracking.record_file(tracked.task, summary, configuration=True)


def train(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """Run ``train``: fit, then test on the best checkpoint when ``test_dataloaders`` is given.

    With ``options.resume`` the run continues an unfinished run in its own task and directory,
    from its last checkpoint and with its recorded hparams (plus any ``--set``). With
    ``options.test_only`` nothing is trained (see ``evaluate``).
    """
    if options.test_only is not None:
        return evaluate(experiment, options)
    if options.lr_find is not None:
        from torch_lab.lr_find import lr_find

        return lr_find(experiment, options.lr_find or None, options.offline)
    resume = resumable(experiment, options.resume) if options.resume is not None else None
    if resume is not None:
        if options.dev_run is not None:
            raise UserError("--resume and --dev-run cannot be combined")
        recorded = recorded_hparams(resume)
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
    check_kwargs(experiment, "init", pl.Trainer)
    check_kwargs(experiment, "fit", pl.Trainer.fit)
    pl.seed_everything(hparams["seed"], workers=True, verbose=False)
    config = experiment.train_config(hparams)
    if isinstance(options.dev_run, float):
        whole_batches(hparams["trainer"]["init"], config, options.dev_run)
    if resume is not None:
        start: StartPoint | None = StartPoint(resume.checkpoints / "last.ckpt", False,
                                              f"--resume {resume.record['task_id']}")
    else:
        start = from_task(hparams)
    if start is not None:
        check_start(config["module"], start)

    offline = resume.record["offline"] if resume is not None else tracking.select_offline(options.offline)
    if options.queue and offline:
        raise UserError(f"--queue {options.queue}: a ClearML agent needs a ClearML server, and this "
                        "run is offline (--offline, or no ClearML configuration)")
    tracked = TrackedRun(experiment, hparams, task_name, "training", tags, offline, resume,
                         options.queue)
    with tracked:  # from here on, any outcome is recorded in run.json and on the task
        tracked.stop.check()
        if tracked.hparams != hparams:  # edited in ClearML (run by an agent): rebuild from them
            pl.seed_everything(tracked.hparams["seed"], workers=True, verbose=False)
            config = experiment.train_config(tracked.hparams)
            if start is not None:
                check_start(config["module"], start)
        if start is not None and start.parent is not None and tracked.rank_zero:
            tracking.record_parent(tracked.task, start.parent)
            tracked.run.update(started_from=start.parent)
        if tracked.rank_zero:
            _record_reproducibility(tracked, experiment, config["module"])
        if options.dev_run is not None:
            for loader in dataloaders_of(config):
                loader.num_workers = 0
        _fit(tracked, config, start, options.dev_run is not None)
    return tracked.run


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
    group = CallbackGroup([NaNGuard(), MonitorGuard(source, monitor["metric"]), history,
                           *([] if dev_run else [CurvesPlot(history)]), LearningRates(),
                           CheckpointMetadata(tracked.task.id, tracked.hparams), RandomState(),
                           FlushBeforeCheckpoint(tracked.task), *tracked.record_hparams, tracked.stop,
                           *pruning_callbacks()])
    callbacks = [*config["callbacks"], *progress_bar(init, config["callbacks"]), group, best, *periodic,
                 *stopping]
    return callbacks, best, history


def _fit(tracked: TrackedRun, config: dict[str, Any], start: StartPoint | None, dev_run: bool) -> None:
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
    trainer = tracked.trainer = pl.Trainer(
        **init,
        plugins=[*(plugins if isinstance(plugins, list) else [plugins]), AtomicCheckpointIO()],
        default_root_dir=run.path,
        logger=ClearMLLogger(tracked.task),
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
    if config.get("test_dataloaders") is not None:
        trainer.test(config["module"], config["test_dataloaders"],
                     ckpt_path="best" if best.best_model_path else None,
                     weights_only=True if best.best_model_path else None, verbose=False)


def evaluate(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """``train --test-only``: test a checkpoint (a task's best, else last; or a .ckpt path) on
    ``train_config``'s ``test_dataloaders``, without training, as a task of its own."""
    hparams = experiment.hparams
    block = hparams["checkpoint"]
    reference = options.test_only or block["checkpoint_task_id"]
    if not reference:
        raise UserError("--test-only needs a task id or a .ckpt path (or checkpoint.checkpoint_task_id)")
    experiment.config_function("train_config")
    check_kwargs(experiment, "init", pl.Trainer)
    pl.seed_everything(hparams["seed"] or 0, workers=True, verbose=False)
    config = experiment.train_config(hparams)
    if config.get("test_dataloaders") is None:
        raise UserError(f"{display_path(experiment.main_path)}: train_config returned no "
                        "'test_dataloaders' for --test-only")
    path = checkpoints.resolve_checkpoint(reference, None if options.test_only else block["checkpoint_name"])
    lineage = {"path": str(path)} if str(reference).endswith(".ckpt") else {"task_id": reference,
                                                                            "path": str(path)}
    start = StartPoint(path, True, f"checkpoint {reference} ({path})", lineage)
    check_start(config["module"], start)

    offline = tracking.select_offline(options.offline)
    tracked = TrackedRun(experiment, hparams, f"test_{experiment.name}", "testing", ["test-only"], offline)
    with tracked:
        tracked.stop.check()
        tracked.run.update(started_from=start.parent)
        if "task_id" in start.parent:
            tracking.record_parent(tracked.task, start.parent)
        tracked.evaluation_trainer(config["callbacks"]).test(config["module"], config["test_dataloaders"],
                                                             verbose=False)  # the summary has them
    return tracked.run


def infer(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """Run ``infer``: ``trainer.predict`` on ``infer_config(hparams, *extra_args)``."""
    hparams = experiment.hparams
    experiment.check_infer_args(options.extra_args)
    check_kwargs(experiment, "init", pl.Trainer)
    check_kwargs(experiment, "predict", pl.Trainer.predict)
    config = experiment.infer_config(options.extra_args, hparams)
    start = from_task(hparams)
    if start is not None:
        start.weights_only = True  # prediction needs the weights only
        check_start(config["module"], start)
    weights = infer_weights(experiment, config, start.label if start is not None else None)

    offline = tracking.select_offline(options.offline)
    tracked = TrackedRun(experiment, hparams, f"infer_{experiment.name}", "inference", ["infer"],
                         offline)
    with tracked:
        tracked.stop.check()
        if tracked.hparams != hparams:
            config = experiment.infer_config(options.extra_args, tracked.hparams)
            if start is not None:
                check_start(config["module"], start)
        if start is not None:
            tracking.record_parent(tracked.task, start.parent)
            tracked.run.update(started_from=start.parent)
        tracked.run.update(weights=weights)
        print(f"torch-lab: predicting with the weights of {weights}", flush=True)
        trainer = tracked.evaluation_trainer(config["callbacks"])
        began = time.perf_counter()
        # The writers in config["callbacks"] keep the predictions; Lightning need not hold them all.
        trainer.predict(config["module"], config["predict_dataloaders"],
                        **{"return_predictions": False, **tracked.hparams["trainer"]["predict"]})
        tracked.run.update(predict_seconds=round(time.perf_counter() - began, 3))
    return tracked.run
