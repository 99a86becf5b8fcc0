"""Checkpoint lineage and resume: exact continuation after a hard kill, chains of tasks, and the
errors that stop a bad start before any training."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_cli, session_scalars, sets

DETERMINISTIC = sets("trainer.init.max_epochs=4", "trainer.init.deterministic=True", "seed=0")


def runs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "data" / "artifacts").glob("*") if p.is_dir())


def record(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def checkpoint_epoch(root: Path) -> int:
    """The epoch of the run's last.ckpt (-1 while there is none or it is being written)."""
    try:
        [path] = (root / "data" / "artifacts").glob("*/checkpoints/last.ckpt")
        return torch.load(path, weights_only=True)["epoch"]
    except Exception:
        return -1


def start_and_stop_in_epoch_3(toy: Path, root: Path, signum: int, *args: str) -> subprocess.CompletedProcess:
    """Start ``train`` (0.5 s per batch, 4 batches per epoch) and send ``signum`` half-way through
    epoch 3, once last.ckpt holds the end of epoch 2."""
    command = [str(Path(sys.executable).parent / "train"), str(toy), *args, "--set", "config.batch_sleep=0.5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and checkpoint_epoch(root) < 2:
        time.sleep(0.02)
    time.sleep(1.0)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("signum, loader", [(signal.SIGKILL, "DataLoader"),
                                             (signal.SIGINT, "StatefulDataLoader"),
                                             (signal.SIGTERM, "StatefulDataLoader")])
def test_resume_is_exact(toy: Path, tmp_path: Path, signum: int, loader: str) -> None:
    """Stopped in epoch 3 and resumed, a deterministic run ends with the same weights, bit for
    bit, as the run left alone, in the same task and directory, with each epoch once in
    history.csv. A hard kill resumes from the end of epoch 2 (random generators restored); a signal
    saves the state mid-epoch, which resumes exactly with a resumable train loader (torchdata's
    StatefulDataLoader)."""
    settings = [*DETERMINISTIC, "--set", f"config.stateful_loader={loader == 'StatefulDataLoader'}"]
    reference = run_cli("train", toy, "--offline", *settings)
    assert reference.returncode == 0, reference.stderr
    [uninterrupted] = runs(tmp_path)
    expected = weights(uninterrupted)
    os.rename(tmp_path / "data", tmp_path / "reference")

    stopped = start_and_stop_in_epoch_3(toy, tmp_path, signum, "--offline", *settings)
    [run] = runs(tmp_path)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    if signum == signal.SIGKILL:
        assert stopped.returncode == -signal.SIGKILL
        assert record(run)["status"] == "running" and state["global_step"] == 12
    else:
        assert stopped.returncode == 130, stopped.stderr
        assert stopped.stderr.strip().splitlines()[-1] == "train: interrupted"
        assert record(run)["status"] == "interrupted"
        assert 12 < state["global_step"] < 16  # saved mid-epoch: no finished batch lost

    resumed = run_cli("train", toy, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert runs(tmp_path) == [run]
    final = record(run)
    assert final["status"] == "completed" and len(final["resumed"]) == 1
    got = weights(run)
    assert all(torch.equal(got[key], expected[key]) for key in expected)
    assert [r["epoch"] for r in csv.DictReader(open(run / "history.csv"))] == ["0", "1", "2", "3"]
    stored = session_scalars(Path(final["offline_session"]))  # the task: each step's metrics once
    assert max(stored.values()) == 1
    assert sorted(i for m, s, i in stored if (m, s) == ("loss", "val")) == [3, 7, 11, 15]


@pytest.mark.slow
def test_step_interval_checkpoints_bound_the_loss_of_a_hard_kill(toy: Path, tmp_path: Path) -> None:
    killed = start_and_stop_in_epoch_3(toy, tmp_path, signal.SIGKILL, "--offline", *DETERMINISTIC,
                                       "--set", "checkpoint.every_n_train_steps=1")
    assert killed.returncode == -signal.SIGKILL
    [run] = runs(tmp_path)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] % 4 != 0  # saved inside an epoch (4 steps each), not at its end
    resumed = run_cli("train", toy, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert record(run)["status"] == "completed"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 16


@pytest.mark.slow
def test_chain_of_tasks_offline(toy: Path, tmp_path: Path) -> None:
    """B starts from A's weights (its first validation equals A's last); C continues A's schedule."""
    assert run_cli("train", toy, "--offline", "--set", "trainer.init.max_epochs=1").returncode == 0
    [a] = runs(tmp_path)
    a_id = record(a)["task_id"]
    a_val = float(list(csv.DictReader(open(a / "history.csv")))[-1]["loss/val"])

    b = run_cli("train", toy, "--offline", *sets(f"checkpoint.checkpoint_task_id='{a_id}'",
                "checkpoint.weights_only=True", "config.lr=0.0", "trainer.init.max_epochs=1"))
    assert b.returncode == 0, b.stderr
    [b_run] = [r for r in runs(tmp_path) if r != a]
    assert record(b_run)["started_from"] == {"task_id": a_id, "checkpoint": "last", "weights_only": True,
                                             "path": str(a / "checkpoints" / "last.ckpt")}
    b_val = float(list(csv.DictReader(open(b_run / "history.csv")))[0]["loss/val"])
    assert b_val == pytest.approx(a_val, rel=1e-6)
    session = Path(record(b_run)["offline_session"])
    import zipfile
    task = json.loads(zipfile.ZipFile(session).read("task.json"))
    assert task.get("parent") == a_id or a_id in json.dumps(task["configuration"]["started_from"])

    c = run_cli("train", toy, "--offline", *sets(f"checkpoint.checkpoint_task_id='{a_id}'",
                "trainer.init.max_epochs=2"))
    assert c.returncode == 0, c.stderr
    [c_run] = [r for r in runs(tmp_path) if r not in (a, b_run)]
    assert [r["epoch"] for r in csv.DictReader(open(c_run / "history.csv"))] == ["1"]
    c_state = torch.load(c_run / "checkpoints" / "last.ckpt", weights_only=True)
    b_state = torch.load(b_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert c_state["epoch"] == 1
    # The toy halves the learning rate every epoch: C goes on with A's schedule, B starts afresh.
    assert c_state["lr_schedulers"][0]["last_epoch"] == 2 and b_state["lr_schedulers"][0]["last_epoch"] == 1
    assert c_state["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)


@pytest.mark.parametrize(
    "settings, message",
    [
        (["checkpoint.checkpoint_task_id='offline-nope'"],
         "train: error: checkpoint task 'offline-nope': no checkpoint 'last' found"),
        pytest.param(["checkpoint.checkpoint_task_id='{id}'", "checkpoint.checkpoint_name='epoch7'"],
                     "train: error: checkpoint task '{id}': no checkpoint 'epoch7' found",
                     marks=pytest.mark.slow),
    ],
)
def test_bad_start_points_fail_before_training(toy: Path, tmp_path: Path, settings, message) -> None:
    assert run_cli("train", toy, "--offline", "--set", "trainer.init.max_epochs=1").returncode == 0
    [a] = runs(tmp_path)
    task_id = record(a)["task_id"]
    result = run_cli("train", toy, "--offline", *sets(*[s.format(id=task_id) for s in settings]))
    assert result.returncode == 2
    assert result.stderr.strip().startswith(message.format(id=task_id))
    assert runs(tmp_path) == [a]


@pytest.mark.slow  # moved to the slow stage: the default suite stays under 10 minutes
def test_incompatible_checkpoint_fails_before_training(toy: Path, tmp_path: Path) -> None:
    assert run_cli("train", toy, "--offline", "--set", "trainer.init.max_epochs=1").returncode == 0
    [a] = runs(tmp_path)
    task_id = record(a)["task_id"]
    main = toy.parent / "__main__.py"
    main.write_text(main.read_text().replace("nn.Linear(4, 2),\n        loss_function", "nn.Linear(4, 3),\n        loss_function"))
    result = run_cli("train", toy, "--offline", "--set", f"checkpoint.checkpoint_task_id='{task_id}'")
    assert result.returncode == 2
    path = a / "checkpoints" / "last.ckpt"
    assert result.stderr.strip() == (
        f"train: error: checkpoint task '{task_id}' ('last', {path}): does not fit the model "
        "(bias is (2,), the model's (3,); weight is (2, 4), the model's (3, 4))")
    assert runs(tmp_path) == [a]


def test_resume_errors(toy: Path, tmp_path: Path) -> None:
    nothing = run_cli("train", toy, "--resume")
    assert nothing.returncode == 2
    assert nothing.stderr.strip() == ("train: error: --resume: no unfinished training run of "
                                      "experiments/01_toy/hparams.py under data/artifacts")
    assert run_cli("train", toy, "--offline", "--set", "trainer.init.max_epochs=1").returncode == 0
    [a] = runs(tmp_path)
    done = run_cli("train", toy, "--resume", record(a)["task_id"])
    assert done.returncode == 2 and "that run completed" in done.stderr
    unknown = run_cli("train", toy, "--resume", "offline-123")
    assert unknown.stderr.strip() == ("train: error: --resume offline-123: no run directory of that "
                                      "task under data/artifacts")
