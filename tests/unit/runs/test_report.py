"""Exact output of the real ``runs`` console script on run directories written here with fixed
values (run.json, hparams.json, history.csv as torch-lab writes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli


def write_run(root: Path, task_name: str, task_id: str, status: str, started: str, finished: str | None,
              hparams: dict[str, Any], epochs: int, best: float | None = None, **record: Any) -> Path:
    """A run directory with a run.json, hparams.json and ``epochs`` rows of history.csv."""
    path = root / f"{task_name}-{task_id}"
    (path / "checkpoints").mkdir(parents=True)
    record = {"task_id": task_id, "task_name": task_name, "project_name": "demo", "offline": True,
              "status": status, "started": started, "finished": finished, **record}
    if best is not None:
        record["best"] = {"monitor": "loss/val", "mode": "min", "value": best, "epoch": epochs - 1,
                          "path": f"/data/{path.name}/checkpoints/best.ckpt"}  # a fixed size
        (path / "checkpoints" / "best.ckpt").write_bytes(b"x" * 1500)
    (path / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    (path / "hparams.json").write_text(json.dumps(hparams, indent=2) + "\n")
    rows = "".join(f"{e},{1 - e / 10},{1.1 - e / 10},0.5,0.1\n" for e in range(epochs))
    (path / "history.csv").write_text(f"epoch,loss/train,loss/val,train_seconds,val_seconds\n{rows}")
    return path


def hparams(lr: float, seed: int, **config: Any) -> dict[str, Any]:
    return {"task": {"project_name": "demo"}, "trainer": {"init": {"max_epochs": 3}},
            "config": {"lr": lr, "model": {"hidden": 32}, **config}, "seed": seed}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Four runs, one of them a pruned sweep trial, another started from the first, listed here in
    start order."""
    root = tmp_path / "artifacts"
    write_run(root, "mlp-hparams", "offline-aa11", "completed", "2026-01-02T10:00:00+00:00",
              "2026-01-02T10:05:30+00:00", hparams(0.1, 1), 3, best=0.9, metrics={"loss/val": 0.9},
              offline_session=str(tmp_path / "cache" / "offline-aa11.zip"))
    write_run(root / "sweeps" / "lr-search", "mlp-hparams", "offline-cc33", "pruned",
              "2026-01-02T12:00:00+00:00", "2026-01-02T13:02:03+00:00",
              hparams(0.003, 3, width=2), 2, best=1.0, sweep={"name": "lr-search", "trial": 4})
    write_run(root, "mlp-hparams_wide", "offline-bb22", "failed", "2026-01-02T11:00:00+00:00",
              "2026-01-02T11:00:42+00:00", hparams(0.01, 2), 1, error="RuntimeError: injected crash")
    write_run(root, "mlp-hparams", "offline-dd44", "completed", "2026-01-03T09:00:00+01:00",
              "2026-01-03T09:01:00+01:00", hparams(0.1, 1), 3, best=0.85, project_name="other",
              metrics={"loss/val": 0.85, "loss/test": 0.8123456},
              started_from={"task_id": "offline-aa11", "checkpoint": "best", "path": "/x/best.ckpt",
                            "weights_only": True})
    return root


