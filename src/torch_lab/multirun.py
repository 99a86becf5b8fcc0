"""``train a.py b.py c.py``: each hparams file in its own child process (one ClearML task each),
one after another or several at once, then one summary table.

A child reports its outcome through the JSON file named by ``TORCH_LAB_RESULT_FILE`` (written by
the CLI), so the summary never depends on parsing console output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Mapping

RESULT_ENV = "TORCH_LAB_RESULT_FILE"
#: A child's lines shown, prefixed with its file, when runs are parallel.
EPOCH_LINE = re.compile(r"epoch \d+(/\d+)?: ")
STARTED_LINE = re.compile(r"torch-lab: task (\S+) started; run directory (.+)")


def relay(hparams_path: str, output: IO[str]) -> None:
    """Read a parallel child's output line by line; print where its full log is and its epoch
    lines, each prefixed with ``[hparams_path]`` (the rest is in its console.log)."""
    for line in output:
        line = line.rstrip("\n").rsplit("\r", 1)[-1]
        started = STARTED_LINE.match(line)
        if started:
            print(f"[{hparams_path}] task {started[1]}; full log: {Path(started[2]) / 'console.log'}",
                  flush=True)
        elif EPOCH_LINE.match(line):
            print(f"[{hparams_path}] {line}", flush=True)


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
        there too; with ``PIPE``, into the same pipe)."""
        env = {**environ, **self.env, RESULT_ENV: str(self.result_file)}
        self.process = subprocess.Popen([sys.executable, sys.argv[0], *args], env=env,
                                        stdout=output, **{"process_group": 0, **popen},
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


class Forwarder:
    """While installed, SIGINT and SIGTERM stop the starting of more jobs and go on to the running
    children (each in its own process group, so a terminal's Ctrl-C reaches them once, through
    here); a second signal goes on too, stopping them at once. Should the parent itself fail, its
    children are stopped, never orphaned."""

    def __init__(self, what: str = "runs") -> None:
        self.what = what
        self.received: int | None = None
        self.running: list[Any] = []  # Jobs
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Forwarder:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._forward)
        return self

    def __exit__(self, kind: type | None, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if kind is not None:
            for job in self.running:
                job.process.terminate()
            for job in self.running:
                job.process.wait()

    def _forward(self, signum: int, frame: Any) -> None:
        if self.received is None:
            print(f"torch-lab: {signal.Signals(signum).name}: stopping the running {self.what}",
                  file=sys.stderr, flush=True)
        self.received = signum
        for job in self.running:
            if job.process is not None and job.process.poll() is None:
                job.process.send_signal(signum)


def run_many(hparams_paths: list[str], child_args: list[str], parallel: bool) -> int:
    """Run ``train`` on each hparams file and print a summary; exit 1 when any run failed, 130
    when interrupted (the running children are stopped, the others not started)."""
    slots = job_slots(parallel)
    with tempfile.TemporaryDirectory(prefix="torch-lab-runs-") as folder, Forwarder() as signals:
        jobs = [Job(path, Path(folder) / f"{index}.json", {}) for index, path in enumerate(hparams_paths)]
        pending, running, relays = list(jobs), signals.running, []
        while (pending and signals.received is None) or running:
            while pending and signals.received is None and len(running) < len(slots):
                job = pending.pop(0)
                job.env = free_slot(slots, running) if parallel else {}
                # Sequential runs show their output live; parallel ones show their epoch lines.
                if parallel:
                    job.start([job.hparams_path, *child_args], subprocess.PIPE, text=True)
                    relays.append(threading.Thread(target=relay, args=(job.hparams_path, job.process.stdout),
                                                   daemon=True))
                    relays[-1].start()
                else:
                    job.start([job.hparams_path, *child_args])
                running.append(job)
            while running and all(job.process.poll() is None for job in running):
                time.sleep(0.2)
            running[:] = [job for job in running if job.process.poll() is None]
        for thread in relays:
            thread.join()
        results = [(job.hparams_path, job.result() if job.process else
                    {"status": "not started", "error": "interrupted before it started"}) for job in jobs]
    print(summary_table(results), flush=True)
    failed = [(path, result) for path, result in results
              if result.get("status") not in ("completed", "enqueued")]
    for path, result in failed:
        print(f"train: {path} {result.get('status')}: {result.get('error')}", file=sys.stderr)
    if signals.received is not None:
        return 130
    return 1 if failed else 0


def free_slot(slots: list[dict[str, str]], running: list[Job]) -> dict[str, str]:
    """The first slot no running job holds (a GPU in use is never handed out twice)."""
    taken = [job.env for job in running]
    return next(slot for slot in slots if slot not in taken or not slot)


def summary_table(results: list[tuple[str, dict[str, Any]]]) -> str:
    """A plain-text table: hparams file, task id, status, best metric."""
    rows = [("hparams", "task id", "status", "best")]
    for path, result in results:
        best = result.get("best") or {}
        value = best.get("value")
        best_text = f"{best.get('monitor')}={value:.4g}" if isinstance(value, (int, float)) else "-"
        rows.append((path, result.get("task_id") or "-", result.get("status", "?"), best_text))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
