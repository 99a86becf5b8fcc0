"""Real runs of the console scripts on the toy experiment: run directory, offline ClearML session,
checkpoints, outcomes and exit codes."""

import csv
import json
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import run_cli, sets
from torch_lab.launch.trainer_args import apply_dev_run


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "data" / "artifacts").glob("*") if p.is_dir())


def session(zip_path: Path) -> dict:
    """The task.json, metric events and file names of an offline session zip."""
    with zipfile.ZipFile(zip_path) as zipped:
        names = zipped.namelist()
        events = [e for line in zipped.read("metrics.jsonl").decode().splitlines() for e in json.loads(line)]
        return {"task": json.loads(zipped.read("task.json")), "events": events, "names": names}


def test_train_without_clearml_config_runs_offline_and_records_everything(toy: Path, tmp_path: Path) -> None:
    result = run_cli("train", toy, "--set", "config.lr=0.2")
    assert result.returncode == 0, result.stderr
    assert "no ClearML configuration found (clearml.conf or CLEARML_API_*); running offline" in result.stdout
    [run] = run_dirs(tmp_path)
    record = json.loads((run / "run.json").read_text())
    task_id = record["task_id"]
    assert task_id.startswith("offline-") and run.name == f"01_toy-hparams-{task_id}"
    assert f"torch-lab: task {task_id} started; run directory {run}" in result.stdout
    assert f"torch-lab: task {task_id} completed; run directory {run}" in result.stdout
    assert f"clearml-task --import-offline-session {record['offline_session']}" in result.stdout
    assert record["status"] == "completed" and record["offline"] is True
    assert record["project_name"] == "torch-lab-tests" and record["task_name"] == "01_toy-hparams"
    assert record["hparams_path"] == str(toy) and record["started"] <= record["finished"]
    assert set(record["checkpoints"]) == {"best", "last"}
    assert {"loss/train", "loss/val", "accuracy/val", "loss/test", "accuracy/test"} <= set(record["metrics"])

    hparams = json.loads((run / "hparams.json").read_text())
    assert hparams["config"]["lr"] == 0.2 and hparams["checkpoint"]["checkpoint_name"] == "last"

    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "train_seconds", "val_seconds"} <= set(rows[0])

    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 2 and last["torch_lab"]["task_id"] == task_id
    torch.nn.Linear(4, 2).load_state_dict(last["state_dict"])
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert float(best["callbacks"][next(k for k in best["callbacks"] if "ModelCheckpoint" in k)]
                 ["best_model_score"]) == min(float(r["loss/val"]) for r in rows)

    offline = session(Path(record["offline_session"]))
    task = offline["task"]
    assert task["id"] == task_id and task["name"] == "01_toy-hparams" and "completed" in task["tags"]
    assert task["hyperparams"]["hparams"]["config/lr"]["value"] == "0.2"
    assert {"hparams.py", "__main__.py"} <= set(task["configuration"])
    assert "train_config" in task["configuration"]["__main__.py"]["value"]
    scalars = {(e["metric"], e["variant"]) for e in offline["events"] if e["type"] == "training_stats_scalar"}
    assert {("loss", "train"), ("loss", "val"), ("accuracy", "train"), ("accuracy", "val"), ("loss", "test")} <= scalars
    val_points = [e["iter"] for e in offline["events"] if e.get("metric") == "loss" and e.get("variant") == "val"]
    assert len(val_points) == 3 == len(set(val_points))
    for name in ("checkpoint-best/best.ckpt", "checkpoint-last/last.ckpt", "run.json/run.json"):
        assert any(n.endswith(f"/artifacts/{name}") for n in offline["names"]), name
    assert not (tmp_path / "lightning_logs").exists()

    assert "train_config" in zipfile.ZipFile(run / "source.zip").read("01_toy/__main__.py").decode()
    summary = (run / "model_summary.txt").read_text()
    assert "model" in summary and "Linear" in summary and "10" in summary  # 4*2 + 2 parameters
    assert "model_summary.txt" in task["configuration"]
    for name in ("source.zip/source.zip", "model_summary.txt/model_summary.txt"):
        assert any(n.endswith(f"/artifacts/{name}") for n in offline["names"]), name


def test_dev_run_is_one_short_tagged_epoch(toy: Path, tmp_path: Path) -> None:
    result = run_cli("train", toy, "--dev-run", "2", "--offline", "--set", "trainer.init.max_epochs=-1")
    assert result.returncode == 0, result.stderr
    [run] = run_dirs(tmp_path)
    record = json.loads((run / "run.json").read_text())
    assert record["task_name"] == "dev_01_toy-hparams"
    assert len(list(csv.DictReader(open(run / "history.csv")))) == 1
    task = session(Path(record["offline_session"]))["task"]
    assert "dev-run" in task["tags"]
    hparams = json.loads((run / "hparams.json").read_text())
    assert hparams["trainer"]["init"]["limit_train_batches"] == 2


