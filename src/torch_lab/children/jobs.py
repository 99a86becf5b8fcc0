"""A child process running this process's own script (``train``) on other arguments, and the slots
(GPUs, CPU cores) that children run in at once. A child reports its outcome through the JSON file
named by ``RESULT_ENV`` (written by the CLI), so nothing depends on parsing its console output."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

RESULT_ENV = "TORCH_LAB_RESULT_FILE"
#: The group a child's run belongs to (``train --seeds``): run.json ``group`` and a task tag.
GROUP_ENV = "TORCH_LAB_GROUP"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _libc_prctl() -> Any:
    """libc's ``prctl``, looked up here in the parent (not between fork and exec); None off Linux."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with(parent: int, prctl: Any) -> None:
    """In a child, between fork and exec: have Linux send it SIGTERM when ``parent`` dies, even
    by SIGKILL (``PR_SET_PDEATHSIG``, kept across exec), so it stops cleanly and records itself
    ``interrupted`` instead of training on as an orphan; a parent already gone stops it now.
    (Its DataLoader workers watch their own parent, the child, and end with it.) Linux only."""
    if prctl is None:
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Job:
    """One hparams file's run, in a child process of the same ``train`` script."""

    hparams_path: str
    result_file: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None

    def start(self, args: list[str], output: Any = None, environ: Mapping[str, str] = os.environ,
              **popen: Any) -> None:
        """Run this process's own script (``train``) on ``args`` in a child of its own process
        group (signals reach it through the parent only), with ``environ`` plus the job's slot
        variables and its result file; ``output`` as ``subprocess.Popen``'s stdout (stderr goes
        there too; with ``PIPE``, into the same pipe). The child dies with this process (see
        ``die_with``)."""
        env = {**environ, **self.env, RESULT_ENV: str(self.result_file)}
        parent, prctl = os.getpid(), _libc_prctl()
        self.process = subprocess.Popen([sys.executable, sys.argv[0], *args], env=env,
                                        stdout=output, preexec_fn=lambda: die_with(parent, prctl),
                                        **{"process_group": 0, **popen},
                                        stderr=subprocess.STDOUT if output == subprocess.PIPE else output)

    def result(self) -> dict[str, Any]:
        """What the child reported; a crash before reporting becomes a failure with its exit code."""
        try:
            return json.loads(self.result_file.read_text())
        except (OSError, ValueError):
            code = self.process.returncode if self.process else None
            return {"status": "failed", "exit_code": code, "error": f"exited with code {code}"}


def job_slots(parallel: bool) -> list[dict[str, str]]:
    """Environment overrides for each concurrent slot: one GPU per job, or one job per CPU core."""
    if not parallel:
        return [{}]
    import torch

    gpus = torch.cuda.device_count()
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": str(index)} for index in range(gpus)]
    return [{} for _ in range(os.cpu_count() or 1)]


def free_slot(slots: list[dict[str, str]], running: list[Job]) -> dict[str, str]:
    """The first slot no running job holds (a GPU in use is never handed out twice)."""
    taken = [job.env for job in running]
    return next(slot for slot in slots if slot not in taken or not slot)


def argument_text(value: object) -> str:
    """A parsed value as ``train`` reads it back: ``--devices 0,1`` from ``[0, 1]``, ``0,`` from ``[0]``."""
    if isinstance(value, list):
        return ",".join(map(str, value)) + ("," if len(value) == 1 else "")
    return str(value)
