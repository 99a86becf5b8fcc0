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
from torch_lab.sweep.space import Sweep, read_sweep
from torch_lab.sweep.trial import optuna_pruner


def prepare(args: argparse.Namespace) -> tuple[Any, Sweep, int]:
    """The base experiment (statically checked), the validated sweep and the number of trials;
    every mistake is a UserError before anything runs, the sweep's before ``__main__.py`` is
    imported (torch, ...)."""
    from torch_lab.experiment import load_experiment
    from torch_lab.experiment.precheck import Precheck

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
    if trials is None:
        raise UserError(f"{display_path(sweep.path)}: no 'trials'; give it there or with --trials N")
    try:
        optuna_pruner(sweep.pruner)
    except (TypeError, ValueError) as error:
        raise UserError(f"{display_path(sweep.path)}: pruner {sweep.pruner}: {error}") from None
    if sweep.sampler == "grid":
        size = 1
        for values in sweep.grid().values():
            size *= len(values)
        if trials > size:
            print(f"torch-lab: the grid has {size} points; running {size} trials, not {trials}", flush=True)
            trials = size
    return sweep, trials


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
