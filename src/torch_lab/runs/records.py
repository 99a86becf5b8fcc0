"""Reading run directories for the ``runs`` command: finding them under the artifacts root,
filtering, resolving task ids and comparing hparams. Pure standard library (no torch, no
clearml), so listing a thousand runs takes a fraction of a second."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from torch_lab.errors import UserError
from torch_lab.text import printable
from torch_lab.storage.run_dir import LOCK_FILE, matching_ids, run_dirs

#: A dotted hparams key as its parts: ``("config", "lr")``.
Key = tuple[str, ...]
#: The value of an hparams key a run does not have.
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "-"})()


class Run:
    """One run directory: run.json's ``record``, hparams.json's ``tree`` and the epoch count."""

    def __init__(self, path: Path, record: dict[str, Any], tree: dict[str, Any] | None = None,
                 epochs: int = 0) -> None:
        self.path = path
        self.record = record
        self.tree = tree or {}
        self.epochs = epochs

    @property
    def hparams(self) -> dict[str, Any]:
        """The hparams as dotted keys (see ``flatten``)."""
        return flatten(self.tree)

    def hparam(self, key: Key) -> Any:
        """The value of one hparams key, or ``MISSING``."""
        node: Any = self.tree
        for part in key:
            if not isinstance(node, dict) or part not in node:
                return MISSING
            node = node[part]
        return MISSING if isinstance(node, dict) and node else node

    @property
    def task_id(self) -> str:
        return str(self.record.get("task_id", ""))

    @property
    def task_name(self) -> str:
        return str(self.record.get("task_name", ""))

    @property
    def status(self) -> str:
        """run.json's status; ``dead`` for a ``running`` one whose process is gone (killed)."""
        status = str(self.record.get("status", "?"))
        return "dead" if status == "running" and not owned(self.path) else status

    @property
    def started(self) -> datetime | None:
        return parse_time(self.record.get("started"))

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (to now while running); a resumed run's, from its last
        resume on, plus what it ran before (``ran_s``, without the time stopped in between)."""
        resumed, earlier = self.record.get("resumed"), self.record.get("ran_s")
        known = isinstance(resumed, list) and resumed and isinstance(earlier, (int, float))
        started = parse_time(resumed[-1]) if known else self.started
        finished = parse_time(self.record.get("finished"))
        if started is None:
            return None
        if finished is None and self.status == "running":
            finished = datetime.now(timezone.utc)
        return (earlier if known else 0.0) + (finished - started).total_seconds() if finished is not None else None

    @property
    def best(self) -> dict[str, Any]:
        return self.record.get("best") or {}


def owned(path: Path) -> bool:
    """Whether a live process holds the run directory's lock (see ``RunDirectory.lock``); run
    directories from before the lock count as owned."""
    return lock_held(path) is not False


def lock_held(path: Path) -> bool | None:
    """Whether a live process holds the run directory's lock: a shared, non-blocking ``flock``
    on its .lock fails while ``RunDirectory.lock`` holds it. Changes nothing. None when there is
    no .lock to try (a run from before the lock)."""
    import fcntl

    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def parse_time(text: Any) -> datetime | None:
    """An ISO 8601 time from run.json (naive times are taken as UTC), or None."""
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys: ``{"config": {"lr": 0.1}}`` -> ``{"config.lr": 0.1}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def count_rows(path: str | Path) -> int:
    """The data rows of a CSV file (lines after the header), without parsing it."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return 0
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return max(lines - 1, 0)


def read_run(path: str, warn: Any = None) -> Run:
    """The run in directory ``path``; ValueError when its run.json is not a JSON object. Each
    field of the wrong shape is reported through ``warn`` and left out (see ``SHAPES``)."""
    with open(os.path.join(path, "run.json"), "rb") as handle:
        record = json.loads(handle.read())
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    for key in [key for key in record if not _fits(key, record[key])]:
        if warn:
            warn(f"{os.path.join(path, 'run.json')}: {key} is {_shape(record[key])}, expected "
                 f"{SHAPES[key][1]}; left out")
        del record[key]
    try:
        with open(os.path.join(path, "hparams.json"), "rb") as handle:
            hparams = json.loads(handle.read())
    except (OSError, ValueError):
        hparams = {}
    return Run(Path(path), record, hparams if isinstance(hparams, dict) else {},
               count_rows(os.path.join(path, "history.csv")))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metrics(value: Any) -> bool:
    return isinstance(value, dict) and all(_number(v) or v is None for v in value.values())


