"""Checkpoint lineage and resume: exact continuation after a hard kill, chains of tasks, and the
errors that stop a bad start before any training."""

import csv
import json
import os
import signal
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ASSETS, run_cli, session_scalars, sets

DETERMINISTIC = sets("trainer.init.max_epochs=4", "trainer.init.deterministic=True", "seed=0")


def runs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "data" / "artifacts").glob("*") if p.is_dir())


def record(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


#: Each epoch of the toy is 4 training batches (and 2 validation batches); a run of 4 epochs ends
#: at global step 16. The noise makes the training draw from the global torch generator at every
#: sample, so a generator state restored at the wrong moment changes the weights.
STATEFUL = ["--set", "config.stateful_loader=True", "--set", "config.noise=0.1"]
PLAIN = ["--set", "config.stateful_loader=False", "--set", "config.noise=0.1"]


def train_in(folder: Path, *args: str, signal_at: str | None = None,
             matplotlib: Path | None = None) -> subprocess.CompletedProcess:
    """``train`` on the toy copy in ``folder`` (run there, with its own ClearML cache and HOME, as
    ``isolated`` sets them), sent a signal at the moment ``signal_at`` names (the toy's
    TOY_SIGNAL_AT)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CLEARML_") and k not in ("TORCH_LAB_ARTIFACTS", "TOY_SIGNAL_AT")}
    env.update(CLEARML_CACHE_DIR=str(folder / "clearml-cache"), HOME=str(folder / "home"),
               PYTHONWARNINGS="ignore")
    if matplotlib is not None:
        env["MPLCONFIGDIR"] = str(matplotlib)
    if signal_at:
        env["TOY_SIGNAL_AT"] = signal_at
    command = [str(Path(sys.executable).parent / "train"), "experiments/01_toy/hparams.py", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def fresh_toy(folder: Path) -> Path:
    shutil.copytree(ASSETS / "toy", folder / "experiments" / "01_toy")
    return folder


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, matplotlib_config: Path) -> dict[str, dict]:
    """The final weights of the uninterrupted deterministic run, with each train loader (run once
    for all the cases of this module)."""
    expected = {}
    for name, settings in (("StatefulDataLoader", STATEFUL), ("DataLoader", PLAIN)):
        folder = fresh_toy(tmp_path_factory.mktemp(f"uninterrupted-{name}"))
        result = train_in(folder, "--offline", *DETERMINISTIC, *settings, matplotlib=matplotlib_config)
        assert result.returncode == 0, result.stderr
        [run] = runs(folder)
        expected[name] = weights(run)
    return expected


def stop_and_resume(folder: Path, signal_at: str, settings: list[str]) -> tuple[Path, dict, dict]:
    """Train with a signal at ``signal_at``, then ``train --resume``; the run, its checkpoint as the
    signal left it, and the stopped run's outcome (returncode, stderr, status)."""
    fresh_toy(folder)
    stopped = train_in(folder, "--offline", *DETERMINISTIC, *settings, signal_at=signal_at)
    [run] = runs(folder)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    outcome = {"returncode": stopped.returncode, "stderr": stopped.stderr, "status": record(run)["status"]}
    resumed = train_in(folder, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert runs(folder) == [run]
    return run, state, outcome


def assert_resumed_exactly(run: Path, expected: dict) -> None:
    """Same weights, bit for bit, as the run left alone, in the same task and directory, with each
    epoch once in history.csv and each step's metrics once on the task."""
    final = record(run)
    assert final["status"] == "completed" and len(final["resumed"]) == 1
    got = weights(run)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 16
    assert all(torch.equal(got[key], expected[key]) for key in expected)
    assert [r["epoch"] for r in csv.DictReader(open(run / "history.csv"))] == ["0", "1", "2", "3"]
    stored = session_scalars(Path(final["offline_session"]))  # the task: each step's metrics once
    assert max(count for (m, s, i), count in stored.items() if i >= 0) == 1  # (not the summary's)
    assert sorted(i for m, s, i in stored if (m, s) == ("loss", "val")) == [3, 7, 11, 15]


#: (epoch, batch, moment, global step of the checkpoint the stopped run leaves) for a signal with a
#: StatefulDataLoader: across epoch 3's batches (the first, a middle one, the last) at every step
#: of a batch, and across the end of epoch 2 (its validation, its checkpoint's write, its end
#: hooks, the next epoch's start), which a run leaves without saving: it resumes from the
#: epoch-end checkpoint. The toy's moments are hooks: ``after_*`` run after all of torch-lab's.
MOMENTS = [
    (2, 0, "validation", 12), (2, 0, "after_validation", 12),
    (2, 0, "checkpoint", 12), (2, 0, "epoch_end", 12), (3, 0, "epoch_start", 12),
    (3, 0, "fetch", 12), (3, 0, "batch_end", 13), (3, 0, "after_batch_end", 14),
    (3, 1, "fetch", 14), (3, 1, "batch_start", 14), (3, 1, "after_batch_start", 14),
    (3, 1, "optimizer_step", 14), (3, 1, "batch_end", 14),
    (3, 1, "after_batch_end", 15),
    (3, 3, "batch_start", 16), (3, 3, "after_batch_end", 16), (3, 0, "validation", 16),
]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("epoch, batch, moment, saved_step", MOMENTS,
                         ids=[f"epoch{e}-batch{b}-{m}" for e, b, m, _ in MOMENTS])
def test_signal_at_any_moment_resumes_exactly(uninterrupted: dict, tmp_path: Path, signum: int, epoch: int,
                                              batch: int, moment: str, saved_step: int) -> None:
    """A signal stops the run at the next batch boundary (exit 130, status interrupted) and saves
    the state unless nothing ran since the last checkpoint; resumed, the run ends exactly where the
    run left alone did. A signal at a batch's start (its batch already fetched) trains that batch
    first when a checkpoint is to be written; one during validation stops the run after that
    validation and its checkpoint. The last epoch's validation is followed by no training batch:
    the run completes training, and the signal stops it before testing."""
    at = f"epoch={epoch},batch={batch},moment={moment},signal={int(signum)}"
    run, state, stopped = stop_and_resume(tmp_path, at, STATEFUL)
    assert stopped["returncode"] == 130, stopped["stderr"]
    assert stopped["stderr"].strip().splitlines()[-1] == "train: interrupted"
    assert stopped["status"] == "interrupted"
    assert state["global_step"] == saved_step
    assert_resumed_exactly(run, uninterrupted["StatefulDataLoader"])


#: A plain DataLoader resumes exactly from an epoch-end checkpoint only: a hard kill in epoch 3
#: (its last checkpoint is epoch 2's end), or a signal during epoch 2's validation or its
#: checkpoint's write (the run stops at epoch 3's first batch, saving nothing).
PLAIN_STOPS = [(signal.SIGKILL, 3, 1, "batch_end"), (signal.SIGTERM, 2, 0, "validation"),
               (signal.SIGINT, 2, 0, "checkpoint")]


@pytest.mark.slow
@pytest.mark.parametrize("signum, epoch, batch, moment", PLAIN_STOPS,
                         ids=[f"{s.name}-epoch{e}-{m}" for s, e, _, m in PLAIN_STOPS])
def test_stop_at_an_epoch_end_resumes_exactly_with_a_plain_dataloader(
        uninterrupted: dict, tmp_path: Path, signum: int, epoch: int, batch: int, moment: str) -> None:
    at = f"epoch={epoch},batch={batch},moment={moment},signal={int(signum)}"
    run, state, stopped = stop_and_resume(tmp_path, at, PLAIN)
    if signum == signal.SIGKILL:
        assert stopped["returncode"] == -signal.SIGKILL and stopped["status"] == "running"
    else:
        assert stopped["returncode"] == 130 and stopped["status"] == "interrupted"
    assert state["global_step"] == 12 and state["epoch"] == 2
    assert_resumed_exactly(run, uninterrupted["DataLoader"])


@pytest.mark.slow
def test_step_interval_checkpoints_bound_the_loss_of_a_hard_kill(toy: Path, tmp_path: Path) -> None:
    killed = run_cli("train", toy, "--offline", *DETERMINISTIC, "--set", "checkpoint.every_n_train_steps=1",
                     env={"TOY_SIGNAL_AT": f"epoch=3,batch=2,moment=batch_start,signal={int(signal.SIGKILL)}"})
    assert killed.returncode == -signal.SIGKILL
    [run] = runs(tmp_path)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 14  # saved inside an epoch (4 steps each), not at its end
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


@pytest.mark.slow  # half a minute or more: the slow stage keeps the default suite short
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
