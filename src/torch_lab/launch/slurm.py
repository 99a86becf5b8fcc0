"""A run inside a SLURM job: which job it is (kept in run.json), and the run a requeued job goes on with.

SLURM requeues a job on pre-emption or ``scontrol requeue``: the same job id starts the same
script again, with ``SLURM_RESTART_COUNT`` one higher. ``train`` then resumes the job's own
unfinished run from its ``last.ckpt`` (as ``--resume TASK_ID`` would), so a script needs no
``--resume``. A run is the job's own when its run.json names the job's id (and array task) and it
was started by an earlier attempt of that job (a smaller restart count): a new job never takes
another job's run, and the ranks of one attempt (which start together) never take each other's.

A time limit is not the end of a run either: when ``sbatch --signal=TERM@N`` gives notice and the
run has stopped and saved, rank zero asks SLURM to requeue the job (``scontrol requeue``, as
Lightning's ``SLURMEnvironment(auto_requeue=True)`` does), unless ``TORCH_LAB_SLURM_REQUEUE=0``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from typing import Any

from torch_lab.experiment import Experiment
from torch_lab.launch.start_points import is_training_run
from torch_lab.storage.run_dir import runs_of

#: ``TORCH_LAB_SLURM_REQUEUE=0``: a run stopped by SIGTERM does not requeue its job.
REQUEUE_ENV = "TORCH_LAB_SLURM_REQUEUE"

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


def requeue_after_stop(signum: int | None) -> None:
    """Requeue this batch job after its run stopped on SIGTERM while the job is still RUNNING (the
    notice of ``--signal=TERM@N`` before the time limit). Not after ``scancel`` or ``scontrol
    requeue`` (the job is no longer RUNNING), for a job that cannot be requeued (``--no-requeue``,
    an ``srun`` outside ``sbatch``), or with ``TORCH_LAB_SLURM_REQUEUE=0``."""
    current = job()
    if (current is None or signum != signal.SIGTERM or os.environ.get(REQUEUE_ENV, "1") == "0"
            or shutil.which("scontrol") is None):
        return
    job_id = current["job_id"]
    try:
        shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
        fields = dict(re.findall(r"(\w+)=(\S*)", shown.stdout))
        if (fields.get("JobState"), fields.get("Requeue"), fields.get("BatchFlag")) != ("RUNNING", "1", "1"):
            return
        done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"torch-lab: could not requeue SLURM job {job_id}: {error}", flush=True)
        return
    if done.returncode == 0:
        print(f"torch-lab: SLURM job {job_id} requeued: its next start goes on with this run "
              f"({REQUEUE_ENV}=0 not to)", flush=True)
    else:
        print(f"torch-lab: could not requeue SLURM job {job_id}: {done.stderr.strip()}", flush=True)
