"""What a run shows on the console, and ``console.log`` in its run directory, which keeps all of it.

The console shows torch-lab's own lines (the header, one line per epoch, the summary: all on
stdout, in order), the progress bar (on stderr, as tqdm draws it), what the experiment's code
prints, and errors and warnings (stderr). What ClearML, Lightning and
``warnings`` print goes to ``console.log`` only, unless ``--verbose`` or ``--debug``:

- logging: the root logger writes every record to ``console.log``; the console shows torch-lab's
  records, errors of any logger and, with ``--verbose``, everything;
- ``warnings`` are captured into logging (``py.warnings``);
- ClearML's logger is rerouted through the root logger, and its console lines (``ClearML ...``,
  written by its reporter and resource monitor) go to the file only.

Until the run directory exists, lines are kept in memory and written to ``console.log`` then.
Nothing heavy is imported here.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

LOG_NAME = "console.log"
#: Console lines of ClearML's own (its reporter's and resource monitor's): file only.
CLEARML_PREFIXES = ("ClearML ", "ClearML:")
#: Warnings shown on the console when a run fails, of those that went to console.log only.
HIDDEN_TAIL = 10
#: Lines kept in memory before the run directory exists.
BUFFER_LINES = 20000

_console: Console | None = None


class Console:
    """The process's console: the terminal streams, console.log, and what is shown."""

    def __init__(self, stdout: TextIO, stderr: TextIO, verbose: bool) -> None:
        self.stdout, self.stderr = stdout, stderr  # the terminal (or the file the user redirected to)
        self.verbose = verbose
        self.started = time.monotonic()
        self.path: Path | None = None
        self.hidden: collections.deque[str] = collections.deque(maxlen=HIDDEN_TAIL)
        self._buffer: collections.deque[str] = collections.deque(maxlen=BUFFER_LINES)
        self._file: TextIO | None = None
        self._gone: set[int] = set()  # ids of the terminal streams that failed (see ``show``)
        self.lock = threading.RLock()

    @property
    def interactive(self) -> bool:
        """Whether the console is a terminal (a progress bar) or a file or pipe (progress lines)."""
        return _isatty(self.stderr)

    def log(self, text: str) -> None:
        """Append ``text`` to console.log (or to the buffer until it exists)."""
        if not text:
            return
        with self.lock:
            if self._file is None:
                self._buffer.append(text)
                return
            try:
                self._file.write(text)
                self._file.flush()
            except OSError:  # e.g. a full disk: console.log stops, the run does not
                self._broken()

    def attach(self, run_path: Path) -> None:
        """Write console.log in ``run_path`` from now on, starting with what was buffered."""
        with self.lock:
            if self._file is not None:
                self._file.close()
            self.path = run_path / LOG_NAME
            try:
                self._file = open(self.path, "a", encoding="utf-8")
                self._file.write("".join(self._buffer))
                self._file.flush()
            except OSError:
                self._broken()
            self._buffer.clear()

    def _broken(self) -> None:
        """Stop writing console.log after a write error (the buffer is not refilled)."""
        with contextlib.suppress(OSError):
            if self._file is not None:
                self._file.close()
        self._file = None
        self._buffer = collections.deque(maxlen=0)

    def show(self, stream: TextIO, text: str) -> None:
        """Write ``text`` to a terminal stream and flush it. One that fails (``| head -1``,
        ``> /dev/full``) is written no more and its fd goes to /dev/null (Python's flush at exit
        cannot fail either); console.log keeps everything."""
        if id(stream) in self._gone:
            return
        try:
            if text:
                stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            self._gone.add(id(stream))
            _to_devnull(stream)

    def say(self, line: str, stream: TextIO | None = None, logged: bool = False) -> None:
        """Show ``line`` on the console, above any progress bar; ``logged``: console.log has it."""
        target = stream or self.stderr
        tqdm = sys.modules.get("tqdm")
        with (tqdm.tqdm.external_write_mode(file=self.stderr) if tqdm else contextlib.nullcontext()), self.lock:
            if not logged:
                self.log(line + "\n")
            self.show(target, line + "\n")

    def hide(self, text: str) -> None:
        """Keep ``text`` for console.log only."""
        self.log(text)

    def close(self) -> None:
        with self.lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _to_devnull(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor to /dev/null (what it still buffers goes there)."""
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ConsoleStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` during a run: everything into console.log, shown on the
    terminal except ClearML's own lines (unless verbose)."""

    def __init__(self, console: Console, terminal: TextIO) -> None:
        self.console = console
        self.terminal = terminal
        self._line = ""

    def write(self, text: str) -> int:
        with self.console.lock:
            self._line += text
            *lines, self._line = self._line.split("\n")
            for line in lines:
                self._emit(line + "\n")
            if "\r" in self._line and self.isatty():  # a bar redrawn in place: the terminal only
                self.console.show(self.terminal, self._line)
                self._line = ""
        return len(text)

    def _emit(self, text: str) -> None:
        last = text.rsplit("\r", 1)[-1]  # a redrawn line's last state (a file gets no redraws)
        if self.console.verbose or not last.startswith(CLEARML_PREFIXES):
            self.console.show(self.terminal, text if self.isatty() else last)
            self.console.log(last)
        else:
            self.console.hide(text)

    def flush(self) -> None:
        with self.console.lock:
            if self._line:
                self._emit(self._line)
                self._line = ""
            self.console.show(self.terminal, "")

    def isatty(self) -> bool:
        return _isatty(self.terminal)

    def fileno(self) -> int:
        return self.terminal.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.terminal, "encoding", "utf-8")

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)


