"""``train ... --slurm``: the runs of the command checked here, as they would be before running
here, then submitted as one SLURM job (``torch_lab.children.sbatch``): one run, a job array of
several files or seeds, or one job running a sweep."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from torch_lab.children import sbatch, seeds
from torch_lab.cli.child_args import SLURM_ONLY, child_arguments
from torch_lab.errors import UserError

#: What a sweep's job runs: the whole command (``--sweep``, ``--trials``, ...) but ``--slurm``'s options.
SWEEP_LEAVES_OUT = frozenset({"hparams_paths", "print_hparams", *SLURM_ONLY})


def submit(parser: argparse.ArgumentParser, args: argparse.Namespace, paths: list[str],
           precheck: Callable[[str, argparse.Namespace], Any]) -> int:
    """Check each run (``precheck``: the CLI's static checks), submit them; the exit code (0, or 2
    with one line for a missing sbatch, a mistake in a file, a refused submission)."""
    try:
        sbatch.sbatch_path()
        if args.sweep:
            # A sweep's trials need its Optuna study and ClearML task: one job runs the sweep.
            from torch_lab.sweep.command import prepare

            args.hparams_path = paths[0]
            prepare(args)
            return sbatch.submit(args, [(paths[0], [paths[0], *child_arguments(parser, args, SWEEP_LEAVES_OUT)])],
                                 paths)
        from torch_lab.experiment import load_experiment

        for path in paths:
            load_experiment(path, args.overrides, precheck("train", args))
        child_args = child_arguments(parser, args)
        if args.seeds is None:
            return sbatch.submit(args, [(path, [path, *child_args]) for path in paths], paths)
        chosen, group = seeds.announce(paths, args.seeds, args.overrides, args.devices)
        return sbatch.submit(args, seeds.jobs(paths, chosen, child_args), paths, group)
    except UserError as error:
        if args.debug:
            raise
        print(f"train: error: {error}", file=sys.stderr)
        return 2
