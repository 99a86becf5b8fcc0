"""``train``: the training recipe, read top to bottom.

1. ``plan``: everything decided before any task exists: the hparams resolved once (the file's
   layering and ``--set``, a resumed run's recorded values, a dev run's limits, ``--devices``, a
   drawn seed), the Trainer arguments checked, ``train_config`` called and checked, the starting
   checkpoint found and checked. A mistake leaves nothing behind.
2. The ClearML task (``TrackedRun``), handed to a queue when ``--queue`` asks.
3. In the run directory: the lineage and sources recorded, ``fit``, the best epoch, ``test``.
4. The outcome recorded in run.json and on the task (``TrackedRun``'s ``with`` block).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking.task)
from pytorch_lightning.utilities.model_summary import ModelSummary

from torch_lab.errors import UserError
from torch_lab.experiment import Experiment, dataloaders_of
from torch_lab.experiment.hparams import apply_overrides
from torch_lab.experiment.config import logger_items, logger_labels
from torch_lab.launch import ranks, slurm
from torch_lab.launch.fit import fit
from torch_lab.launch.loggers import check_folders
from torch_lab.launch.options import RunOptions
from torch_lab.launch.start_points import (StartPoint, check_resume_epochs, check_start, from_task, recorded_hparams,
                                           resumable)
from torch_lab.launch.tracked import TrackedRun
from torch_lab.launch.trainer_args import apply_dev_run, check_kwargs, whole_batches
from torch_lab.runs.environment import environment
from torch_lab.storage.atomic import write_atomic
from torch_lab.storage.run_dir import RunDirectory
from torch_lab.tracking import task as tracking


@dataclass(frozen=True)
class Plan:
    """A training run as decided before its task exists."""

    hparams: dict[str, Any]
    config: dict[str, Any]
    start: StartPoint | None
    resume: RunDirectory | None
    task_name: str
    tags: list[str]
    offline: bool


def train(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """Run ``train``: fit, then test on the best checkpoint when ``test_dataloaders`` is given.

    With ``options.resume`` the run continues an unfinished run in its own task and directory,
    from its last checkpoint and with its recorded hparams (plus any ``--set``). ``--test-only``
    and ``--lr-find`` are commands of their own (``evaluate``, ``lr_find``).
    """
    if options.test_only is not None:
        from torch_lab.launch.evaluate import evaluate

        return evaluate(experiment, options)
    if options.lr_find is not None:
        from torch_lab.launch.lr_find import lr_find

        return lr_find(experiment, options.lr_find or None, options.offline)
    plan = make_plan(experiment, options)
    tracked = TrackedRun(experiment, plan.hparams, plan.task_name, "training", plan.tags, plan.offline,
                         plan.resume, own_loggers=bool(plan.config["loggers"]), queue=options.queue)
    if options.queue:
        tracked.enqueue(options.queue)  # this process ends here; an agent's run goes on
    with tracked:  # from here on, any outcome is recorded in run.json and on the task
        tracked.stop.check()
        config = plan.config
        if tracked.hparams != plan.hparams:  # edited in ClearML (run by an agent): built from them
            config = build_config(experiment, tracked.hparams, plan.start)
        _record_provenance(tracked, experiment, config["module"], plan.start)
        if options.dev_run is not None:
            for loader in dataloaders_of(config):
                loader.num_workers = 0
        fit(tracked, config, plan.start, dev_run=options.dev_run is not None)
    return tracked.run


def make_plan(experiment: Experiment, options: RunOptions) -> Plan:
    """Resolve the run's hparams once and check everything that can be checked before a task.
    A requeued SLURM job resumes its own unfinished run (see ``torch_lab.launch.slurm``)."""
    if options.resume is None and options.dev_run is None and (requeued := slurm.requeued_run(experiment)):
        options = dataclasses.replace(options, resume=requeued)
        if ranks.detect(1).zero:
            print(f"torch-lab: SLURM job {os.environ['SLURM_JOB_ID']} was requeued: resuming its run "
                  f"{requeued} from last.ckpt", flush=True)
    resume = resumable(experiment, options.resume, options.resume_other) if options.resume is not None else None
    hparams, task_name, tags = experiment.hparams, experiment.name, []
    if resume is not None:
        if options.dev_run is not None:
            raise UserError("--resume and --dev-run cannot be combined")
        hparams = apply_overrides(recorded_hparams(resume), options.overrides, experiment.hparams_path)
    if options.dev_run is not None:
        hparams = apply_dev_run(hparams, options.dev_run)
        task_name, tags = f"dev_{task_name}", ["dev-run"]
    if options.devices is not None:
        hparams = copy.deepcopy(hparams)
        hparams["trainer"]["init"]["devices"] = options.devices
    if hparams["seed"] is None:  # draw one and record it, so the run can be repeated
        hparams = {**hparams, "seed": random.SystemRandom().randrange(2**31)}
    experiment.config_function("train_config")
    check_kwargs(experiment, hparams, "init", pl.Trainer)
    check_kwargs(experiment, hparams, "fit", pl.Trainer.fit)
    if resume is not None:
        check_resume_epochs(resume, hparams)
        start: StartPoint | None = StartPoint(resume.checkpoints / "last.ckpt", False,
                                              f"--resume {resume.record['task_id']}")
    else:
        start = from_task(hparams)
    config = build_config(experiment, hparams, start)
    check_folders(experiment.main_path, logger_labels(config["loggers"]), logger_items(config["loggers"]),
                  resumed=resume is not None)  # the Logger objects; functions' once the run directory exists
    if isinstance(options.dev_run, float):  # a fraction of the loaders' batches, as counts
        hparams = copy.deepcopy(hparams)
        whole_batches(hparams["trainer"]["init"], config, options.dev_run)
    offline = resume.record["offline"] if resume is not None else tracking.select_offline(options.offline)
    if options.queue and offline:
        raise UserError(f"--queue {options.queue}: a ClearML agent needs a ClearML server, and this "
                        "run is offline (--offline, or no ClearML configuration)")
    return Plan(hparams, config, start, resume, task_name, tags, offline)


def build_config(experiment: Experiment, hparams: dict[str, Any], start: StartPoint | None) -> dict[str, Any]:
    """Seed, call ``train_config(hparams)`` and check that the start point fits its module."""
    pl.seed_everything(hparams["seed"], workers=True, verbose=False)
    config = experiment.train_config(hparams)
    if start is not None:
        check_start(config["module"], start)
    return config


def _record_provenance(tracked: TrackedRun, experiment: Experiment, module: Any,
                       start: StartPoint | None) -> None:
    """Rank zero keeps where the run started from, the experiment folder's sources, what it runs on
    (``environment``) and the model summary (parameters per layer) in the run directory and on
    the task."""
    if not tracked.rank_zero:
        return
    if start is not None and start.parent is not None:
        tracking.record_parent(tracked.task, start.parent)
        tracked.run.update(started_from=start.parent)
    sources = tracked.run.snapshot_sources(experiment.hparams_path.parent)
    tracked.run.update(environment=environment(experiment.hparams_path.parent))
    summary = tracked.run.path / "model_summary.txt"
    write_atomic(summary, f"{ModelSummary(module, max_depth=-1)}\n")
    tracking.record_file(tracked.task, sources)
    tracking.record_file(tracked.task, summary, configuration=True)