def runs(root: Path, *args: str) -> str:
    result = run_cli("runs", *args, "--root", root, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


LISTING = """\
task name         task id       status     started              duration  epochs  best           lr     width  seed
mlp-hparams       offline-aa11  completed  2026-01-02 10:00:00   0:05:30       3  loss/val=0.9   0.1    -      1
mlp-hparams_wide  offline-bb22  failed     2026-01-02 11:00:00   0:00:42       1  -              0.01   -      2
mlp-hparams       offline-cc33  pruned     2026-01-02 12:00:00   1:02:03       2  loss/val=1     0.003  2      3
mlp-hparams       offline-dd44  completed  2026-01-03 09:00:00   0:01:00       3  loss/val=0.85  0.1    -      1
"""


def test_listing(root: Path) -> None:
    assert runs(root) == LISTING


def test_filters(root: Path) -> None:
    assert runs(root, "--status", "pruned") == (
        "task name    task id       status  started              duration  epochs  best\n"
        "mlp-hparams  offline-cc33  pruned  2026-01-02 12:00:00   1:02:03       2  loss/val=1\n")
    assert runs(root, "--sweep", "lr-search") == runs(root, "--status", "pruned")
    assert [line.split()[1] for line in runs(root, "--status", "completed,failed").splitlines()[1:]] == [
        "offline-aa11", "offline-bb22", "offline-dd44"]
    assert [line.split()[1] for line in runs(root, "mlp-hparams-*", "--last", "2").splitlines()[1:]] == [
        "offline-cc33", "offline-dd44"]
    assert runs(root, "wide").splitlines()[1].split()[1] == "offline-bb22"
    assert runs(root, "--project", "oth*").splitlines()[1].split()[1] == "offline-dd44"


def test_json(root: Path) -> None:
    listed = json.loads(runs(root, "--json", "--last", "1"))
    assert listed == [{
        "task_id": "offline-dd44", "task_name": "mlp-hparams", "project_name": "other", "kind": "train",
        "status": "completed", "started": "2026-01-03T09:00:00+01:00",
        "finished": "2026-01-03T09:01:00+01:00", "duration_s": 60.0, "epochs": 3,
        "best": {"monitor": "loss/val", "mode": "min", "value": 0.85, "epoch": 2,
                 "path": "/data/mlp-hparams-offline-dd44/checkpoints/best.ckpt"},
        "sweep": None, "group": None, "slurm": None, "path": str(root / "mlp-hparams-offline-dd44"),
        "size_bytes": 121 + 196 + 587 + 1500,  # its files, as ``runs show`` lists them
        "hparams": {"task.project_name": "demo", "trainer.init.max_epochs": 3, "config.lr": 0.1,
                    "config.model.hidden": 32, "seed": 1},
    }]


def test_show(root: Path) -> None:
    assert runs(root, "show", "dd") == f"""\
task id       offline-dd44
task name     mlp-hparams
project       other
status        completed
started       2026-01-03 09:00:00
finished      2026-01-03 09:01:00
duration      0:01:00
epochs        3
hparams file  -
directory     {root}/mlp-hparams-offline-dd44
size          2.4 kB (checkpoints 1.5 kB, offline session 0 B, other 904 B)

hparams:
  task.project_name        demo
  trainer.init.max_epochs  3
  config.lr                0.1
  config.model.hidden      32
  seed                     1

best: loss/val=0.85 (min) at epoch 2

final metrics:
  loss/test  0.812346
  loss/val   0.85

lineage:
  <- offline-aa11 (mlp-hparams, completed): checkpoint 'best', weights only

files:
  history.csv            121 B
  hparams.json           196 B
  run.json               587 B
  checkpoints/best.ckpt  1.5 kB

offline session: none
"""


def test_show_a_pruned_trial_and_a_missing_session(root: Path, tmp_path: Path) -> None:
    text = runs(root, "show", "offline-cc33")
    assert "\nsweep         lr-search (trial 4)\n" in text and "\nstatus        pruned\n" in text
    assert "\nlineage: none\n" in text
    assert runs(root, "show", "aa").endswith(
        f"offline session:\n  {tmp_path}/cache/offline-aa11.zip (missing)\n")
    assert "\nerror         RuntimeError: injected crash\n" in runs(root, "show", "bb22")


def test_compare(root: Path) -> None:
    assert runs(root, "compare", "aa11", "offline-cc", "dd") == """\
                     mlp-hparams          mlp-hparams          mlp-hparams
task id              offline-aa11         offline-cc33         offline-dd44
status               completed            pruned               completed
started              2026-01-02 10:00:00  2026-01-02 12:00:00  2026-01-03 09:00:00
duration             0:05:30              1:02:03              0:01:00
epochs               3                    2                    3
best                 loss/val=0.9         loss/val=1           loss/val=0.85
hparams that differ
  config.lr          0.1                  0.003                0.1
  config.width       -                    2                    -
  seed               1                    3                    1
final metrics
  loss/val           0.9                  -                    0.85
  loss/test          -                    -                    0.812346
"""


def test_a_corrupted_run_json_is_reported_and_left_out(root: Path) -> None:
    broken = root / "mlp-hparams-offline-ee55"
    broken.mkdir()
    (broken / "run.json").write_text('{"task_id": "offline-ee55", "sta')
    result = run_cli("runs", "--root", root, timeout=60)
    assert result.returncode == 0 and result.stdout == LISTING
    assert result.stderr == (f"runs: warning: {broken}/run.json: unreadable (Unterminated string "
                             "starting at: line 1 column 29 (char 28)); left out\n")


def test_empty_and_missing_roots(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("runs", "--root", tmp_path / "empty", timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", f"no runs under {tmp_path}/empty\n")
    result = run_cli("runs", "--root", tmp_path / "nowhere", timeout=60)
    assert result.returncode == 2 and result.stderr == (
        f"runs: error: no artifacts root {tmp_path}/nowhere (give --root DIR, or set TORCH_LAB_ARTIFACTS)\n")


def test_options_may_come_before_the_command(root: Path) -> None:
    result = run_cli("runs", "--root", root, "show", "dd", timeout=60)
    assert result.returncode == 0 and result.stdout == runs(root, "show", "dd")
