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


@pytest.mark.parametrize("extra, line", [
    (["--sweep", "experiments/01_toy/sweep.py", "--seeds", "0,1"],  # issue 30, item 11: seeds were dropped
     "train: error: --sweep with --seeds: a sweep over seeds takes them from experiments/01_toy/sweep.py "
     '(e.g. "seeds": [0, 1]), so that they belong to its study'),
    (["--seeds", "0,1", "--queue", "q", "--offline"],  # item 13: each child failed in turn, exit 1
     "train: error: --queue q: a ClearML agent needs a ClearML server, and these runs are offline "
     "(--offline, or no ClearML configuration)"),
    (["experiments/01_toy/hparams.py", "--queue", "q"],  # several files, no ClearML configuration
     "train: error: --queue q: a ClearML agent needs a ClearML server, and these runs are offline "
     "(--offline, or no ClearML configuration)"),
    (["--seeds", "100000"],  # item 28: accepted
     "train: error: argument --seeds: at most 100 seeds (each one is a whole run), got 100000"),
    (["--seeds", ",".join(map(str, range(101)))],
     "train: error: argument --seeds: at most 100 seeds (each one is a whole run), got 101"),
])
def test_runs_in_children_refused_up_front(toy: Path, tmp_path: Path, extra: list[str], line: str) -> None:
    result = run_cli("train", "experiments/01_toy/hparams.py", *extra, timeout=120)
    assert (result.returncode, result.stderr.splitlines()) == (2, [line]), result.stderr[-2000:]
    assert not (tmp_path / "data" / "artifacts").exists()


def test_print_hparams_of_seeds_and_the_default_task_name(toy: Path) -> None:
    """Each seed's hparams, as its run gets them (issue 30, item 32: one dict without the seeds),
    and task.task_name's default, the experiment's name (item 38: left out)."""
    import json

    result = run_cli("train", toy, "--print-hparams", "--seeds", "3,4", "--set", "config.lr=0.5")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert list(printed) == [f"{toy} seed=3", f"{toy} seed=4"]
    assert [hparams["seed"] for hparams in printed.values()] == [3, 4]
    assert all(h["config"]["lr"] == 0.5 and h["task"]["task_name"] == "01_toy-hparams" for h in printed.values())
    named = run_cli("train", toy, "--print-hparams", "--set", "task.task_name='mine'")
    assert json.loads(named.stdout)["task"]["task_name"] == "mine"
