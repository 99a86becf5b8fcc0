"""A run's SLURM job in ``runs``: its id (``<array job>_<task>`` for an array task) from run.json's
``slurm`` block, and, for a run not finished, the job's state now (PENDING after a requeue,
RUNNING, ...) from ``squeue``, else ``sacct``. Asked once per command, and only when a shown run
has a job and is not finished; without SLURM's clients (or when they fail) no state is shown."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from torch_lab.runs.records import Run

#: Statuses whose job may still be queued or running (``dead``: killed, left ``running``).
UNFINISHED = ("running", "interrupted", "dead")
ASK_TIMEOUT_S = 10


def job_text(record: dict[str, Any]) -> str | None:
    """``2743_1`` (array job, task) or ``2742``; None for a run outside SLURM."""
    block = record.get("slurm")
    if not isinstance(block, dict) or not block.get("job_id"):
        return None
    if block.get("array_job_id") and block.get("array_task_id") is not None:
        return f"{block['array_job_id']}_{block['array_task_id']}"
    return str(block["job_id"])


def states(runs: list[Run]) -> dict[str, str]:
    """The state of each unfinished run's job that SLURM still knows, by ``job_text``."""
    wanted = {job_text(run.record) for run in runs if run.status in UNFINISHED} - {None}
    found: dict[str, str] = {}
    if wanted and shutil.which("squeue"):
        found = _ask(["squeue", "-h", "-r", "-o", "%i %T"], " ")
    missing = sorted(wanted - set(found))
    if missing and shutil.which("sacct"):
        found.update(_ask(["sacct", "-n", "-X", "-P", "--format=JobID,State", f"--jobs={','.join(missing)}"], "|"))
    return {job: state for job, state in found.items() if job in wanted}


def _ask(command: list[str], separator: str) -> dict[str, str]:
    """``job id -> state`` from a SLURM client's lines; nothing when it fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=ASK_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if done.returncode != 0:
        return {}
    pairs = [line.strip().split(separator, 1) for line in done.stdout.splitlines() if separator in line.strip()]
    return {job: (state.split() or ["?"])[0] for job, state in pairs}  # sacct: "CANCELLED by 0"


def cells(runs: list[Run]) -> list[str] | None:
    """The listing's ``slurm job`` column (``2743_1 PENDING``, ``-`` outside SLURM); None when
    no run was in a job."""
    jobs = [job_text(run.record) for run in runs]
    if not any(jobs):
        return None
    known = states(runs)
    return [f"{job} {known[job]}" if job in known else job or "-" for job in jobs]


def fields(runs: list[Run]) -> list[dict[str, Any] | None]:
    """``runs --json``'s ``slurm`` of each run: run.json's block with ``job`` (``job_text``) and
    ``state`` (None when finished or not known)."""
    known = states(runs) if any(job_text(run.record) for run in runs) else {}
    return [{**run.record["slurm"], "job": job, "state": known.get(job)} if (job := job_text(run.record)) else None
            for run in runs]
