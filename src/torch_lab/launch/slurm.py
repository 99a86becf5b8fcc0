"""A run inside a SLURM job: which job it is (kept in run.json), and the run a requeued job goes on with.

SLURM requeues a job on pre-emption or ``scontrol requeue``: the same job id starts the same
script again, with ``SLURM_RESTART_COUNT`` one higher. ``train`` then resumes the job's own
unfinished run from its ``last.ckpt`` (as ``--resume TASK_ID`` would), so a script needs no
``--resume``. A run is the job's own when its run.json names the job's id (and array task) and it
was started by an earlier attempt of that job (a smaller restart count): a new job never takes
another job's run, and the ranks of one attempt (which start together) never take each other's.
"""

from __future__ import annotations

import os
from typing import Any

from torch_lab.experiment import Experiment
from torch_lab.launch.start_points import is_training_run
from torch_lab.storage.run_dir import runs_of

#: Statuses a requeued job goes on from: stopped by its signal, or killed before recording that.
RESUMED = ("interrupted", "running")


def job() -> dict[str, Any] | None:
    """This process's SLURM job (``job_id``, ``array_job_id``, ``array_task_id``, ``restart_count``)
    from SLURM's environment; None outside a job."""
    env = os.environ
    if not env.get("SLURM_JOB_ID"):
        return None
    return {"job_id": env["SLURM_JOB_ID"], "array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
            "array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
            "restart_count": int(env.get("SLURM_RESTART_COUNT") or 0)}


def created_fields() -> dict[str, Any]:
    """run.json's ``slurm`` block for a run started in a job (``started_at_restart`` never changes)."""
    current = job()
    if current is None:
        return {}
    return {"slurm": {**current, "started_at_restart": current["restart_count"]}}


def resumed_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The ``slurm`` block of a run resumed in a job: the job's current restart count, and the
    block it had (so a resume from a new job or outside SLURM keeps where the run started)."""
    current = job()
    if current is None:
        return {}
    started = (record.get("slurm") or {}).get("started_at_restart", current["restart_count"])
    return {"slurm": {**(record.get("slurm") or {}), **current, "started_at_restart": started}}


def requeued_run(experiment: Experiment) -> str | None:
    """The task id of this job's own unfinished training run of the hparams file, when the job
    was requeued (``SLURM_RESTART_COUNT`` > 0) after that run started and left a ``last.ckpt``."""
    current = job()
    if current is None or current["restart_count"] == 0:
        return None
    own = [run for run in runs_of(experiment.hparams_path)
           if is_training_run(run.record) and run.record.get("status") in RESUMED
           and (run.checkpoints / "last.ckpt").is_file() and _own(run.record.get("slurm") or {}, current)]
    return own[-1].record["task_id"] if own else None


def _own(block: dict[str, Any], current: dict[str, Any]) -> bool:
    return (block.get("job_id") == current["job_id"] and block.get("array_task_id") == current["array_task_id"]
            and int(block.get("started_at_restart", current["restart_count"])) < current["restart_count"])
