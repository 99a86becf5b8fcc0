"""A burst of stop signals (SIGINT, SIGTERM) is one stop, delivered more than once.

Linux sends the parent-death signal (``children.jobs.die_with``) again each time the thread the
child is then attached to exits, so a killed parent with ClearML's threads sends a child up to 7
SIGTERMs within ~0.1 s (measured here); a scheduler that signals every process of a job and a
parent that forwards the signal do the same. Read as "stop, then stop at once", such a burst
aborts the stop it began. Standard library only: the CLI's handler (before a run) and
``callbacks.graceful_stop`` (during one) both use it.
"""

from __future__ import annotations

import os
import signal
import sys
import time

#: Seconds after a stop's first signal during which more signals are the same stop.
REPEAT_WINDOW_S = 2.0


class Burst:
    """When the current stop began, to tell its repeats from a new signal."""

    def __init__(self) -> None:
        self._began: float | None = None  # time.monotonic()

    def begin(self) -> None:
        """A stop begins now (e.g. one that another process's signal asked for)."""
        self._began = time.monotonic()

    def repeats(self) -> bool:
        """Whether a signal received now repeats the current stop; if not, a new stop begins."""
        if self._began is not None and time.monotonic() - self._began < REPEAT_WINDOW_S:
            return True
        self.begin()
        return False


#: The process's stops: the CLI's handler (before and after a run) and ``GracefulStop`` (during
#: one) share it, so the repeats of a stop that a run began pass the CLI's handler too.
STOPS = Burst()

#: The signals that stop a command.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_at_once(signum: int, frame: object = None) -> None:
    """A signal once a command's work is all written: say so and end the process with 130 now."""
    sys.stdout.flush()
    print(f"torch-lab: {signal.Signals(signum).name}: exit code 130", file=sys.stderr, flush=True)
    os._exit(130)


def ignore_at_exit() -> None:
    """For the process's last exit handler: from there Python gives the stop signals their default
    action back (death by the signal, not exit code 130), so a late one is ignored instead."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
