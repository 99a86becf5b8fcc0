"""Ctrl-C pressed more than once, through the real ``train`` script (issue 30, item 16): a quick
second one, and more as the command ends, leave exit code 130 (4 of 5 runs died by SIGINT: the
signal came while Python, exiting, had given SIGINT its default action back); a third one, 3 s
after, stops the run at once and says so (it stopped with no line)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def train(toy: Path) -> Iterator[callable]:
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        import os

        process = subprocess.Popen([str(Path(sys.executable).parent / "train"), str(toy), "--offline", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, **(env or {})})
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def read_until(process: subprocess.Popen, text: str, lines: list[str]) -> None:
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} in:\n{''.join(lines)}")


@pytest.mark.slow
def test_a_quick_second_ctrl_c_and_one_at_the_end_exit_130(train, tmp_path: Path) -> None:
    process = train("--set", "trainer.init.max_epochs=1000", "--set", "config.batch_sleep=0.05")
    lines: list[str] = []
    read_until(process, "epoch 1", lines)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)  # the same stop, pressed twice
    read_until(process, "train: interrupted", lines)
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:  # pressed again as it ends
        process.send_signal(signal.SIGINT)
        time.sleep(0.1)
    lines += process.stdout.readlines()
    assert process.wait(timeout=60) == 130, "".join(lines)
    assert sum("stopping after this batch" in line for line in lines) == 1, "".join(lines)
    [record] = (tmp_path / "data" / "artifacts").glob("*/run.json")
    assert json.loads(record.read_text())["status"] == "interrupted"


@pytest.mark.slow
def test_a_ctrl_c_after_the_window_stops_at_once_saying_so(train, tmp_path: Path) -> None:
    """The first stop waits for the batch's end, 6 s away; a Ctrl-C 3.2 s later (past the 2 s of
    repeats) stops the run inside the batch."""
    process = train("--set", "config.batch_sleep=6", env={"TOY_SIGNAL_AT": "epoch=0,batch=0,moment=backward,signal=2"})
    lines: list[str] = []
    read_until(process, "received SIGINT: stopping after this batch", lines)
    time.sleep(3.2)
    process.send_signal(signal.SIGINT)
    lines += process.stdout.readlines()
    assert process.wait(timeout=60) == 130, "".join(lines)
    assert any("received SIGINT again: stopping now, inside the batch" in line for line in lines), "".join(lines)
    [record] = (tmp_path / "data" / "artifacts").glob("*/run.json")
    assert json.loads(record.read_text())["status"] == "interrupted"
