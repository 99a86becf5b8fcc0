"""Which run ``--resume`` continues, and who owns it: through the real ``train`` script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli, session_scalars

CRASH = ["--set", "trainer.init.max_epochs=3", "--set", "config.crash_at_epoch=1"]


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/run.json"))


def record(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.mark.slow  # moved to the slow stage: the default suite stays under 10 minutes
def test_resume_picks_training_runs_and_keeps_hparams_until_the_values_pass(toy: Path,
                                                                            tmp_path: Path) -> None:
    """An unfinished ``infer`` run of the same file is no candidate; a resume whose ``--set`` is
    refused leaves hparams.json as it was, so the next resume still works."""
    artifacts = tmp_path / "data" / "artifacts"
    crashed = run_cli("train", toy, "--offline", *CRASH)
    assert crashed.returncode == 1, crashed.stderr
    [training] = run_dirs(artifacts)
    trained = json.loads((training / "run.json").read_text())["task_id"]
    assert run_cli("infer", toy, "4", "--offline", "--set", f"checkpoint.checkpoint_task_id='{trained}'").returncode == 0
    [inference] = set(run_dirs(artifacts)) - {training}
    interrupted = {**record(inference), "status": "interrupted"}  # as if Ctrl-C had stopped it
    (inference / "run.json").write_text(json.dumps(interrupted))
    recorded = (training / "hparams.json").read_text()

    refused = run_cli("train", toy, "--resume", "--set", "trainer.init.max_epochs='5'")
    assert refused.returncode == 2, refused.stderr
    assert (training / "hparams.json").read_text() == recorded

    resumed = run_cli("train", toy, "--resume", "--set", "config.crash_at_epoch=None")
    assert resumed.returncode == 0, resumed.stderr
    assert record(training)["status"] == "completed"
    assert json.loads((training / "hparams.json").read_text())["config"]["crash_at_epoch"] is None
    assert record(inference)["status"] == "interrupted"
    only_infer = run_cli("train", toy, "--resume", record(inference)["task_id"][:12])  # its start
    assert only_infer.returncode == 2
    assert only_infer.stderr.strip().endswith("only training runs resume")


@pytest.mark.slow
def test_two_resumes_of_one_run_at_once(toy: Path, tmp_path: Path) -> None:
    """Five times: two ``--resume`` of one failed run start together; exactly one trains, the
    other exits 2 naming the owner, and no metric is stored twice on the task."""
    command = [str(Path(sys.executable).parent / "train"), str(toy), "--resume", "--set",
               "config.crash_at_epoch=None"]
    for attempt in range(5):
        env = {"TORCH_LAB_ARTIFACTS": str(tmp_path / f"attempt{attempt}")}
        assert run_cli("train", toy, "--offline", *CRASH, env=env).returncode == 1
        [run] = run_dirs(tmp_path / f"attempt{attempt}")
        both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**__import__("os").environ, **env}) for _ in range(2)]
        results = [(p.wait(timeout=300), p.communicate()[1]) for p in both]
        assert sorted(code for code, _ in results) == [0, 2], (attempt, results)
        [refusal] = [err for code, err in results if code == 2]
        assert "in use by another torch-lab process (pid " in refusal.strip().splitlines()[-1]
        assert record(run)["status"] == "completed" and len(record(run)["resumed"]) == 1
        stored = session_scalars(Path(record(run)["offline_session"]))
        assert max(stored.values()) == 1, attempt
        assert sorted(i for m, s, i in stored if (m, s) == ("loss", "val")) == [3, 7, 11]


@pytest.mark.slow
def test_resume_of_another_hparams_file_needs_resume_other(toy: Path, tmp_path: Path) -> None:
    """Issue 20, item 3: ``--resume ID`` of a run of another hparams file is refused (exit 2,
    naming both files), by the start of its id too; ``--resume-other`` resumes it."""
    import shutil

    other = tmp_path / "experiments" / "02_other"
    shutil.copytree(toy.parent, other)
    crashed = run_cli("train", other / "hparams.py", "--offline", *CRASH)
    assert crashed.returncode == 1, crashed.stderr
    [run] = run_dirs(tmp_path / "data" / "artifacts")
    short = record(run)["task_id"].removeprefix("offline-")[:8]
    refused = run_cli("train", toy, "--resume", short, "--set", "config.crash_at_epoch=None")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"train: error: --resume {short}: that run is of experiments/02_other/hparams.py, not "
        "experiments/01_toy/hparams.py; give its hparams file, or add --resume-other to resume it with this one")
    resumed = run_cli("train", toy, "--resume", short, "--resume-other", "--set", "config.crash_at_epoch=None")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert record(run)["status"] == "completed"


def test_an_empty_task_id_is_refused_wherever_an_id_is_taken(toy: Path, tmp_path: Path) -> None:
    """An unset ``$ID`` is a mistake, not "any task" (issue 30, item 4): ``--resume ''`` resumed
    the latest run, ``export-model H ''`` exported the offline cache's first best.ckpt. With no
    value, ``--resume`` still means the latest (tests above)."""
    flag = ("'': an empty task id (an unset variable?); give a task id or the start of one, or no value "
            "for the latest")
    for option in ("--resume", "--test-only"):
        result = run_cli("train", toy, option, "")
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"train: error: argument {option}: {flag}"
    for command, blank in ((("infer", toy, "5"), ""), (("train", toy), " ")):
        result = run_cli(*command, "--offline", "--set", f"checkpoint.checkpoint_task_id={blank!r}")
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"{command[0]}: error: checkpoint.checkpoint_task_id {blank!r}: an empty task id (an unset "
            "variable?); give a task id, the start of one, or a .ckpt path"]
    assert not (tmp_path / "data" / "artifacts").exists()


@pytest.mark.slow
def test_resume_with_max_epochs_below_the_checkpoint_is_refused_before_a_task(toy: Path, tmp_path: Path) -> None:
    """``--resume --set trainer.init.max_epochs=N`` below the checkpoint's epoch failed inside
    Lightning and turned the run from interrupted to failed (issue 30, item 15): exit 2 before any
    task, the run as it was."""
    crashed = run_cli("train", toy, "--offline", "--set", "trainer.init.max_epochs=5", "--set", "config.crash_at_epoch=3")
    assert crashed.returncode == 1, crashed.stderr
    [run] = run_dirs(tmp_path / "data" / "artifacts")
    before = (run / "run.json").read_text()
    sessions = sorted((tmp_path / "clearml-cache" / "offline").iterdir())
    result = run_cli("train", toy, "--offline", "--resume", "--set", "trainer.init.max_epochs=1")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"train: error: --resume {record(run)['task_id']}: trainer.init.max_epochs=1 is below the 2 epochs "
        f"{run.relative_to(tmp_path)}/checkpoints/last.ckpt has done; set max_epochs to at least 2"]
    assert (run / "run.json").read_text() == before
    assert sorted((tmp_path / "clearml-cache" / "offline").iterdir()) == sessions
    assert run_cli("train", toy, "--offline", "--resume", "--set", "trainer.init.max_epochs=2").returncode == 0
