"""A run's directory: ``<artifacts root>/<task name>-<task id>/`` with run.json, hparams.json,
checkpoints/ and history.csv, owned by one process through a lock file. Files are written
atomically (see ``torch_lab.storage.atomic``).

The ``runs`` command imports this module, so the modules only writing needs (csv, tempfile,
zipfile: half of ``runs``' start-up) are imported where they are used."""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from torch_lab.errors import UserError, display_path
from torch_lab.storage.atomic import atomic_file, dumps, write_atomic

ARTIFACTS_ENV = "TORCH_LAB_ARTIFACTS"
#: history.csv's columns that are not metrics.
NOT_METRICS = ("epoch", "train_seconds", "val_seconds")
LOCK_FILE = ".lock"  # flock-ed by the one process that owns the run directory
#: Folder of the artifacts root holding sweeps (``sweeps/<name>/``), scanned one level deeper.
SWEEPS = "sweeps"
#: What makes a task id a shell pattern (refused: an id names one run).
GLOB_CHARACTERS = "*?[]"
#: The deepest nesting a run.json or hparams.json may have: deeper data would overflow the
#: recursion of whatever walks it (json itself, flattening, comparing), in every command.
MAX_DEPTH = 100


def artifacts_root() -> Path:
    """``$TORCH_LAB_ARTIFACTS`` if set, else ``./data/artifacts``."""
    return Path(os.environ.get(ARTIFACTS_ENV) or "data/artifacts")


def now() -> str:
    """The current time as an ISO 8601 string with timezone."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def safe_name(text: str) -> str:
    """``text`` made safe as one path component: no separators, no leading dots, at most 100
    characters."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("._")[:100] or "run"


def dir_name(task_name: str, task_id: str) -> str:
    """The run directory's name: the task name made safe (``safe_name``), then the task id."""
    return f"{safe_name(task_name)}-{task_id}"


def find_run_dir(task_id: str, root: str | Path | None = None) -> Path | None:
    """The run directory of task ``task_id`` (exactly that id, never a pattern) under the
    artifacts root (else one of that name whose run.json cannot be read), or None."""
    root = (Path(root) if root is not None else artifacts_root()).absolute()
    if not task_id:
        return None
    named = {Path(path): _task_id(Path(path), quiet=True) for path in run_dirs(root) if path.endswith(f"-{task_id}")}
    # a record that cannot be read is returned by its name, for RunDirectory.open to report it
    return next((path for path, found in named.items() if found == task_id), None) or next(
        (path for path, found in named.items() if not found), None)


def matching_ids(task_ids: list[str], ident: str) -> list[str]:
    """The ids of ``task_ids`` that ``ident`` names: itself, else those starting with it (with or
    without ``offline-``); none for an empty or blank ``ident`` (an unset ``$ID``)."""
    if not ident.strip():
        return []
    if ident in task_ids:
        return [ident]
    return [task_id for task_id in dict.fromkeys(task_ids) if (
        task_id.startswith(ident) or task_id.removeprefix("offline-").startswith(ident))]


def resolve_task_id(ident: str, root: str | Path | None = None) -> str:
    """The full task id of ``ident``: a task id, or the start of one unique among the runs under
    the artifacts root (returned unchanged when no run there has it: an offline session's or the
    server's). A pattern or an ambiguous start is a ``UserError``."""
    if any(char in ident for char in GLOB_CHARACTERS):
        raise UserError(f"task id {ident!r}: a task id or the start of one, not a pattern")
    root = (Path(root) if root is not None else artifacts_root()).absolute()
    found = matching_ids([task_id for path in run_dirs(root)
                          if (task_id := _task_id(Path(path), quiet=ident in os.path.basename(path)))], ident)
    if len(found) > 1:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise UserError(f"task id {ident!r} is ambiguous under {display_path(root)}: {len(found)} runs "
                        f"match ({shown}); give more characters")
    return found[0] if found else ident


def read_json(path: Path) -> Any:
    """The JSON file ``path``; a ValueError when it is not JSON or nests deeper than
    ``MAX_DEPTH`` (an OSError when it cannot be read)."""
    text = path.read_bytes()
    try:
        data = json.loads(text)
        deep = _depth(data) > MAX_DEPTH
    except RecursionError:
        deep = True
    if deep:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return data


