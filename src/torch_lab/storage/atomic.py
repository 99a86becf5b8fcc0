"""Atomic writes: a reader, or a kill at any moment, sees the old file or the new one, never a
torn one. Standard library only (the ``runs`` command imports this package)."""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from torch_lab.errors import storage_full


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


def plain_json(data: Any) -> Any:
    """``data`` with non-finite floats as None: strict JSON parsers reject NaN and Infinity."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: plain_json(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain_json(value) for value in data]
    return data


def dumps(data: Any) -> str:
    """Pretty, standard JSON (see ``plain_json``), one trailing newline."""
    return json.dumps(plain_json(data), indent=2, default=str, allow_nan=False) + "\n"
