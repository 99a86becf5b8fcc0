"""Signals of a parent that runs children: passed on to them once, and none left orphaned."""

from __future__ import annotations

import signal
import sys
from typing import Any


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
