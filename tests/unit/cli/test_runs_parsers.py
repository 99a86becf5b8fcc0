"""How ``runs``' arguments are split between the listing and its subcommands (the parser itself),
and ``runs --help``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from torch_lab.cli.runs_parsers import parse


def test_a_first_argument_naming_a_command_selects_it() -> None:
    listing = parse(["mlp-*", "--status", "failed", "--last", "2"])
    assert (listing.command, listing.pattern, listing.status, listing.last) == (None, "mlp-*", ["failed"], 2)
    assert (parse([]).command, parse([]).pattern) == (None, None)
    assert parse(["--status", "du", "--json"]).command is None  # an option's value is no command
    du = parse(["--root", "r", "du", "zzz"])
    assert (du.command, du.pattern, du.root) == ("du", "zzz", Path("r"))  # --root before the command
    assert parse(["prune", "--root", "r", "--keep", "last", "--dry-run"]).keep == "last"
    assert parse(["rm", "a", "b"]).ids == ["a", "b"] and parse(["rm", "a"]).yes is False
    # a run directory named like a command: the command wins; a pattern finds it (runs 'du*')
    assert parse(["show", "du"]).ids == ["du"] and parse(["du*"]).pattern == "du*"


def test_mistakes_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["mlp", "extra"], ["prune", "--keep", "all"], ["rm"], ["show", "a", "b"]):
        with pytest.raises(SystemExit) as exited:
            parse(argv)
        assert exited.value.code == 2
    assert "runs prune: error: argument --keep: invalid choice: 'all'" in capsys.readouterr().err


def test_help_lists_the_commands_and_imports_nothing_heavy() -> None:
    code = ("import sys\nfrom torch_lab.cli.runs import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'clearml', "
            "'pytorch_lightning', 'lightning', 'matplotlib', 'shtab')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    *help_text, heavy = result.stdout.splitlines()
    assert heavy == "[]"
    commands = "\n".join(help_text).split("commands:\n", 1)[1]
    assert [line.split()[0] for line in commands.splitlines()[1:10]] == [
        "show", "compare", "diff", "plot", "report", "sync", "du", "rm", "prune"]
