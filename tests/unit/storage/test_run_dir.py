import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from torch_lab.errors import UserError
from torch_lab.storage.run_dir import RunDirectory, artifacts_root, dir_name, find_run_dir


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
    assert sorted(p.name for p in run.path.iterdir()) == [".lock", "checkpoints", "history.csv", "run.json"]
    assert find_run_dir("offline-1") == run.path
    assert find_run_dir("offline-2") is None


def test_two_runs_never_share_a_directory(tmp_path: Path) -> None:
    RunDirectory.create("exp", "id-1")
    with pytest.raises(FileExistsError):
        RunDirectory.create("exp", "id-1")


def test_atomic_file_keeps_the_old_content_when_the_write_fails(tmp_path: Path) -> None:
    from torch_lab.storage.atomic import atomic_file

    target = tmp_path / "run.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run.json"]


@pytest.mark.parametrize("name, expected", [("01_toy-hparams", "01_toy-hparams"), ("../../x", "x"),
                                            ("team/x", "team_x"), ("..", "run"), ("a b:c", "a_b_c")])
def test_directory_names_stay_one_component_below_the_root(tmp_path: Path, name: str,
                                                           expected: str) -> None:
    assert dir_name(name, "id") == f"{expected}-id"
    run = RunDirectory.create(name, "id")
    assert run.path.parent == (tmp_path / "data" / "artifacts")
    assert json.loads((run.path / "run.json").read_text())["task_name"] == name  # the real name


def test_a_run_directory_has_one_owner_until_its_process_dies(tmp_path: Path) -> None:
    """The lock is the kernel's: another process is refused while the owner lives, and owns the
    directory once the owner was SIGKILLed (no clean-up ran); the dead writer's temp file goes.
    (Whole-run concurrency through the console scripts: test_resume.py.)"""
    run_path = tmp_path / "data" / "artifacts" / "exp-id-1"
    (run_path / "checkpoints").mkdir(parents=True)
    (run_path / "run.json").write_text(json.dumps({"task_id": "id-1", "status": "running"}))
    owner = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                              "from torch_lab.storage.run_dir import RunDirectory; "
                              "RunDirectory.open(Path(sys.argv[1])).lock(); print('owned', flush=True); "
                              "time.sleep(60)", str(run_path)], stdout=subprocess.PIPE, text=True)
    assert owner.stdout.readline().strip() == "owned"
    (run_path / "checkpoints" / ".last.ckpt.abc.tmp").write_bytes(b"half")  # being written
    with pytest.raises(UserError) as refused:
        RunDirectory.open(run_path).lock()
    assert str(refused.value) == (f"{run_path}: in use by another torch-lab process (pid {owner.pid}, "
                                  f"holding {run_path / '.lock'})")
    assert (run_path / "checkpoints" / ".last.ckpt.abc.tmp").exists()  # the owner's, untouched
    owner.kill()
    owner.wait()
    RunDirectory.open(run_path).lock()
    assert not list(run_path.rglob("*.tmp"))


def test_records_are_standard_json(tmp_path: Path) -> None:
    run = RunDirectory.create("exp", "id-1")
    run.update(best={"value": float("nan")}, metrics={"loss/val": float("inf"), "ok": 1.5})
    text = (run.path / "run.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    record = json.loads(text)
    assert record["best"]["value"] is None and record["metrics"] == {"loss/val": None, "ok": 1.5}


@pytest.mark.parametrize("content, reason", [("{", "not valid JSON: Expecting property name enclosed in "
                                                   "double quotes: line 1 column 2 (char 1)"),
                                             ("[]", None)])
def test_an_unreadable_record_names_its_file(tmp_path: Path, content: str, reason: str | None) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(content)
    with pytest.raises(UserError) as error:
        RunDirectory.open(tmp_path / "run")
    expected = (f"cannot be read ({reason})" if reason else "not a torch-lab run record (no task_id)")
    assert str(error.value) == f"run/run.json: {expected}"  # relative to the working directory
