"""A burst of stop signals (SIGINT, SIGTERM) is one stop, delivered more than once.

Linux sends the parent-death signal (``children.jobs.die_with``) again each time the thread the
child is then attached to exits, so a killed parent with ClearML's threads sends a child up to 7
SIGTERMs within ~0.1 s (measured here); a scheduler that signals every process of a job and a
parent that forwards the signal do the same. Read as "stop, then stop at once", such a burst
aborts the stop it began. Standard library only: the CLI's handler (before a run) and
``callbacks.graceful_stop`` (during one) both use it.
"""

from __future__ import annotations

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
