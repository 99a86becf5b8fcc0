"""A run's directory: ``<artifacts root>/<task name>-<task id>/`` with run.json, hparams.json,
checkpoints/ and history.csv. Files are written atomically (write, then rename).

The ``runs`` command imports this module, so the modules only writing needs (csv, tempfile,
zipfile: half of ``runs``' start-up) are imported where they are used."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from torch_lab.errors import storage_full

ARTIFACTS_ENV = "TORCH_LAB_ARTIFACTS"


def artifacts_root() -> Path:
    """``$TORCH_LAB_ARTIFACTS`` if set, else ``./data/artifacts``."""
    return Path(os.environ.get(ARTIFACTS_ENV) or "data/artifacts")


def now() -> str:
    """The current time as an ISO 8601 string with timezone."""
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file beside ``path`` that replaces ``path`` when the block
    ends: readers, and a kill at any moment, see the old or the new file, never a torn one."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        full = storage_full(error)
        if full is not None and full.filename is None:  # name the file that could not be written
            raise OSError(full.errno, full.strerror, str(path)) from error
        raise


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (see ``atomic_file``)."""
    with atomic_file(path) as handle:
        handle.write(text.encode())


def find_run_dir(task_id: str, root: str | Path | None = None) -> Path | None:
    """The run directory of ``task_id`` under the artifacts root, or None when there is none."""
    root = (Path(root) if root is not None else artifacts_root()).absolute()
    matches = sorted(root.glob(f"*-{task_id}")) if root.is_dir() and task_id else []
    return next((m for m in matches if (m / "run.json").is_file()), None)


def runs_of(hparams_path: Path, root: str | Path | None = None) -> list[RunDirectory]:
    """The runs of one hparams file under the artifacts root, oldest first."""
    root = (Path(root) if root is not None else artifacts_root()).absolute()
    runs = []
    for record in sorted(root.glob("*/run.json")) if root.is_dir() else []:
        try:
            run = RunDirectory.open(record.parent)
        except (OSError, ValueError):
            continue
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

    @classmethod
    def create(cls, task_name: str, task_id: str, root: str | Path | None = None, **record: Any):
        """Make ``<root>/<task_name>-<task_id>/`` and write its first run.json."""
        root = Path(root) if root is not None else artifacts_root()
        path = (root / f"{task_name}-{task_id}").absolute()
        (path / "checkpoints").mkdir(parents=True, exist_ok=False)
        run = cls(path, {"task_id": task_id, "task_name": task_name, **record})
        run.update(status="running", started=now())
        return run

    @classmethod
    def open(cls, path: Path, writable: bool = True) -> RunDirectory:
        """An existing run directory (to resume it, or to share it with rank zero)."""
        return cls(path.absolute(), json.loads((path / "run.json").read_text()), writable)

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into run.json and rewrite it."""
        self.record.update(fields)
        if not self.writable:
            return
        write_atomic(self.path / "run.json", json.dumps(self.record, indent=2, default=str) + "\n")

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as ``<name>`` (pretty JSON) in the run directory."""
        path = self.path / name
        if self.writable:
            write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
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
