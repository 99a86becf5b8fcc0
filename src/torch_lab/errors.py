"""The error type for mistakes a user can fix: the CLI prints its message on one line, exit 2."""

from __future__ import annotations

import errno
from pathlib import Path

#: Write errors that mean the storage is full: no space, over a quota, over a file size limit.
STORAGE_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class UserError(Exception):
    """A problem in the command line, the hparams or the experiment code (not in the run itself).

    The message names the file and the key at fault, e.g.
    ``hparams.py: unknown top-level key 'trianer' (did you mean 'trainer'?)``.
    """


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it, for messages."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def did_you_mean(key: str, valid: list[str] | tuple[str, ...], listing: bool = True) -> str:
    """`` (did you mean '<closest>'?)`` when ``key`` is close to one of ``valid``, else the list
    (``listing``) or nothing."""
    import difflib  # only for a message: every command imports this module

    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (valid keys: {', '.join(valid)})" if listing else ""


class RunFailed(Exception):
    """The run itself failed (exit 1); its run directory keeps the traceback and checkpoints."""

    def __init__(self, message: str, traceback_path: Path) -> None:
        super().__init__(message)
        self.traceback_path = traceback_path


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on a signal after its task existed (exit 130): the task id goes into the
    parent's summary (several files, a sweep), which shows its row."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id


class TrialPruned(Exception):
    """A sweep trial stopped by the sweep's pruner: a normal outcome (run.json status ``pruned``,
    exit code 0), not a failure."""


def storage_full(error: BaseException) -> OSError | None:
    """The storage-full ``OSError`` (see ``STORAGE_FULL``) behind ``error``, if any: it may be
    wrapped, e.g. by torch's checkpoint writer."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in STORAGE_FULL:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def failure_message(error: BaseException) -> str:
    """One line saying why a run failed: ``<type>: <first line of the message>`` (the traceback
    file has the rest), or for full storage which file could not be written."""
    full = storage_full(error)
    if full is not None:
        where = f"cannot write {full.filename}" if full.filename else "cannot write"
        return f"{where}: {full.strerror} (the disk is full, or over a quota or file size limit)"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and "Original Traceback (most recent call last):" in lines:
        # Re-raised from another process (a DataLoader worker): its error is the last line.
        return f"{lines[-1]} ({lines[0].rstrip('.')})"
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