def _depth(data: Any) -> int:
    """How deep ``data``'s lists and dicts nest (without recursion: it may be very deep)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack += [(item, level + 1) for item in (value.values() if isinstance(value, dict) else value)]
    return deepest


#: The run.json files already warned about in this process (the lookups read each one more than once).
_WARNED: set[str] = set()


def _task_id(path: Path, quiet: bool = False) -> str:
    """The task id run.json records in ``path``: '' when there is none (not a string, or a
    run.json that cannot be read: skipped, with a warning line on stderr once unless ``quiet``:
    a run asked for by name, which ``RunDirectory.open`` reports)."""
    try:
        record = read_json(path / "run.json")
    except (OSError, ValueError) as error:
        if not quiet and str(path) not in _WARNED:
            _WARNED.add(str(path))
            print(f"torch-lab: warning: {display_path(path / 'run.json')}: unreadable ({error}); skipped",
                  file=sys.stderr)
        return ""
    task_id = record.get("task_id") if isinstance(record, dict) else None
    return task_id if isinstance(task_id, str) else ""


def link_on_the_way(root: str | Path, path: str | Path) -> Path | None:
    """The first symbolic link from ``root`` (excluded) down to ``path`` (included), or None: a
    run directory reached through one lies outside the artifacts root, where nothing tidies it."""
    current = Path(root)
    for part in Path(os.path.relpath(path, root)).parts:
        current = current / part
        if part == ".." or current.is_symlink():
            return current
    return None


def run_dirs(root: str | Path) -> Iterator[str]:
    """Directories holding a run.json: ``<root>/*/`` and ``<root>/sweeps/<name>/*/``, each once
    (a symlink to a folder already seen, or to the root itself, is skipped)."""
    try:
        seen = {_inode(os.stat(root))}
    except OSError:
        return
    for folder in _subdirs(root, seen):
        if os.path.isfile(os.path.join(folder, "run.json")):
            yield folder
        elif os.path.basename(folder) == SWEEPS:
            for sweep in _subdirs(folder, seen):
                yield from (f for f in _subdirs(sweep, seen) if os.path.isfile(os.path.join(f, "run.json")))


def _inode(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


def _subdirs(folder: str | Path, seen: set[tuple[int, int]]) -> list[str]:
    """The sub-folders of ``folder`` not in ``seen`` (by inode, folders before symlinks), sorted;
    they join ``seen``."""
    try:
        with os.scandir(folder) as scanned:
            entries = sorted((entry.is_symlink(), entry.path, entry) for entry in scanned if entry.is_dir())
        found = []
        for _, path, entry in entries:
            inode = _inode(entry.stat())
            if inode not in seen:
                seen.add(inode)
                found.append(path)
        return sorted(found)
    except OSError:
        return []


def runs_of(hparams_path: Path, root: str | Path | None = None) -> list[RunDirectory]:
    """The runs of one hparams file under the artifacts root, oldest first."""
    root = (Path(root) if root is not None else artifacts_root()).absolute()
    runs = []
    for record in sorted(root.glob("*/run.json")) if root.is_dir() else []:
        run = RunDirectory.open(record.parent)  # a corrupted record is reported, not skipped
        if run.record.get("hparams_path") == str(hparams_path):
            runs.append(run)
    return sorted(runs, key=lambda run: run.record.get("started", ""))


class RunDirectory:
    """The files of one run. ``record`` holds run.json's content; ``update`` rewrites it."""

    def __init__(self, path: Path, record: dict[str, Any], writable: bool = True) -> None:
        self.path = path
        self.record = record
        self.checkpoints = path / "checkpoints"
        self.writable = writable  # False for the non-zero ranks of a multi-process run
        self._lock: int | None = None

    @classmethod
    def create(cls, task_name: str, task_id: str, root: str | Path | None = None, **record: Any):
        """Make ``<root>/<safe task name>-<task_id>/``, own it (``lock``) and write its first
        run.json."""
        root = (Path(root) if root is not None else artifacts_root()).absolute()
        path = root / dir_name(task_name, task_id)
        (path / "checkpoints").mkdir(parents=True, exist_ok=False)
        run = cls(path, {"task_id": task_id, "task_name": task_name, **record})
        run.lock()
        run.update(status="running", started=now())
        return run

    @classmethod
    def open(cls, path: Path, writable: bool = True) -> RunDirectory:
        """An existing run directory (to resume it, or to share it with rank zero); a run.json
        that cannot be read is a ``UserError`` naming it."""
        record_path = path / "run.json"
        try:
            record = read_json(record_path)
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) else f"not valid JSON: {error}"
            raise UserError(f"{display_path(record_path)}: cannot be read ({reason})") from None
        if not isinstance(record, dict) or not record.get("task_id") or not isinstance(record["task_id"], str):
            raise UserError(f"{display_path(record_path)}: not a torch-lab run record (no task_id)")
        return cls(path.absolute(), record, writable)

    def lock(self) -> None:
        """Own this run directory until the process ends: an exclusive ``flock`` on its .lock
        file (the kernel releases it when the process dies, however it dies). Another owner is a
        ``UserError`` naming its pid. Then remove temporary files left by dead writers."""
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            if os.path.lexists(self.path / LOCK_FILE):  # e.g. a directory named .lock
                raise UserError(f"{display_path(self.path / LOCK_FILE)}: cannot be the run's lock file "
                                f"({error.strerror}); remove it") from None
            raise UserError(f"{display_path(self.path)}: cannot create its lock file {LOCK_FILE} "
                            f"({error.strerror}): the run directory is read-only or immutable (see "
                            "ls -ld and lsattr -d); make it writable to change the run") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"{self.path}: in use by another torch-lab process (pid {holder}, "
                            f"holding {self.path / LOCK_FILE})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock = fd
        for stale in [*self.path.glob(".*.tmp"), *self.checkpoints.glob(".*.tmp")]:
            stale.unlink(missing_ok=True)

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into run.json and rewrite it."""
        self.record.update(fields)
        if not self.writable:
            return
        write_atomic(self.path / "run.json", dumps(self.record))

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as ``<name>`` (pretty JSON) in the run directory."""
        path = self.path / name
        if self.writable:
            write_atomic(path, dumps(data))
        return path

    def snapshot_sources(self, folder: Path) -> Path:
        """Zip the experiment folder's Python files (no caches) as ``source.zip``."""
        import zipfile

        path = self.path / "source.zip"
        with atomic_file(path) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as zipped:
            for source in sorted(folder.rglob("*.py")):
                if "__pycache__" not in source.parts:
                    zipped.write(source, source.relative_to(folder.parent))
        return path

    def write_history(self, rows: list[dict[str, Any]]) -> Path:
        """Rewrite history.csv from ``rows`` (one per epoch; columns are the union of keys)."""
        import csv
        import io

        columns: list[str] = []
        for row in rows:
            columns += [key for key in row if key not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        path = self.path / "history.csv"
        write_atomic(path, buffer.getvalue())
        return path
