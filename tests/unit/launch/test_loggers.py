"""A CSVLogger's metrics.csv across a crash, a torn last row, a kill while the resumed run starts and
the resume that completes it, through the real ``train`` script: no row is ever held only in memory."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli, sets
from unit.launch.test_fit import with_loggers


def logged_epochs(metrics: Path) -> list[int]:
    """The epochs of metrics.csv's rows holding a validation loss."""
    return [int(row["epoch"]) for row in csv.DictReader(open(metrics)) if row.get("loss/val")]


@pytest.mark.slow  # three real runs
def test_csv_rows_survive_a_torn_row_and_a_kill_while_resuming(toy: Path, tmp_path: Path) -> None:
    with_loggers(toy)
    metrics = tmp_path / "csv_logs" / "toy" / "fixed" / "metrics.csv"
    crashed = run_cli("train", toy, *sets("trainer.init.max_epochs=3", "config.crash_at_epoch=1"))
    assert crashed.returncode == 1, crashed.stderr
    assert logged_epochs(metrics) == [0, 1]
    with metrics.open("a") as handle:  # a write cut short by a kill
        handle.write("1,0.5")
    command = [str(Path(sys.executable).parent / "train"), str(toy), "--resume",
               *sets("config.crash_at_epoch=None", "config.setup_sleep=60")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        for line in process.stdout:  # Lightning's fit starts: its setup sleeps, the loggers exist
            if "resuming the training state" in line or time.monotonic() > deadline:
                break
        time.sleep(2)
        assert process.poll() is None, "the resumed run ended early"
        assert logged_epochs(metrics) == [0]  # on disk now: the rows before the checkpoint's step
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    assert logged_epochs(metrics) == [0]
    resumed = run_cli("train", toy, "--resume", *sets("config.crash_at_epoch=None"))
    assert resumed.returncode == 0, resumed.stderr
    assert logged_epochs(metrics) == [0, 1, 2]
