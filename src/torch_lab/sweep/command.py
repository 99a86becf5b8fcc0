"""``train HPARAMS.py --sweep SWEEP.py``: an Optuna study over ``--set`` keys, each trial one
ordinary ``train`` run in a child process (its own ClearML task, run directory, checkpoints).

The command checks the experiment and the sweep file, then runs the trials here
(``torch_lab.sweep.local``) or through ClearML agents (``torch_lab.sweep.queue``); the study is
``torch_lab.sweep.study``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from torch_lab.errors import UserError, display_path
from torch_lab.sweep.space import Sweep, candidates, read_sweep
from torch_lab.sweep.trial import optuna_pruner


def prepare(args: argparse.Namespace) -> tuple[Any, Sweep, int]:
    """The base experiment (statically checked), the validated sweep and the number of trials;
    every mistake is a UserError before anything runs, the sweep's before ``__main__.py`` is
    imported (torch, ...)."""
    from torch_lab.experiment import load_experiment
    from torch_lab.experiment.precheck import Precheck

    if args.lr_find is not None:
        raise UserError("--sweep and --lr-find cannot be combined: find the learning rate with --lr-find "
                        "first, then sweep around it")
    static = Precheck("train_config", None, ("init", "fit"))
    read: list[tuple[Sweep, int]] = []

    def checks(hparams_path: Path, main_path: Path, hparams: dict[str, Any]) -> None:
        static(hparams_path, main_path, hparams)
        read.append(check_sweep(args, hparams, hparams_path))

    experiment = load_experiment(args.hparams_path, args.overrides, checks)
    return experiment, *read[0]


def check_sweep(args: argparse.Namespace, hparams: dict[str, Any], hparams_path: Path) -> tuple[Sweep, int]:
    """Read ``--sweep`` against the base hparams; the number of trials to reach."""
    sweep = read_sweep(args.sweep, hparams, hparams_path)
    trials = args.trials or sweep.trials
    if args.timeout is not None and args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout:g}: must be more than 0 seconds")
    sweep.budget = args.timeout if args.timeout is not None else sweep.budget
    if sweep.budget is not None and args.queue:
        raise UserError(f"{display_path(sweep.path)}: a budget (or --timeout) is for sweeps run here, not --queue")
    if trials is None:
        raise UserError(f"{display_path(sweep.path)}: no 'trials'; give it there or with --trials N")
    try:
        optuna_pruner(sweep.pruner)
    except (TypeError, ValueError) as error:
        raise UserError(f"{display_path(sweep.path)}: pruner {sweep.pruner}: {error}") from None
    check_trainer_values(sweep, hparams_path)
    if sweep.sampler == "grid":
        size = int(sweep.grid_size())
        if trials > size:
            print(f"torch-lab: the grid has {size} points; running {size} trials, not {trials}", flush=True)
            trials = size
    return sweep, trials


def check_trainer_values(sweep: Sweep, hparams_path: Path) -> None:
    """Each ``trainer.init`` / ``trainer.fit`` key of the space with its values checked against
    Lightning's type hints (``max_epochs`` from a float range), as ``train`` checks the hparams:
    a value no trial could run with is refused before any trial."""
    keys = {key: key.split(".", 2) for key in sweep.space if key.split(".")[:2] in (["trainer", "init"],
                                                                                    ["trainer", "fit"])}
    if not keys:
        return
    import pytorch_lightning as pl

    from torch_lab.experiment.value_types import check_values

    functions = {"init": pl.Trainer, "fit": pl.Trainer.fit}
    for key, (_, block, name) in keys.items():
        for value in candidates(sweep.space[key]):
            try:
                check_values(display_path(hparams_path), f"trainer.{block}", {name: value}, functions[block])
            except UserError as error:
                raise UserError(f"{display_path(sweep.path)}: space: {error}") from None


def run_sweep(args: argparse.Namespace) -> int:
    """The ``train --sweep`` command; returns the exit code (0, 1 no trial completed, 2, 130)."""
    try:
        experiment, sweep, trials = prepare(args)
        if args.queue:
            from torch_lab.sweep.queue import run_on_queue

            return run_on_queue(args, experiment, sweep, trials)
        from torch_lab.sweep.local import run_local

        return run_local(args, experiment, sweep, trials)
    except KeyboardInterrupt:  # before any trial started
        print("train: interrupted", file=sys.stderr)
        return 130
    except UserError as error:
        if args.debug:
            raise
        print(f"train: error: {error}", file=sys.stderr)
        return 2
