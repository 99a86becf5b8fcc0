"""Running the user's code (hparams scripts, sweep files, ``__main__.py`` and its config
functions): any way it fails, or tries to exit the process, becomes a ``UserError`` naming the file."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from torch_lab.errors import UserError, display_path
from torch_lab.experiment import precheck
from torch_lab.utils import import_script_as_module


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class Exited(Exception):
    """User code called ``sys.exit`` or ``os._exit`` while torch-lab ran it."""


@contextmanager
def exits_refused() -> Iterator[None]:
    """Turn ``sys.exit(...)`` and ``os._exit(...)`` in the code run inside into ``Exited``
    (``os._exit`` only in this process: forked children, e.g. dataloader workers, exit as usual)."""
    real_exit, pid = os._exit, os.getpid()

    def refused(code: int) -> None:
        if os.getpid() != pid:
            real_exit(code)
        raise Exited(f"os._exit({code})")

    os._exit = refused
    try:
        yield
    except SystemExit as error:
        raise Exited(f"sys.exit({error.code!r})") from None
    finally:
        os._exit = real_exit


def run_script(path: Path, run: Callable[[], Any] | None = None) -> Any:
    """Execute a user's script at ``path`` (hparams, sweep, ``__main__.py``) (``run()``, by default ``import_script_as_module(path)``);
    any way it fails or exits is a ``UserError`` naming it."""
    try:
        with exits_refused():
            return run() if run is not None else import_script_as_module(path)
    except SyntaxError as error:
        raise UserError(precheck.syntax_error_message(path, error)) from error
    except Exited as error:
        raise UserError(f"{display_path(path)}: called {error} while torch-lab imported it; "
                        "experiment code must not exit") from None
    except Exception as error:
        raise UserError(f"{display_path(path)}: raised {first_line(error)}") from error
