"""The console as a user sees it: the demo's ``train --dev-run 2 --offline`` and ``infer``
through the real console scripts, on a pseudo-terminal (a progress bar) and into a file (progress
lines, no redraws), with everything else in the run directory's console.log."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import DEMO, run_cli, sets

#: Lines of ClearML, Lightning and warnings that the console must not show (console.log has them).
NOISE = ("ClearML Task: created", "Could not fetch GPU stats", "NVML", "GPU available", "TPU available",
         "litlogger", "Total Flops", "LeafSpec", "GPU monitoring failed", "v_num", "No repository found",
         "Test metric", "Trainable params", "Offline session stored in")


def script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def in_pty(command: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """Run ``command`` on a pseudo-terminal (160 columns), as in a user's shell; its exit code and
    everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while select.select([master], [], [], timeout)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the process has exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def into_file(command: list[str], env: dict[str, str], path: Path) -> tuple[int, str]:
    """Run ``command`` with stdout and stderr into ``path``, as ``> path 2>&1``."""
    with open(path, "w") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, timeout=300).returncode
    return code, path.read_text()


def shown(text: str) -> list[str]:
    """The lines as a terminal leaves them: each line's text after its last carriage return."""
    return [line.split("\r")[-1].rstrip() for line in text.replace("\r\n", "\n").split("\n")]


def check_console(text: str, run: Path, epochs: bool) -> None:
    lines = shown(text)
    for noise in NOISE:
        assert noise not in text, noise
    if epochs:
        epoch_lines = [line for line in text.replace("\r\n", "\n").split("\n") if "epoch 0/0:" in line]
        assert len(epoch_lines) == 1
        assert epoch_lines[0].split("\r")[-1].startswith("epoch 0/0: accuracy/train="), epoch_lines[0]
    record = json.loads((run / "run.json").read_text())
    assert f"torch-lab: task {record['task_id']} started; run directory {run}" in lines
    assert any(line.startswith(f"torch-lab: {record['task_name']} (example_project), offline; cpu")
               and line.endswith(" parameters") for line in lines)
    summary = [line for line in lines if line.startswith("torch-lab: completed in ")]
    assert summary, text
    if epochs:
        assert "; best loss/val=" in summary[0] and "; test accuracy/test=" in summary[0]
    assert f"torch-lab: task {record['task_id']} completed; run directory {run}" in lines
    assert f"clearml-task --import-offline-session {record['offline_session']}" in text
    log = (run / "console.log").read_text()
    for kept in ("ClearML Task: created new task id", "GPU available: False", "started; run directory",
                 "completed; run directory"):
        assert kept in log, kept
    assert "LeafSpec" in log  # the warning, captured
    assert "\r" not in log  # no bar redraws in the file


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("PYTHONWARNINGS", None)  # the warnings a user would get, into console.log
    return env


def run_dir(tmp_path: Path, prefix: str) -> Path:
    [run] = [p for p in (tmp_path / "data" / "artifacts").glob(f"{prefix}*") if p.is_dir()]
    return run


def test_train_on_a_terminal_and_infer_into_a_file(tiny_mnist: Path, tmp_path: Path) -> None:
    data = sets(f"config.data_dir='{tiny_mnist}'", "config.val_size=64")
    env = environment(tmp_path)
    code, text = in_pty([script("train"), str(DEMO / "hparams.py"), "--dev-run", "2", "--offline", *data], env)
    assert code == 0, text
    trained = run_dir(tmp_path, "dev_00_mnist_demo")
    check_console(text, trained, epochs=True)
    assert "Epoch 0: 100%" in text  # the bar was drawn
    task_id = json.loads((trained / "run.json").read_text())["task_id"]

    code, text = into_file([script("infer"), str(DEMO / "hparams.py"), task_id, "preds.csv", "--offline", *data],
                           environment(tmp_path, TORCH_LAB_PROGRESS_INTERVAL="0"), tmp_path / "infer.txt")
    assert code == 0, text
    inferred = run_dir(tmp_path, "infer_00_mnist_demo")
    check_console(text, inferred, epochs=False)
    assert "\r" not in text and "predict: 1/1 batches (100%)" in text  # progress lines, no bar
    assert f"torch-lab: predicting with the weights of checkpoint {trained / 'checkpoints'}" in text


