"""Reading run directories for the ``runs`` command: finding them under the artifacts root
(choosing among them: ``choose``) and comparing hparams. Pure standard library (no torch, no
clearml), so listing a thousand runs takes a fraction of a second."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from torch_lab.errors import display_path
from torch_lab.runs.derived import best_so_far, kind
from torch_lab.text import printable
from torch_lab.storage.run_dir import LOCK_FILE, read_json, run_dirs

#: A dotted hparams key as its parts: ``("config", "lr")``.
Key = tuple[str, ...]
#: The value of an hparams key a run does not have.
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "-"})()
#: The statuses ``--status`` takes (``dead``: recorded running, its process gone).
STATUSES = ("running", "completed", "failed", "interrupted", "pruned", "dead")


class Run:
    """One run directory: run.json's ``record``, hparams.json's ``tree``, the epoch count and the
    artifacts root it was found under (None: not known)."""

    def __init__(self, path: Path, record: dict[str, Any], tree: dict[str, Any] | None = None,
                 epochs: int = 0, root: Path | None = None) -> None:
        self.path = path
        self.record = record
        self.tree = tree or {}
        self.epochs = epochs
        self.root = root
        self._best: dict[str, Any] | None = None

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
    def kind(self) -> str:
        """``train``, ``test``, ``infer``, ``export`` or ``lr-find`` (see ``derived.kind``)."""
        return kind(self.record)

    @property
    def best(self) -> dict[str, Any]:
        """run.json's best; for a run that has not recorded one yet (running, interrupted, killed)
        the best so far, from history.csv and checkpoints/best.ckpt (see ``best_so_far``)."""
        if self._best is None:
            recorded = self.record.get("best") or {}
            self._best = recorded if recorded.get("value") is not None else (
                best_so_far(self.path, self.tree.get("monitor")) or recorded)
        return self._best


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


def read_run(path: str, warn: Any = None, root: Path | None = None) -> Run:
    """The run in directory ``path``; ValueError when its run.json is not a JSON object (or too
    deep, see ``read_json``) or has no task id (a non-empty string). Each other field of the
    wrong shape is reported through ``warn`` and left out (see ``SHAPES``)."""
    record = read_json(Path(path) / "run.json")
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    task_id = record.get("task_id")
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValueError(f"task_id is {_shape(task_id) if 'task_id' in record else 'missing'}, expected "
                         "a task id (a non-empty string)")
    for key in [key for key in record if not _fits(key, record[key])]:
        if warn:
            warn(f"{os.path.join(path, 'run.json')}: {key} is {_shape(record[key])}, expected "
                 f"{SHAPES[key][1]}; left out")
        del record[key]
    try:
        hparams = read_json(Path(path) / "hparams.json")
    except (OSError, ValueError):
        hparams = {}
    return Run(Path(path), record, hparams if isinstance(hparams, dict) else {},
               count_rows(os.path.join(path, "history.csv")), root)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metrics(value: Any) -> bool:
    return isinstance(value, dict) and all(_number(v) or v is None for v in value.values())


#: run.json fields the listing reads: a test of the shape and its description for the warning.
SHAPES: dict[str, tuple[Any, str]] = {
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
    is reported once through ``warn`` (a line on stderr by default) and left out, and so is a
    task id found in several run directories (``resolve`` refuses it)."""
    warn = warn or (lambda line: print(f"runs: warning: {printable(line)}", file=sys.stderr))
    runs = []
    for path in run_dirs(root):
        try:
            runs.append(read_run(path, warn, root))
        except (OSError, ValueError) as error:
            warn(f"{os.path.join(path, 'run.json')}: unreadable ({error}); left out")
    for task_id, paths in duplicates(runs).items():
        warn(f"task id {task_id} is recorded in {len(paths)} run directories ({', '.join(paths)}); "
             "each is listed, none can be chosen by its id")
    return sorted(runs, key=_start_key)


def duplicates(runs: list[Run]) -> dict[str, list[str]]:
    """The task ids recorded by more than one of ``runs`` (a copied run directory) and their
    directories."""
    found: dict[str, list[str]] = {}
    for run in runs:
        found.setdefault(run.task_id, []).append(display_path(run.path))
    return {task_id: sorted(paths) for task_id, paths in found.items() if len(paths) > 1}


def _start_key(run: Run) -> tuple[float, str]:
    started = run.started
    return (started.timestamp() if started else float("-inf"), run.path.name)


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
