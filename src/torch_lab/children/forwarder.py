"""Signals of a parent that runs children: passed on to them once, and none left orphaned.

Children also die with their parent when it is killed outright (SIGKILL): ``Job.start`` asks Linux
to send them SIGTERM then (``PR_SET_PDEATHSIG``), so they stop cleanly and record ``interrupted``.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from torch_lab.signals import exit_at_once


class Forwarder:
    """While installed, SIGINT and SIGTERM stop the starting of more jobs and go on to the running
    children (each in its own process group, so a terminal's Ctrl-C reaches them once, through
    here); a second signal goes on too, stopping them at once. Should the parent itself fail, its
    children are stopped, never orphaned. Once the children are done it stays installed: a signal
    while the parent writes its summary only makes the exit code 130, and after ``close`` one
    ends the process at once with 130, never a traceback or 143."""

    def __init__(self, what: str = "runs") -> None:
        self.what = what
        self.received: int | None = None
        self.running: list[Any] = []  # Jobs
        self.closed = False
        self._previous: dict[int, Any] = {}

    def install(self) -> Forwarder:
        """Take SIGINT and SIGTERM (again after ClearML's ``Task.init`` put its handlers in front)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(signum, self._forward)
            self._previous.setdefault(signum, previous)
        return self

    def __enter__(self) -> Forwarder:
        return self.install()

    def __exit__(self, kind: type | None, *exc: Any) -> None:
        if kind is None:
            return  # stays installed until the process ends (see ``close``)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        for job in self.running:
            job.process.terminate()
        for job in self.running:
            job.process.wait()

    def close(self, code: int) -> int:
        """The parent's exit code, ``code`` or 130 when a signal came; any signal from here to the
        process's last instruction exits with 130 at once (everything is written by then)."""
        self.install()  # again: closing a ClearML task puts back the handlers it found
        self.closed = True
        return 130 if self.received is not None else code

    def _forward(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.closed:
            exit_at_once(signum)
        alive = [job for job in self.running if job.process is not None and job.process.poll() is None]
        if self.received is None:
            print(f"torch-lab: {name}: " + (f"stopping the running {self.what}" if alive else
                                           f"no more {self.what} start; exit code 130"),
                  file=sys.stderr, flush=True)
        self.received = signum
        for job in alive:
            job.process.send_signal(signum)
