"""``train --test-only``: test a checkpoint on ``train_config``'s test dataloaders, as a task of
its own, without training."""

from __future__ import annotations

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking.task)

from torch_lab import checkpoints
from torch_lab.errors import UserError, display_path
from torch_lab.experiment import Experiment
from torch_lab.launch.options import RunOptions
from torch_lab.launch.start_points import StartPoint, check_start
from torch_lab.launch.tracked import TrackedRun
from torch_lab.launch.trainer_args import check_kwargs
from torch_lab.storage.run_dir import RunDirectory, resolve_task_id
from torch_lab.tracking import task as tracking


def evaluate(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """``train --test-only``: test a checkpoint (a task's best, else last; or a .ckpt path) on
    ``train_config``'s ``test_dataloaders``, without training, as a task of its own."""
    hparams = experiment.hparams
    block = hparams["checkpoint"]
    reference = options.test_only
    if not reference and block["checkpoint_task_id"] is not None:
        reference = checkpoints.given_id(block["checkpoint_task_id"], "checkpoint.checkpoint_task_id")
    if not reference:
        raise UserError("--test-only needs a task id or a .ckpt path (or checkpoint.checkpoint_task_id)")
    experiment.config_function("train_config")
    check_kwargs(experiment, hparams, "init", pl.Trainer)
    pl.seed_everything(hparams["seed"] or 0, workers=True, verbose=False)
    config = experiment.train_config(hparams)
    if config.get("test_dataloaders") is None:
        raise UserError(f"{display_path(experiment.main_path)}: train_config returned no "
                        "'test_dataloaders' for --test-only")
    path = checkpoints.resolve_checkpoint(reference, None if options.test_only else block["checkpoint_name"])
    lineage = {"path": str(path)} if str(reference).endswith(".ckpt") else {
        "task_id": resolve_task_id(str(reference)), "path": str(path)}
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
