"""The run header through the real ``train`` script."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli


def test_control_characters_in_the_task_name_are_printed_escaped(toy: Path) -> None:
    """A task name holding a clear-screen sequence, an OSC title and BEL cannot drive the
    terminal (issue 20, item 14): the header prints it escaped."""
    name = r"evil\x1b[2J\x1b]0;owned\x07name"  # the --set value is a Python literal: real escapes
    result = run_cli("train", toy, "--offline", "--dev-run", "1", "--set", f"task.task_name='{name}'")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not any(char in result.stdout + result.stderr for char in "\x1b\x07")
    assert f"torch-lab: dev_{name} (" in result.stdout or f"torch-lab: {name} (" in result.stdout, result.stdout
