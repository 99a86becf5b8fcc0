"""The error type for mistakes a user can fix: the CLI prints its message on one line, exit 2."""

from __future__ import annotations

from pathlib import Path



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


class RunFailed(Exception):
    """The run itself failed (exit 1); its run directory keeps the traceback and checkpoints."""

    def __init__(self, message: str, traceback_path: Path) -> None:
        super().__init__(message)
        self.traceback_path = traceback_path