def test_apply_dev_run_bounds_every_loop() -> None:
    hparams = {"trainer": {"init": {"max_epochs": -1, "max_steps": 10**9, "val_check_interval": 500}}}
    init = apply_dev_run(hparams, 0.5)["trainer"]["init"]
    assert init == {"max_epochs": 1, "limit_train_batches": 0.5, "limit_val_batches": 0.5,
                    "limit_test_batches": 0.5}
    assert hparams["trainer"]["init"]["max_epochs"] == -1


def test_failed_run_keeps_its_checkpoint_and_record(toy: Path, tmp_path: Path) -> None:
    result = run_cli("train", toy, "--offline", "--set", "config.crash_at_epoch=1")
    assert result.returncode == 1
    [run] = run_dirs(tmp_path)
    assert result.stderr.strip().splitlines()[-1] == (
        f"train: run failed: RuntimeError: injected crash (traceback: {run / 'traceback.txt'})")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == "RuntimeError: injected crash"
    assert "injected crash" in (run / "traceback.txt").read_text()
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    offline = session(Path(record["offline_session"]))
    assert "failed" in offline["task"]["tags"]
    assert any(n.endswith("/artifacts/checkpoint-last/last.ckpt") for n in offline["names"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_exits_130_and_says_so(toy: Path, tmp_path: Path, signum: int) -> None:
    command = [str(Path(sys.executable).parent / "train"), str(toy), "--offline",
               "--set", "trainer.init.max_epochs=100000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = tmp_path / "data" / "artifacts"
    deadline = time.monotonic() + 120
    while not list(history.glob("*/history.csv")) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "train: interrupted"
    [run] = run_dirs(tmp_path)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert "interrupted" in session(Path(record["offline_session"]))["task"]["tags"]


@pytest.mark.slow  # half a minute or more: the slow stage keeps the default suite short
def test_infer_uses_the_checkpoint_block_and_is_tracked(toy: Path, tmp_path: Path) -> None:
    assert run_cli("train", toy, "--offline").returncode == 0
    [trained] = run_dirs(tmp_path)
    task_id = json.loads((trained / "run.json").read_text())["task_id"]
    short = task_id.removeprefix("offline-")[:6]  # the start of the id, as ``runs`` takes it
    result = run_cli("infer", toy, "6", "--offline", "--set", f"checkpoint.checkpoint_task_id='{short}'")
    assert result.returncode == 0, result.stderr
    [inferred] = [p for p in run_dirs(tmp_path) if p != trained]
    record = json.loads((inferred / "run.json").read_text())
    assert record["status"] == "completed" and record["task_name"] == "infer_01_toy-hparams"
    assert record["started_from"]["task_id"] == task_id
    assert not (tmp_path / "lightning_logs").exists()

    missing = run_cli("infer", toy, "6", "--offline", "--set", "checkpoint.checkpoint_task_id='offline-z'")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "infer: error: checkpoint task 'offline-z': no checkpoint 'last' found (looked in its run "
        "directory under the artifacts root, its ClearML offline session and, when online, the "
        "ClearML server)")


def test_unreachable_server_is_reported_in_seconds(toy: Path, tmp_path: Path) -> None:
    """A configured server that accepts but never answers: exit 2, one line, no task and no run
    directory (the subprocess timeout guards against a hang). One that refuses is a row of
    tests/bad_inputs.py."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    host = f"http://127.0.0.1:{silent.getsockname()[1]}"
    env = {"CLEARML_API_HOST": host, "CLEARML_API_ACCESS_KEY": "k", "CLEARML_API_SECRET_KEY": "s"}
    result = run_cli("train", toy, env=env, timeout=300)  # a hang guard; a loaded machine imports slowly
    silent.close()
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"train: error: ClearML server {host} is unreachable (")
    assert line.endswith("check clearml.conf or the CLEARML_API_* variables, or run with --offline")
    assert run_dirs(tmp_path) == []


def history(run: Path) -> list[dict]:
    return list(csv.DictReader(open(run / "history.csv")))


def test_early_stopping_stops_at_the_right_epoch(toy: Path, tmp_path: Path) -> None:
    """With the model frozen (lr=0) val loss never improves: patience 1 stops after epoch 1."""
    result = run_cli("train", toy, "--offline", *sets("config.lr=0.0", "monitor.patience=1",
                     "trainer.init.max_epochs=5"))
    assert result.returncode == 0, result.stderr
    [run] = run_dirs(tmp_path)
    assert [r["epoch"] for r in history(run)] == ["0", "1"]
    assert json.loads((run / "run.json").read_text())["best"]["epoch"] == 0
    report = [line for line in result.stdout.splitlines() if "epoch 1/4:" in line][0]
    assert "| best loss/val=" in report and "(epoch 0) | no improvement 1/1 | ends ~" in report


def test_best_checkpoint_is_the_best_epoch_of_the_monitored_metric(toy: Path, tmp_path: Path) -> None:
    result = run_cli("train", toy, "--offline", *sets("monitor.metric='loss/train'", "monitor.mode='max'",
                     "trainer.init.max_epochs=4"))
    assert result.returncode == 0, result.stderr
    [run] = run_dirs(tmp_path)
    rows = history(run)
    values = [float(r["loss/train"]) for r in rows]
    best_epoch = values.index(max(values))
    record = json.loads((run / "run.json").read_text())
    assert record["best"]["monitor"] == "loss/train" and record["best"]["epoch"] == best_epoch
    assert record["best"]["value"] == pytest.approx(max(values))
    assert torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)["epoch"] == best_epoch
    task = session(Path(record["offline_session"]))
    single = [e for e in task["events"] if e.get("variant") == "Summary" or e.get("metric") == "Summary"]
    assert single, "best value and epoch reported as ClearML single values"


@pytest.mark.slow
def test_seed_is_recorded_and_reproduces_the_run(toy: Path, tmp_path: Path) -> None:
    assert run_cli("train", toy, "--offline").returncode == 0
    for _ in range(2):
        assert run_cli("train", toy, "--offline", "--set", "seed=7").returncode == 0
    drawn, *seeded = [p for p in run_dirs(tmp_path)]
    records = {p: json.loads((p / "hparams.json").read_text())["seed"] for p in run_dirs(tmp_path)}
    assert sorted(records.values()).count(7) == 2
    assert all(isinstance(seed, int) for seed in records.values())
    seven = [p for p, seed in records.items() if seed == 7]
    assert history(seven[0])[-1]["loss/train"] == history(seven[1])[-1]["loss/train"]


def test_learning_rate_is_logged_at_epoch_starts_and_when_it_changes(toy: Path, tmp_path: Path) -> None:
    assert run_cli("train", toy, "--offline").returncode == 0
    [run] = run_dirs(tmp_path)
    events = session(Path(json.loads((run / "run.json").read_text())["offline_session"]))["events"]
    rates = sorted((e["iter"], e["value"]) for e in events if e.get("metric") == "lr-SGD")
    # StepLR halves it at each epoch's end: 3 epochs x 4 batches, one point per epoch start
    assert rates == [(0, pytest.approx(0.1)), (4, pytest.approx(0.05)), (8, pytest.approx(0.025))]


def test_nan_guard_stops_at_the_step_and_keeps_the_last_good_checkpoint(toy: Path, tmp_path: Path) -> None:
    result = run_cli("train", toy, "--offline", "--set", "config.nan_at_step=6")
    assert result.returncode == 1
    [run] = run_dirs(tmp_path)
    assert result.stderr.strip().splitlines()[-1].startswith(
        "train: run failed: FloatingPointError: NaN guard: the training loss is nan at step 6 "
        "(epoch 1, batch 2); stopped before checkpointing it")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "failed" and "NaN guard" in record["error"]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4 and all(torch.isfinite(t).all() for t in last["state_dict"].values())


def test_warmup_cosine_learning_rates_follow_the_formula(toy: Path, tmp_path: Path) -> None:
    from torch_lab.schedules import warmup_cosine_lr

    assert run_cli("train", toy, "--offline", "--set", "config.schedule='warmup_cosine'").returncode == 0
    [run] = run_dirs(tmp_path)
    events = session(Path(json.loads((run / "run.json").read_text())["offline_session"]))["events"]
    logged = sorted((e["iter"], e["value"]) for e in events if e.get("metric") == "lr-SGD")
    expected = [(step, warmup_cosine_lr(step, 0.1, warmup_steps=3, total_steps=12)) for step in range(12)]
    assert [step for step, _ in logged] == [step for step, _ in expected]
    assert [value for _, value in logged] == pytest.approx([value for _, value in expected], rel=1e-6)


@pytest.mark.slow  # half a minute or more: the slow stage keeps the default suite short
def test_test_only_evaluates_a_tasks_best_checkpoint(toy: Path, tmp_path: Path) -> None:
    assert run_cli("train", toy, "--offline").returncode == 0
    [trained] = run_dirs(tmp_path)
    record = json.loads((trained / "run.json").read_text())
    result = run_cli("train", toy, "--offline", "--test-only", record["task_id"])
    assert result.returncode == 0, result.stderr
    [tested] = [p for p in run_dirs(tmp_path) if p != trained]
    tested_record = json.loads((tested / "run.json").read_text())
    assert tested_record["task_name"] == "test_01_toy-hparams" and tested_record["status"] == "completed"
    assert tested_record["started_from"]["path"] == str(trained / "checkpoints" / "best.ckpt")
    assert tested_record["metrics"]["loss/test"] == pytest.approx(record["metrics"]["loss/test"], rel=1e-6)
    assert list((tested / "checkpoints").iterdir()) == []

    missing = run_cli("train", toy, "--offline", "--test-only")
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "train: error: --test-only needs a task id or a .ckpt path (or checkpoint.checkpoint_task_id)")
