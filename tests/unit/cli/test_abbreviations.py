"""A flag is its whole name (issue 30, item 1): argparse's abbreviations read ``train H --seed 3``
as ``--seeds 3``, whose children kept ``--seed 3`` and each started a seed group of its own (341
processes in 25 s). Every flag of every command and subcommand, found in the parsers themselves
(a new flag is covered as it is added), is refused abbreviated: exit 2, one line naming it, no
child process."""

from __future__ import annotations

import argparse
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import run_cli
from torch_lab.cli import runs
from torch_lab.cli.main import export_main, infer_main, train_main
from torch_lab.cli.parsers import export_parser, infer_parser, train_parser
from torch_lab.cli.runs_parsers import runs_parser

#: Each command: its entry point, its parser and the positionals put before the flag.
COMMANDS: dict[str, tuple[Callable[[list[str]], int], Callable[[], argparse.ArgumentParser], list[str]]] = {
    "train": (train_main, train_parser, ["h.py"]),
    "infer": (infer_main, infer_parser, ["h.py"]),
    "export-model": (export_main, export_parser, ["h.py", "abc"]),
    "runs": (runs.main, runs_parser, []),
}


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((action.choices for action in parser._actions
                 if isinstance(action, argparse._SubParsersAction)), {})


def flags(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions for option in action.option_strings if option.startswith("--")]


def abbreviated(flag: str, taken: list[str]) -> str:
    """``flag`` one or more letters short, no other flag's whole name."""
    short = flag[:-1]
    while short in taken:
        short = short[:-1]
    assert len(short) > 3, flag
    return short


def cases() -> Iterator[tuple[str, list[str], str]]:
    """``(command, argv, flag)`` for every flag of every command and subcommand."""
    for command, (_, make, positionals) in COMMANDS.items():
        parser = make()
        for flag in flags(parser):
            yield command, [*positionals, abbreviated(flag, flags(parser))], flag
        for name, sub in subcommands(parser).items():
            ids = ["abc" for action in sub._actions if not action.option_strings
                   for _ in range(action.nargs if isinstance(action.nargs, int) else action.nargs == "+")]
            for flag in flags(sub):
                yield command, [name, *ids, abbreviated(flag, flags(sub))], flag


@pytest.fixture
def no_children(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No process may start; the commands' signal handlers are put back afterwards."""
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a child process was started: {args}")

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(subprocess, "Popen", refused)
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_every_command_and_subcommand_is_walked() -> None:
    walked = {(command, argv[0] if command == "runs" and argv and not argv[0].startswith("-") else None)
              for command, argv, _ in cases()}
    assert walked >= {("train", None), ("infer", None), ("export-model", None), ("runs", None),
                      *(("runs", name) for name in subcommands(runs_parser()))}
    assert {"--seeds", "--set", "--resume-other", "--print-completion", "--help"} <= {f for _, _, f in cases()}


@pytest.mark.parametrize("command, argv, flag", [pytest.param(*case, id=f"{case[0]} {' '.join(case[1])}")
                                                 for case in cases()])
def test_an_abbreviated_flag_is_refused(command: str, argv: list[str], flag: str, no_children: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    main = COMMANDS[command][0]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    [line] = err.strip().splitlines()
    assert line.startswith(f"{command}: error: unrecognized arguments: {argv[-1]}") and f"'{flag}'" in line, line
    assert out == ""


def test_train_seed_3_exits_at_once(toy: Path) -> None:
    """The command of the report, through the console script: one line, exit 2, in seconds (it
    forked without end: the timeout would fire)."""
    start = time.monotonic()
    result = run_cli("train", toy, "--seed", "3", "--offline", timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        "train: error: unrecognized arguments: --seed 3 (did you mean '--seeds'?)"]
    assert time.monotonic() - start < 30
    assert not (toy.parents[2] / "data" / "artifacts").exists()