#: run.json fields the listing reads: a test of the shape and its description for the warning.
SHAPES: dict[str, tuple[Any, str]] = {
    "task_id": (lambda v: isinstance(v, str), "a string"),
    "task_name": (lambda v: isinstance(v, str), "a string"),
    "best": (lambda v: v is None or isinstance(v, dict) and (v.get("value") is None or _number(v["value"])),
             "an object with a numeric value"),
    "metrics": (lambda v: v is None or _metrics(v), "an object of numbers"),
    "start_metrics": (lambda v: v is None or _metrics(v), "an object of numbers"),
    "sweep": (lambda v: v is None or isinstance(v, dict), "an object"),
    "started_from": (lambda v: v is None or isinstance(v, dict), "an object"),
    "offline_session": (lambda v: v is None or isinstance(v, str), "a path"),
}


def _fits(key: str, value: Any) -> bool:
    return key not in SHAPES or SHAPES[key][0](value)


def _shape(value: Any) -> str:
    text = json.dumps(value, default=str)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def read_runs(root: Path, warn: Any = None) -> list[Run]:
    """Every readable run under ``root``, oldest first; each unreadable run.json (or field of it)
    is reported once through ``warn`` (a line on stderr by default) and left out."""
    warn = warn or (lambda line: print(f"runs: warning: {printable(line)}", file=sys.stderr))
    runs = []
    for path in run_dirs(root):
        try:
            runs.append(read_run(path, warn))
        except (OSError, ValueError) as error:
            warn(f"{os.path.join(path, 'run.json')}: unreadable ({error}); left out")
    return sorted(runs, key=_start_key)


def _start_key(run: Run) -> tuple[float, str]:
    started = run.started
    return (started.timestamp() if started else float("-inf"), run.path.name)


def select(runs: list[Run], pattern: str | None = None, status: list[str] | None = None,
           project: str | None = None, sweep: str | None = None, last: int | None = None) -> list[Run]:
    """The runs matching every filter given. ``pattern`` is a shell pattern on the directory name
    (``<task name>-<task id>``), or a substring without wildcards; ``project`` a shell pattern."""
    def matches(run: Run) -> bool:
        name = run.path.name
        if pattern and not (fnmatchcase(name, pattern) if any(c in pattern for c in "*?[")
                            else pattern in name):
            return False
        if status and run.status not in status:
            return False
        if project and not fnmatchcase(str(run.record.get("project_name", "")), project):
            return False
        return not sweep or (run.record.get("sweep") or {}).get("name") == sweep

    chosen = [run for run in runs if matches(run)]
    return chosen[-last:] if last else chosen


def resolve(runs: list[Run], ident: str, root: Path) -> Run:
    """The run whose task id is ``ident``, or starts with it (with or without ``offline-``)."""
    found = matching_ids([run.task_id for run in runs], ident)
    if not found:
        raise UserError(f"no run with task id {ident!r} under {root}")
    if len(found) > 1:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise UserError(f"task id {ident!r} is ambiguous under {root}: {len(found)} runs match "
                        f"({shown}); give more characters")
    return next(run for run in runs if run.task_id == found[0])


def differing(runs: list[Run]) -> list[Key]:
    """The hparams keys (of ``flatten``) whose values are not equal in all of ``runs``, a missing
    key counting as a value, in the order they first appear. Equal sub-trees are skipped whole."""
    return _differing([run.tree for run in runs], ())


def _differing(values: list[Any], key: Key) -> list[Key]:
    if all(value == values[0] for value in values[1:]):
        return []
    nested = [isinstance(value, dict) and bool(value) for value in values]
    leaves = [MISSING if inner else value for value, inner in zip(values, nested)]
    found = [key] if key and any(leaf != leaves[0] for leaf in leaves[1:]) else []
    children: dict[str, None] = {}
    for value, inner in zip(values, nested):
        children.update(dict.fromkeys(value) if inner else {})
    for child in children:
        found += _differing([value.get(child, MISSING) if inner else MISSING
                             for value, inner in zip(values, nested)], (*key, child))
    return found


def lineage(run: Run, runs: list[Run]) -> list[tuple[str, Run | None]]:
    """The parent chain through ``started_from``: (task id, its run here or None), nearest first."""
    by_id = {r.task_id: r for r in runs}
    chain: list[tuple[str, Run | None]] = []
    current: Run | None = run
    while current is not None:
        parent = (current.record.get("started_from") or {}).get("task_id")
        if not parent or any(task_id == parent for task_id, _ in chain) or parent == run.task_id:
            break
        current = by_id.get(parent)
        chain.append((parent, current))
    return chain
