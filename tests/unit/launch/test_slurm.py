"""Which run a requeued SLURM job goes on with: its own unfinished one, never another job's."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from torch_lab.launch import slurm
from torch_lab.storage.run_dir import RunDirectory

HPARAMS = Path("/exp/hparams.py")


def job_env(monkeypatch: pytest.MonkeyPatch, job_id: str, restarts: int, array_task: str | None = None) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", job_id)
    monkeypatch.setenv("SLURM_RESTART_COUNT", str(restarts))
    if array_task is None:
        monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
        monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    else:
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", array_task)
        monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "40")


def a_run(task_id: str, status: str = "interrupted", checkpoint: bool = True) -> RunDirectory:
    """A training run started in the job of the environment, left ``status``."""
    run = RunDirectory.create("exp", task_id, hparams_path=str(HPARAMS), task_type="training",
                              **slurm.created_fields())
    run.update(status=status)
    if checkpoint:
        (run.checkpoints / "last.ckpt").write_bytes(b"")
    return run


def requeued() -> str | None:
    return slurm.requeued_run(SimpleNamespace(hparams_path=HPARAMS))


def test_outside_slurm_nothing_is_recorded_or_resumed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert slurm.created_fields() == {} and slurm.resumed_fields({}) == {}
    a_run("t1")
    assert requeued() is None


def test_a_requeued_job_resumes_its_own_unfinished_run(monkeypatch: pytest.MonkeyPatch) -> None:
    job_env(monkeypatch, "41", 0)
    a_run("other-job-run")
    job_env(monkeypatch, "42", 0)
    run = a_run("own")
    assert run.record["slurm"] == {"job_id": "42", "array_job_id": None, "array_task_id": None,
                                   "restart_count": 0, "started_at_restart": 0}
    assert requeued() is None  # the same attempt (another rank, or a later train in the script)
    job_env(monkeypatch, "42", 1)
    assert requeued() == "own"
    assert slurm.resumed_fields(run.record)["slurm"] == {**run.record["slurm"], "restart_count": 1}
    job_env(monkeypatch, "43", 1)  # a new job never takes another job's run
    assert requeued() is None


@pytest.mark.parametrize("status, checkpoint", [("completed", True), ("failed", True), ("interrupted", False)])
def test_a_finished_failed_or_checkpointless_run_is_not_resumed(
        monkeypatch: pytest.MonkeyPatch, status: str, checkpoint: bool) -> None:
    job_env(monkeypatch, "42", 0)
    a_run("own", status, checkpoint)
    job_env(monkeypatch, "42", 1)
    assert requeued() is None


def test_each_array_task_resumes_its_own_run(monkeypatch: pytest.MonkeyPatch) -> None:
    job_env(monkeypatch, "42", 0, array_task="0")
    a_run("task0")
    job_env(monkeypatch, "42", 1, array_task="1")
    assert requeued() is None
    job_env(monkeypatch, "42", 1, array_task="0")
    assert requeued() == "task0"
