import csv
import json
from pathlib import Path

import pytest

from torch_lab.run_dir import RunDirectory, artifacts_root, find_run_dir


def test_artifacts_root_default_and_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert artifacts_root() == Path("data/artifacts")
    monkeypatch.setenv("TORCH_LAB_ARTIFACTS", str(tmp_path / "elsewhere"))
    assert artifacts_root() == tmp_path / "elsewhere"


def test_run_directory_files(tmp_path: Path) -> None:
    run = RunDirectory.create("exp-hparams", "offline-1", offline=True)
    assert run.path == tmp_path / "data" / "artifacts" / "exp-hparams-offline-1"
    record = json.loads((run.path / "run.json").read_text())
    assert record["status"] == "running" and record["task_id"] == "offline-1" and record["offline"]
    run.update(status="completed")
    assert json.loads((run.path / "run.json").read_text())["status"] == "completed"
    run.write_history([{"epoch": 0, "loss/train": 1.0}, {"epoch": 1, "loss/train": 0.5, "loss/val": 0.7}])
    rows = list(csv.DictReader(open(run.path / "history.csv")))
    assert rows[1] == {"epoch": "1", "loss/train": "0.5", "loss/val": "0.7"}
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "history.csv", "run.json"]
    assert find_run_dir("offline-1") == run.path
    assert find_run_dir("offline-2") is None


def test_two_runs_never_share_a_directory(tmp_path: Path) -> None:
    RunDirectory.create("exp", "id-1")
    with pytest.raises(FileExistsError):
        RunDirectory.create("exp", "id-1")


def test_atomic_file_keeps_the_old_content_when_the_write_fails(tmp_path: Path) -> None:
    from torch_lab.run_dir import atomic_file

    target = tmp_path / "run.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run.json"]
