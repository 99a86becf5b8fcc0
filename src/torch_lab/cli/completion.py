"""Shell completion for ``train``, ``infer`` and ``runs`` (its subcommands too): shtab turns their
argparse parsers into bash and zsh completion scripts (``train --print-completion bash``). shtab
is imported only then."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Sequence

SHELLS = ("bash", "zsh")
#: Arguments completed with file names.
FILE_ARGUMENTS = ("hparams_paths", "hparams_path", "extra_args", "test_only")


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The ``shell`` completion script of ``parser``; hparams paths complete as files."""
    import shtab

    for action in parser._actions:
        if action.dest in FILE_ARGUMENTS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell)


class PrintCompletion(argparse.Action):
    """``--print-completion SHELL``: print the completion script and exit, like ``--help``."""

    def __init__(self, option_strings: Sequence[str], dest: str,
                 build: Callable[[], argparse.ArgumentParser], **kwargs: Any) -> None:
        super().__init__(option_strings, dest, choices=SHELLS, metavar="{bash,zsh}", **kwargs)
        self.build = build

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        # A fresh parser: parse_intermixed_args hides the positionals while it parses.
        print(completion_script(self.build(), values))
        parser.exit(0)
