"""Signals in every window of a run, through the real ``train`` script: before the task exists,
between ``Task.init`` and the first batch, and during validation (resumed with it)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli, session_scalars


def start(toy: Path, *args: str) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "train"), str(toy), "--offline", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no line with {text!r}: {process.communicate()[1][-2000:]}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_a_signal_before_the_first_batch_interrupts_the_run(toy: Path, tmp_path: Path,
                                                            signum: int) -> None:
    """Sent once the run exists (after ``Task.init``), while the Trainer sets up: exit 130, the run
    and the task are marked interrupted, nothing trained, no checkpoint written."""
    process = start(toy, "--set", "config.setup_sleep=3")
    wait_for_line(process, "run directory")
    time.sleep(0.5)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "train: interrupted"
    [run] = [p.parent for p in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted" and not list(run.glob("checkpoints/*.ckpt"))
    assert session_scalars(Path(record["offline_session"])) == {}


@pytest.mark.parametrize("delay", [1.0, 4.0])
def test_sigterm_before_the_task_exists_is_an_interruption(toy: Path, tmp_path: Path, delay: float) -> None:
    """SIGTERM while the command still imports and checks (the later one usually lands in the
    experiment's own imports, which it breaks): 130 like Ctrl-C, never a user error, nothing
    created."""
    process = start(toy)
    time.sleep(delay)  # importing torch and Lightning takes several seconds here
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "train: interrupted" and "Traceback" not in err
    assert not (tmp_path / "data" / "artifacts").exists()


@pytest.mark.slow
def test_a_run_stopped_in_validation_resumes_with_that_validation(toy: Path, tmp_path: Path) -> None:
    """SIGINT during epoch 1's validation: the run stops before the next batch (after that
    validation and its checkpoint); resumed, every epoch has its validation, once, in history.csv
    and on the task."""
    process = start(toy, "--set", "config.val_batch_sleep=1.0", "--set", "trainer.init.num_sanity_val_steps=0")
    run_dir = tmp_path / "data" / "artifacts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # epoch 0 is in history.csv: epoch 1 trains, then validates
        rows = list(csv.DictReader(open(h))) if (h := next(run_dir.glob("*/history.csv"), None)) else []
        if rows:
            break
        time.sleep(0.05)
    time.sleep(0.5 + 4 * 0.01 + 0.5)  # into epoch 1's validation (2 batches of 1 s)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    resumed = run_cli("train", toy, "--resume", "--set", "config.val_batch_sleep=0")
    assert resumed.returncode == 0, resumed.stderr
    [run] = [p.parent for p in run_dir.glob("*/run.json")]
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and all(r["loss/val"] for r in rows)
    stored = session_scalars(Path(json.loads((run / "run.json").read_text())["offline_session"]))
    assert max(stored.values()) == 1
    assert sorted(i for m, s, i in stored if (m, s) == ("loss", "val")) == [3, 7, 11]


def test_a_burst_of_signals_is_one_stop_after_the_batch(toy: Path, tmp_path: Path) -> None:
    """Three SIGTERMs at once (a killed parent's Linux sends its parent-death signal once per
    exiting thread; a scheduler and a forwarding parent both signal): one stop, after the batch.
    Taken as a second signal, the burst stopped the run at once, inside the batch or, at an
    epoch's end, before its checkpoint was written. Sent at epoch 1's batch 1 start (4 batches an
    epoch), the run trains that batch: step 6 in last.ckpt (5 had it been cut short)."""
    import torch

    env = {"TOY_SIGNAL_AT": "epoch=1,batch=1,moment=batch_start,signal=15,repeat=3"}
    result = run_cli("train", toy, "--offline", env=env)
    assert result.returncode == 130, result.stderr
    assert result.stderr.count("received SIGTERM: stopping after this batch") == 1, result.stderr
    [run] = [p.parent for p in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 6


@pytest.mark.slow  # two real runs and a pause
def test_a_resumed_runs_duration_leaves_out_the_time_it_was_stopped(toy: Path, tmp_path: Path) -> None:
    from datetime import datetime

    from conftest import sets
    from torch_lab.runs import load_runs

    crashed = run_cli("train", toy, *sets("config.crash_at_epoch=1"))
    assert crashed.returncode == 1, crashed.stderr
    time.sleep(8)  # stopped
    resumed = run_cli("train", toy, "--resume", *sets("config.crash_at_epoch=None"))
    assert resumed.returncode == 0, resumed.stderr
    [run] = load_runs(tmp_path / "data" / "artifacts")
    start_to_end = (datetime.fromisoformat(run["finished"]) - datetime.fromisoformat(run["started"])).total_seconds()
    assert 0 < run["duration_s"] <= start_to_end - 8, (run["duration_s"], start_to_end)