@pytest.mark.slow
def test_train_into_a_file_and_infer_on_a_terminal(tiny_mnist: Path, tmp_path: Path) -> None:
    data = sets(f"config.data_dir='{tiny_mnist}'", "config.val_size=64")
    code, text = into_file([script("train"), str(DEMO / "hparams.py"), "--dev-run", "2", "--offline", *data],
                           environment(tmp_path, TORCH_LAB_PROGRESS_INTERVAL="0"), tmp_path / "train.txt")
    assert code == 0, text
    trained = run_dir(tmp_path, "dev_00_mnist_demo")
    check_console(text, trained, epochs=True)
    assert "\r" not in text and "epoch 0: 2/2 batches (100%)" in text
    task_id = json.loads((trained / "run.json").read_text())["task_id"]

    code, text = in_pty([script("infer"), str(DEMO / "hparams.py"), task_id, "preds.csv", "--offline", *data],
                        environment(tmp_path))
    assert code == 0, text
    check_console(text, run_dir(tmp_path, "infer_00_mnist_demo"), epochs=False)
    assert "Predicting DataLoader 0: 100%" in text


@pytest.mark.slow
def test_verbose_shows_what_the_default_hides(toy: Path, tmp_path: Path) -> None:
    result = subprocess.run([script("train"), str(toy), "--dev-run", "1", "--offline", "--verbose"],
                            capture_output=True, text=True, env=environment(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "GPU available: False" in result.stderr and "ClearML Task: created new task id" in result.stdout


@pytest.mark.slow  # several real runs: the slow stage keeps the default suite short
def test_a_closed_or_full_stdout_never_fails_a_run(toy: Path, tmp_path: Path) -> None:
    """``train ... | head -1`` (the pipe closes after the first line) and ``train ... > /dev/full``
    (every write fails) complete the run, checkpoints and all (issue 20, item 15); console.log
    keeps every line."""
    head = subprocess.Popen(["bash", "-c", f"set -o pipefail; '{script('train')}' '{toy}' --offline | head -1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shown, _ = head.communicate(timeout=300)
    with open("/dev/full", "w") as full:
        filled = subprocess.run([script("train"), str(toy), "--offline"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=300)
    assert len(shown.splitlines()) == 1 and head.returncode == 0 and filled.returncode == 0, filled.stderr
    assert "Traceback" not in filled.stderr and "full" not in filled.stderr
    runs = sorted((tmp_path / "data" / "artifacts").glob("*/run.json"))
    assert len(runs) == 2
    for record in runs:
        assert json.loads(record.read_text())["status"] == "completed"
        assert (record.parent / "checkpoints" / "last.ckpt").is_file()
        assert "torch-lab: completed in" in (record.parent / "console.log").read_text()


def test_the_runs_story_is_on_stdout_in_order(toy: Path, tmp_path: Path) -> None:
    """``train ... > out 2> err``: the header, the epoch lines and the summary are all in ``out``,
    in the order they happened; ``err`` has none of them."""
    result = run_cli("train", toy, "--offline", "--set", "trainer.init.max_epochs=2")
    assert result.returncode == 0, result.stderr
    starts = ("torch-lab: task offline-", "torch-lab: 01_toy-hparams (torch-lab-tests), offline; cpu",
              "epoch 0/1: ", "epoch 1/1: ", "torch-lab: completed in ", "torch-lab: task offline-")
    story = [line for line in result.stdout.splitlines() if line.startswith(starts)]
    assert len(story) == len(starts) and all(map(str.startswith, story, starts)), result.stdout
    assert not any(line.startswith(("torch-lab:", "epoch ")) for line in result.stderr.splitlines()), result.stderr
