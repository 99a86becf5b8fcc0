"""The ``train`` arguments of a child run (one of several files, one seed of ``--seeds``), built
from the parent's parsed options, never by filtering its command line: what only the parent does
(more files, seeds, a sweep, ``--parallel``) cannot reach a child, whatever the user typed (a
kept ``--seed 3``, read by argparse as ``--seeds 3``, made every child a parent of more).

A child started by a parent knows it by ``RESULT_ENV`` and refuses to start children itself
(``refuse_nested``): the process tree is never deeper than parent and children."""

from __future__ import annotations

import argparse
import os

from torch_lab.children.jobs import RESULT_ENV, argument_text

#: ``train``'s options that only submit the command as a SLURM job (``torch_lab.children.sbatch``).
SLURM_ONLY = frozenset({"slurm", "nodes", "gpus_per_node", "time", "partition", "account", "sbatch_args",
                        "max_parallel"})
#: ``train``'s options the parent acts on itself, never passed to a child.
PARENT_ONLY = frozenset({"hparams_paths", "parallel", "seeds", "sweep", "trials", "timeout", "print_hparams",
                         *SLURM_ONLY})


def child_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    leave_out: frozenset[str] = PARENT_ONLY) -> list[str]:
    """The options of ``args`` (parsed by ``parser``, ``train``'s) a child run gets, as
    ``--flag`` or ``--flag=value`` (a value starting with ``-`` stays a value); all but those
    whose dest is in ``leave_out``."""
    arguments: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in leave_out or action.default is argparse.SUPPRESS:
            continue  # positionals, --help, --version, --print-completion
        flag, value = action.option_strings[-1], getattr(args, action.dest, None)
        if action.nargs == 0:
            arguments += [flag] if value else []
        elif isinstance(action, argparse._AppendAction):
            arguments += [f"{flag}={item}" for item in value or []]
        elif value is not None:
            arguments.append(flag if action.nargs == "?" and value == action.const else f"{flag}={argument_text(value)}")
    return arguments


def refuse_nested(parser: argparse.ArgumentParser) -> None:
    """Exit 2 when this ``train`` was started by another (it has a result file) and would start
    runs of its own: a child never has children."""
    if os.environ.get(RESULT_ENV):
        parser.error(f"this train was started by another ({RESULT_ENV} is set) and starts no runs of "
                     "its own (several files, --seeds, --sweep)")