class FileHandler(logging.Handler):
    """Every record, formatted with its time, level and logger, into console.log."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.DEBUG)
        self.console = console
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.log(self.format(record) + "\n")
        except Exception:  # a record that cannot be formatted must not stop the run
            self.handleError(record)


class ConsoleHandler(logging.Handler):
    """The records shown on the console: torch-lab's, errors of any logger, everything when
    verbose; the last hidden warnings (but routine ones) are kept for a failed run's summary."""

    def __init__(self, console: Console, debug: bool) -> None:
        super().__init__(logging.DEBUG)
        self.console = console
        self.debug = debug
        self.own = logging.Formatter("%(message)s")
        self.other = logging.Formatter("%(levelname)s %(name)s: %(message)s")

    def shown(self, record: logging.LogRecord) -> bool:
        if self.debug or record.levelno >= logging.ERROR:
            return True
        if record.name == "torch_lab" or record.name.startswith("torch_lab."):
            return record.levelno >= logging.INFO
        return self.console.verbose and record.levelno >= logging.INFO

    def emit(self, record: logging.LogRecord) -> None:
        try:
            own = record.name.startswith("torch_lab") and record.levelno == logging.INFO
            text = (self.own if own else self.other).format(record)
            if self.shown(record):  # torch-lab's story (epoch lines) on stdout, the rest on stderr
                self.console.say(text, stream=self.console.stdout if own else None, logged=True)
            elif record.levelno >= logging.WARNING and not _routine(record):
                line = " ".join(text.split())  # one line each
                if line not in self.console.hidden:
                    self.console.hidden.append(line)
        except Exception:
            self.handleError(record)


def _routine(record: logging.LogRecord) -> bool:
    """ClearML's warnings and deprecation notices: never why a run failed."""
    message = record.getMessage()
    return record.name.startswith("clearml") or "DeprecationWarning" in message or "FutureWarning" in message


def install(verbose: bool = False, debug: bool = False) -> Console:
    """Set up this process's console (once): the streams, the logging handlers, warnings."""
    global _console
    if _console is not None:
        return _console
    _console = Console(sys.stdout, sys.stderr, verbose or debug)
    sys.stdout = ConsoleStream(_console, _console.stdout)  # type: ignore[assignment]
    sys.stderr = ConsoleStream(_console, _console.stderr)  # type: ignore[assignment]
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(FileHandler(_console))
    root.addHandler(ConsoleHandler(_console, debug))
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    logging.getLogger("torch_lab").setLevel(logging.DEBUG if debug else logging.INFO)
    logging.captureWarnings(True)
    return _console


def current() -> Console | None:
    """The installed console; None when torch-lab runs inside another program (tests, notebooks)."""
    return _console


def attach(run_path: Path) -> None:
    """Write console.log into ``run_path`` (no-op without an installed console)."""
    if _console is not None:
        _console.attach(run_path)


def route_clearml_logging() -> None:
    """Send ClearML's log records through the root logger (console.log; the console only when
    verbose) instead of ClearML's own stdout handler. Call once clearml is imported."""
    if _console is None:
        return
    from clearml.debugging.log import LoggerRoot

    clearml_logger = LoggerRoot.get_base_logger()  # creates ClearML's handler once; then remove it
    for handler in list(clearml_logger.handlers):
        clearml_logger.removeHandler(handler)
    clearml_logger.propagate = True


def say(line: str) -> None:
    """Show a torch-lab line on the console (and in console.log), above any progress bar."""
    if _console is not None:
        _console.say(line, stream=_console.stdout)
    else:
        print(line, flush=True)
