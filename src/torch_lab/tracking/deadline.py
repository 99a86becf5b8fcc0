"""Bounded waits on the ClearML server: the SDK retries a server that went away without limit
(its flushes and its exit hooks wait for it), so torch-lab waits once, for a stated time, then
finishes locally and says what was not sent."""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from clearml import Task

#: The longest torch-lab waits for ClearML calls that wait on the server (a flush, the end of the
#: run): the SDK retries a server that went away without limit. TORCH_LAB_CLEARML_TIMEOUT changes it.
SERVER_TIMEOUT_S = 120.0


def bounded(task: Task, what: str, call: Any) -> bool:
    """Run ``call()`` (ClearML calls that may wait on the server) for at most
    ``TORCH_LAB_CLEARML_TIMEOUT`` (default ``SERVER_TIMEOUT_S``) seconds, in a daemon thread left
    behind when it does not return in time; then, and for every later call on ``task``, print
    that ``what`` was not sent and return False. Offline, ``call()`` runs as it is."""
    if Task.is_offline():
        call()
        return True
    timeout = float(os.environ.get("TORCH_LAB_CLEARML_TIMEOUT") or SERVER_TIMEOUT_S)
    if task.id in _UNREACHABLE:
        print(f"torch-lab: ClearML server unreachable: {what} not sent", flush=True)
        return False
    failures: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as error:  # re-raised on the caller's thread
            failures.append(error)

    worker = threading.Thread(target=target, name="torch-lab-clearml", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _UNREACHABLE.add(task.id)
        print(f"torch-lab: ClearML server did not answer within {timeout:g} s: {what} not sent "
              "(the run directory has everything)", flush=True)
        return False
    if failures:
        raise failures[0]
    return True


_UNREACHABLE: set[str] = set()  # tasks whose server stopped answering (see ``bounded``)


def exit_if_unreachable(code: int) -> None:
    """End the process now with ``code`` when a task's server stopped answering: ClearML's exit
    hooks and threads would retry it without limit (everything local is written by then)."""
    if _UNREACHABLE:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
