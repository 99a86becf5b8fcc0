"""What ``python -m torch_lab`` prints: the console scripts, one line each, and ``--version``.

Each line is the first sentence of that command's own parser description, so this list cannot
drift from ``train --help`` and the others. Building the parsers imports nothing heavy.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable


def _commands() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from torch_lab.cli.parsers import export_parser, infer_parser, train_parser
    from torch_lab.cli.runs_parsers import runs_parser

    return {"train": train_parser, "infer": infer_parser, "export-model": export_parser,
            "runs": runs_parser}


def summary() -> str:
    """The commands with the first sentence of each one's description."""
    commands = _commands()
    width = max(map(len, commands))
    lines = ["torch-lab: launch PyTorch Lightning experiments from hparams scripts, tracked in ClearML.",
             "", "commands:"]
    for name, build in commands.items():
        first = (build().description or "").split(". ")[0].rstrip(".")
        lines.append(f"  {name:<{width}}  {first}.")
    lines += ["", "Run `COMMAND --help` for a command's options; `python -m torch_lab --version`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the summary (or the version with ``--version``); exit 0, or 2 on an unknown argument."""
    parser = argparse.ArgumentParser(prog="python -m torch_lab", add_help=True, allow_abbrev=False,
                                     description="List torch-lab's commands.")
    parser.add_argument("--version", action="store_true", help="print torch-lab's version and exit")
    args = parser.parse_args(argv)
    import torch_lab

    try:
        print(f"torch-lab {torch_lab.__version__}" if args.version else summary())
    except BrokenPipeError:  # e.g. `python -m torch_lab | head -1`
        sys.stderr.close()
    return 0

