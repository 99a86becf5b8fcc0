"""The console scripts as a user meets them: --help, and one-line errors with exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from torch_lab.cli import dev_run_value


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from torch_lab.cli import train_main, infer_main\n"
        "for main in (train_main, infer_main):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0\n"
        "heavy = {'torch', 'pytorch_lightning', 'clearml', 'torchmetrics'} & set(sys.modules)\n"
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


@pytest.mark.parametrize("text, value", [("5", 5), ("0.25", 0.25), ("1.0", 1.0)])
def test_dev_run_values(text, value) -> None:
    assert dev_run_value(text) == value and type(dev_run_value(text)) is type(value)


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [expected], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_file(toy: Path) -> None:
    assert_one_line_error(run_cli("train", "experiments/01_toy/nope.py"),
                          "train: error: experiments/01_toy/nope.py: no such file")


def test_no_hparams(toy: Path) -> None:
    toy.write_text("params = {}\n")
    assert_one_line_error(run_cli("train", toy),
                          "train: error: experiments/01_toy/hparams.py: defines no 'hparams' dict")


def test_unknown_top_level_key(toy: Path) -> None:
    toy.write_text("hparams = {'task': {'project_name': 'p'}, 'trainr': {}}\n")
    assert_one_line_error(run_cli("train", toy), "train: error: experiments/01_toy/hparams.py: "
                          "unknown top-level key 'trainr' (did you mean 'trainer'?)")


def test_missing_train_config(toy: Path) -> None:
    (toy.parent / "__main__.py").write_text("def infer_config(hparams):\n    return {}\n")
    assert_one_line_error(run_cli("train", toy), "train: error: experiments/01_toy/__main__.py: "
                          "no function 'train_config' defined")


def test_wrong_return_keys(toy: Path) -> None:
    (toy.parent / "__main__.py").write_text(
        "def train_config(hparams):\n    return {'model': None, 'train_dataloaders': None}\n")
    assert_one_line_error(run_cli("train", toy), "train: error: experiments/01_toy/__main__.py: "
                          "train_config returned unknown key 'model' (allowed: callbacks, module, "
                          "test_dataloaders, train_dataloaders, val_dataloaders)")


def test_bad_set(toy: Path) -> None:
    assert_one_line_error(run_cli("train", toy, "--set", "config.lrr=0.1"),
                          "train: error: --set config.lrr: no key 'config.lrr' in "
                          "experiments/01_toy/hparams.py (did you mean 'lr'?)")


def test_invalid_trainer_argument(toy: Path) -> None:
    assert_one_line_error(run_cli("train", toy, "--set", "trainer.init.max_epoch=1"),
                          "train: error: experiments/01_toy/hparams.py: trainer.init.max_epoch is not "
                          "an argument of Trainer (did you mean 'max_epochs'?)")


def test_infer_with_wrong_extra_args(toy: Path) -> None:
    assert_one_line_error(run_cli("infer", toy, "1", "2"),
                          "infer: error: experiments/01_toy/__main__.py: infer_config(hparams, count) "
                          "takes different arguments than the 2 given after the hparams path: ['1', '2']")


def test_errors_before_training_leave_nothing_behind(toy: Path, tmp_path: Path) -> None:
    run_cli("train", toy, "--set", "config.lr=[")
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "clearml-cache" / "offline").exists()


def test_bad_command_line_is_exit_2(toy: Path) -> None:
    result = run_cli("train", toy, "--dev-run", "zero")
    assert result.returncode == 2 and "--dev-run: expected an int or a float" in result.stderr


def test_debug_prints_traceback_and_enters_the_debugger(toy: Path) -> None:
    toy.write_text("hparams = {'task': {}}\n")
    result = run_cli("train", toy, "--debug", stdin="p 'inspected'\nq\n")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "UserError" in result.stderr
    assert "(Pdb)" in result.stdout and "'inspected'" in result.stdout
