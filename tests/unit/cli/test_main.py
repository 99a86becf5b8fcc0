"""The console scripts as a user meets them: --help, command-line errors, --debug. Bad inputs
and their one-line errors are in test_bad_inputs.py."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from torch_lab.cli.parsers import dev_run_value


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from torch_lab.cli.main import train_main, infer_main\n"
        "for main in (train_main, infer_main):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0\n"
        "heavy = {'torch', 'pytorch_lightning', 'clearml', 'torchmetrics', 'shtab'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: train" in result.stdout and "usage: infer" in result.stdout


def test_help_of_the_installed_scripts() -> None:
    for script in ("train", "infer"):
        result = run_cli(script, "--help")
        assert result.returncode == 0
        assert "--offline" in result.stdout and "--set KEY=VALUE" in result.stdout


def test_version_of_the_installed_scripts() -> None:
    """The version is pyproject's, read from the installed distribution."""
    import tomllib

    version = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())["project"]["version"]
    for script in ("train", "infer", "runs"):
        result = run_cli(script, "--version")
        assert (result.returncode, result.stdout) == (0, f"{script} (torch-lab) {version}\n"), result.stderr


@pytest.mark.parametrize("text, value", [("5", 5), ("0.25", 0.25), ("1.0", 1.0)])
def test_dev_run_values(text, value) -> None:
    assert dev_run_value(text) == value and type(dev_run_value(text)) is type(value)


def test_bad_command_line_is_exit_2(toy: Path) -> None:
    result = run_cli("train", toy, "--dev-run", "zero")
    assert result.returncode == 2 and "--dev-run: expected an int or a float" in result.stderr


@pytest.mark.parametrize("steps", ["-5", "0"])
def test_lr_find_needs_a_positive_step_count(toy: Path, steps: str) -> None:
    """``--lr-find -5`` ran 0 steps and exited 0 (issue 20, item 19)."""
    result = run_cli("train", toy, "--lr-find", steps)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"train: error: argument --lr-find: must be at least 1, got {steps}"


def test_debug_prints_traceback_and_enters_the_debugger(toy: Path) -> None:
    toy.write_text("hparams = {'task': {}}\n")
    result = run_cli("train", toy, "--debug", stdin="p 'inspected'\nq\n")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "UserError" in result.stderr
    assert "(Pdb)" in result.stdout and "'inspected'" in result.stdout


def test_a_burst_of_signals_before_a_run_interrupts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before a run takes the signals over, the first one interrupts the command and its repeats
    (a killed parent's Linux sends up to 7) pass: raised again while the first is handled, they
    could end it with a traceback instead of exit code 130."""
    import signal

    from torch_lab.cli import main
    from torch_lab.signals import Burst

    monkeypatch.setattr(main, "_burst", Burst())
    monkeypatch.setattr(main, "_signalled", [])
    with pytest.raises(KeyboardInterrupt):
        main._interrupt(signal.SIGTERM, None)
    main._interrupt(signal.SIGTERM, None)
    main._interrupt(signal.SIGINT, None)
    assert main._signalled == [signal.SIGTERM]
