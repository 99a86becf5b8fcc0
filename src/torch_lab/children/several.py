"""``train a.py b.py c.py``: each hparams file in its own child process (one ClearML task each),
one after another or several at once, then one summary table.

Each child reports its outcome through its result file (see ``torch_lab.children.jobs``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable

from torch_lab.children.forwarder import Forwarder
from torch_lab.children.jobs import Job, free_slot, job_slots
from torch_lab.storage.run_dir import artifacts_root
from torch_lab.text import table

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


def scratch_dir() -> str | None:
    """Where the children's result files go: the artifacts root (a killed parent leaves nothing in
    /tmp), or the system's temporary folder when the root cannot be made (the children say why)."""
    try:
        artifacts_root().mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(artifacts_root())


def run_many(jobs: list[tuple[str, list[str]]], parallel: bool, environ: dict[str, str] | None = None,
             report: Callable[[list[tuple[str, dict[str, Any]]]], str] | None = None) -> int:
    """Run ``train`` once per ``(label, arguments)`` job and print a summary (``report``, by default
    ``summary_table``); exit 1 when any run failed, 130 when interrupted (the running children are
    stopped, the others not started)."""
    slots = job_slots(parallel)
    environ = {**os.environ, **(environ or {})}
    with tempfile.TemporaryDirectory(prefix=".results-", dir=scratch_dir()) as folder, Forwarder() as signals:
        started = [Job(label, Path(folder) / f"{index}.json", {}) for index, (label, _) in enumerate(jobs)]
        arguments = {id(job): argv for job, (_, argv) in zip(started, jobs)}
        pending, running, relays = list(started), signals.running, []
        while (pending and signals.received is None) or running:
            while pending and signals.received is None and len(running) < len(slots):
                job = pending.pop(0)
                job.env = free_slot(slots, running) if parallel else {}
                # Sequential runs show their output live; parallel ones show their epoch lines.
                if parallel:
                    job.start(arguments[id(job)], subprocess.PIPE, environ, text=True)
                    relays.append(threading.Thread(target=relay, args=(job.hparams_path, job.process.stdout),
                                                   daemon=True))
                    relays[-1].start()
                else:
                    job.start(arguments[id(job)], None, environ)
                running.append(job)
            while running and all(job.process.poll() is None for job in running):
                time.sleep(0.2)
            running[:] = [job for job in running if job.process.poll() is None]
        for thread in relays:
            thread.join()
        results = [(job.hparams_path, job.result() if job.process else
                    {"status": "not started", "error": "interrupted before it started"}) for job in started]
    print((report or summary_table)(results), flush=True)
    failed = [(label, result) for label, result in results
              if result.get("status") not in ("completed", "enqueued")]
    for label, result in failed:  # an interrupted run has no error: its status says it all
        reason = result.get("error")
        print(f"train: {label} {result.get('status')}{f': {reason}' if reason else ''}", file=sys.stderr)
    return signals.close(1 if failed else 0)


def summary_table(results: list[tuple[str, dict[str, Any]]]) -> str:
    """A plain-text table: hparams file, task id, status, best metric."""
    rows = [("hparams", "task id", "status", "best")]
    for path, result in results:
        best = result.get("best") or {}
        value = best.get("value")
        best_text = f"{best.get('monitor')}={value:.4g}" if isinstance(value, (int, float)) else "-"
        rows.append((path, result.get("task_id") or "-", result.get("status", "?"), best_text))
    return table(rows)
