"""A child run's ``train`` arguments come from the parent's parsed options (issue 30, item 1):
read back by ``train``'s parser they are the parent's options, less those only a parent acts on;
and a child started by a parent never starts children."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli
from torch_lab.cli.child_args import PARENT_ONLY, child_arguments
from torch_lab.cli.parsers import train_parser
from torch_lab.children.jobs import RESULT_ENV

#: A value for each option a child gets (a new option must be added here, or to PARENT_ONLY).
SAMPLES = {
    "dev_run": [["--dev-run", "0.5"], ["--dev-run", "3"]],
    "resume": [["--resume"], ["--resume", "offline-1"]],
    "resume_other": [["--resume-other"]],
    "test_only": [["--test-only"], ["--test-only=-odd.ckpt"]],
    "devices": [["--devices", "0,"], ["--devices", "0,1"], ["--devices", "auto"], ["--devices", "2"]],
    "queue": [["--queue", "gpu"]],
    "lr_find": [["--lr-find"], ["--lr-find", "20"]],
    "offline": [["--offline"]], "verbose": [["--verbose"]], "debug": [["--debug"]],
    "overrides": [["--set", "config.lr=0.1", "--set", "config.name='-x'"]],
}


def parents_and_children() -> list[tuple[list[str], list[str]]]:
    parser = train_parser()
    cases = []
    for options in SAMPLES.values():
        for option in options:
            argv = ["a.py", "b.py", "--parallel", "--seeds", "0,1", *option]
            cases.append((argv, ["a.py", *child_arguments(parser, parser.parse_intermixed_args(argv))]))
    return cases


def test_every_option_is_a_childs_or_the_parents() -> None:
    dests = {action.dest for action in train_parser()._actions if action.dest != "help"}
    assert dests - {"version", "print_completion"} == set(SAMPLES) | PARENT_ONLY


@pytest.mark.parametrize("argv, child", parents_and_children())
def test_a_child_gets_the_parents_options_less_the_parents_own(argv: list[str], child: list[str]) -> None:
    parser = train_parser()
    parent, read = vars(parser.parse_intermixed_args(argv)), vars(parser.parse_intermixed_args(child))
    assert {k: v for k, v in read.items() if k not in PARENT_ONLY} == {
        k: v for k, v in parent.items() if k not in PARENT_ONLY}
    assert read["seeds"] is None and not read["parallel"] and read["hparams_paths"] == ["a.py"]


def test_a_child_never_starts_children(toy: Path, tmp_path: Path) -> None:
    """``train`` with a result file (a parent started it) refuses several files, --seeds, --sweep."""
    for extra in ([str(toy)], ["--seeds", "0,1"], ["--sweep", "s.py"]):
        result = run_cli("train", toy, *extra, "--offline", env={RESULT_ENV: str(tmp_path / "r.json")})
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"train: error: this train was started by another ({RESULT_ENV} is set) and starts no runs "
            "of its own (several files, --seeds, --sweep)"]
