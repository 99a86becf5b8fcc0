"""Tidying the artifacts root: what each run holds on disk (``runs du``), removing whole run
directories (``runs rm``) and the checkpoints a finished run no longer needs (``runs prune``).

Standard library only. A run is only changed while this process owns it as ``train`` does
(``RunDirectory.lock``): a run in use is never touched, and no ``train --resume`` takes one over
while its files go. Nothing outside the chosen run directories is removed (offline sessions, in
ClearML's cache, stay), and nothing that measures or removes follows a symbolic link out of a run
directory or trusts a path run.json names before checking it lies where torch-lab puts it."""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from torch_lab.errors import UserError, display_path
from torch_lab.runs.records import Run, lock_held
from torch_lab.storage.atomic import write_atomic
from torch_lab.storage.board_links import unlink_board
from torch_lab.storage.run_dir import LOCK_FILE, SWEEPS, RunDirectory, link_on_the_way, now
from torch_lab.text import size_text, table

#: Statuses ``prune`` thins out (a running or dead run may still need its last.ckpt to resume).
FINISHED = ("completed", "failed", "interrupted", "pruned")
#: ``prune --keep``: the checkpoint it keeps.
KEPT = {"best": "best.ckpt", "last": "last.ckpt"}


def tree_bytes(path: Path) -> int:
    """The bytes of the files under ``path`` (or of the file ``path``), no symbolic link followed
    (``path`` itself neither: a link counts its own bytes); 0 when there is nothing."""
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(top.st_mode):
        return top.st_size
    total = 0
    for folder, dirs, names in os.walk(path):
        for name in names + [name for name in dirs if os.path.islink(os.path.join(folder, name))]:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:  # gone meanwhile
                pass
    return total


def linked_out(run: Run) -> str | None:
    """Why ``run``'s directory is not where torch-lab puts it (reached through a symbolic link),
    or None; then nothing measures or changes it."""
    link = link_on_the_way(run.root, run.path) if run.root is not None else (
        run.path if run.path.is_symlink() else None)
    return None if link is None else f"{link} is a symbolic link (to {os.path.realpath(link)})"


def session_files(run: Run) -> tuple[list[Path], str | None]:
    """The offline session's zip and folder that run.json's ``offline_session`` names, when it
    lies where ClearML keeps this run's session (``.../offline/<task id>.zip``, no link on the
    way from there); else none, and why (None when the run names no session)."""
    named = run.record.get("offline_session")
    if not named:
        return [], None
    zipped = Path(named)
    expected = f"{run.task_id}.zip"
    if not zipped.is_absolute() or zipped.name != expected or zipped.parent.name != "offline":
        return [], f"offline_session {named} is not ClearML's offline/{expected}"
    link = next((p for p in (zipped.parent, zipped, zipped.with_suffix("")) if p.is_symlink()), None)
    if link is not None:
        return [], f"offline_session: {link} is a symbolic link (to {os.path.realpath(link)})"
    return [zipped, zipped.with_suffix("")], None


@dataclass(frozen=True)
class Usage:
    """A run's bytes on disk: its checkpoints/ folder, its offline session (zip and folder, in
    ClearML's cache) and the rest of its directory."""

    checkpoints: int = 0
    session: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.checkpoints + self.session + self.other

    @property
    def directory(self) -> int:
        """The bytes of the run directory: what ``runs rm`` frees."""
        return self.checkpoints + self.other

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.checkpoints + other.checkpoints, self.session + other.session,
                     self.other + other.other)

    def text(self) -> str:
        """``1.2 MB (checkpoints 36.6 kB, offline session 1.1 MB, other 80.2 kB)``."""
        return (f"{size_text(self.total)} (checkpoints {size_text(self.checkpoints)}, offline session "
                f"{size_text(self.session)}, other {size_text(self.other)})")


def usage(run: Run) -> Usage:
    """What ``run`` holds on disk (see ``Usage``): nothing behind a symbolic link, nor an offline
    session run.json names elsewhere than ClearML keeps it (see ``linked_out``, ``session_files``)."""
    if linked_out(run):
        return Usage()
    checkpoints = tree_bytes(run.path / "checkpoints")
    session = sum(tree_bytes(path) for path in session_files(run)[0])
    return Usage(checkpoints, session, tree_bytes(run.path) - checkpoints)


def du_text(runs: list[Run]) -> tuple[str, list[str]]:
    """``runs du``: a row per run and a total row, sizes for people; and a note for each run (or
    offline session) not counted, saying why."""
    rows = [["task name", "task id", "status", "checkpoints", "offline session", "other", "total"]]
    total, notes = Usage(), []
    for run in runs:
        used = usage(run)
        total += used
        rows.append([run.task_name, run.task_id, run.status, *_sizes(used)])
        if why := linked_out(run) or session_files(run)[1]:
            notes.append(f"{run.task_id}: {why}; not counted")
    rows.append([f"total: {len(runs)} run{'s' * (len(runs) != 1)}", "", "", *_sizes(total)])
    return table(rows, right=[3, 4, 5, 6]), notes


def _sizes(used: Usage) -> list[str]:
    return [size_text(used.checkpoints), size_text(used.session), size_text(used.other), size_text(used.total)]


def in_use(run: Run) -> str | None:
    """Why ``run`` may not be changed now (another process holds its lock), or None. Changes
    nothing."""
    if not lock_held(run.path):
        return None
    try:
        holder = (run.path / LOCK_FILE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        holder = ""
    return f"in use by another torch-lab process (pid {holder or 'unknown'}, holding {run.path / LOCK_FILE})"


def own(runs: list[Run]) -> None:
    """Own each of ``runs`` as ``train`` does, until this process ends: a run taken meanwhile is a
    UserError naming it."""
    for run in runs:
        RunDirectory(run.path, run.record).lock()


def removal(runs: list[Run]) -> tuple[str, int]:
    """``runs rm``'s plan: a line per run directory with its size, and the bytes they hold. A run
    in use, or a directory reached through a symbolic link, is a UserError naming it. Changes
    nothing."""
    for run in runs:
        if why := linked_out(run):
            raise UserError(f"{run.task_id}: {why}; nothing removed")
        if why := in_use(run):
            raise UserError(f"{run.task_id} is {why}; nothing removed")
    sizes = [usage(run).directory for run in runs]
    return table([[display_path(run.path), size_text(size)] for run, size in zip(runs, sizes)],
                 right=[1]), sum(sizes)


def remove_runs(runs: list[Run]) -> list[str]:
    """Own ``runs``, then delete their directories, whole; a sweep's best.json naming one of them
    then records it removed (see ``forget_best``). Returns a line for each such sweep."""
    own(runs)
    notes = []
    for run in runs:
        try:
            shutil.rmtree(run.path)
        except OSError as error:
            raise UserError(f"{error.filename}: cannot be removed ({error.strerror})") from None
        if run.root is not None:
            unlink_board(run.root, run.path)
        notes += forget_best(run)
    return notes


def forget_best(run: Run) -> list[str]:
    """After ``run`` is removed: each sweep under its root whose best.json names it keeps the best
    trial's values and objective, its ``run_dir`` and ``checkpoint`` become null and ``removed``
    says when; a line per sweep."""
    notes = []
    for best in sorted((run.root / SWEEPS).glob("*/best.json")) if run.root is not None else []:
        try:
            record = json.loads(best.read_text())
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(record, dict) or record.get("task_id") != run.task_id and \
                record.get("run_dir") != str(run.path.absolute()):
            continue
        write_atomic(best, json.dumps({**record, "run_dir": None, "checkpoint": None,
                                       "removed": f"{run.task_id} removed by runs rm at {now()}"}, indent=2) + "\n")
        notes.append(f"{display_path(best)}: sweep {best.parent.name}'s best trial was {run.task_id}; "
                     "best.json now records it removed")
    return notes


@dataclass
class Pruning:
    """``runs prune``'s plan: the checkpoint files (and their sizes) to remove from each run it
    thins out, and why the other runs are left as they are."""

    files: dict[Run, list[tuple[Path, int]]]
    notes: list[str]

    @property
    def count(self) -> int:
        return sum(len(files) for files in self.files.values())

    @property
    def size(self) -> int:
        return sum(size for files in self.files.values() for _, size in files)

    def text(self) -> str:
        """A line per file with its size."""
        return table([[display_path(file), size_text(size)] for files in self.files.values()
                      for file, size in files], right=[1])


def pruning(runs: list[Run], keep: str) -> Pruning:
    """The files in each finished run's checkpoints/ but its ``keep`` one (``best`` or
    ``last``). Left as they are, with a note: runs not finished, runs without that checkpoint
    and runs in use. Changes nothing."""
    plan = Pruning({}, [])
    for run in runs:
        folder, kept = run.path / "checkpoints", KEPT[keep]
        if why := linked_out(run) or (folder.is_symlink() and f"checkpoints/ is a symbolic link (to "
                                                              f"{os.path.realpath(folder)})"):
            plan.notes.append(f"{run.task_id} left as it is: {why}")
            continue
        others = sorted(path for path in folder.iterdir() if path.name != kept and not path.is_dir()) \
            if folder.is_dir() else []
        if not others:
            continue
        if why := _unprunable(run, folder / kept):
            plan.notes.append(f"{run.task_id} left as it is: {why}")
        else:
            plan.files[run] = [(path, os.lstat(path).st_size) for path in others]
    return plan


def _unprunable(run: Run, kept: Path) -> str | None:
    """Why prune leaves ``run`` as it is, or None."""
    if run.status not in FINISHED:
        return f"{run.status}, it may still resume"
    if not kept.is_file():
        return f"it has no checkpoints/{kept.name} to keep"
    return in_use(run)


def prune(plan: Pruning) -> tuple[int, list[str]]:
    """Carry out ``plan``: own each run, then remove its files. The bytes freed, and a note for
    each run taken meanwhile by another process (left as it is)."""
    freed, notes = 0, []
    for run, files in plan.files.items():
        try:
            own([run])
        except UserError as error:
            notes.append(f"{run.task_id} left as it is: {error}")
            continue
        for file, size in files:
            try:
                file.unlink(missing_ok=True)
            except OSError as error:
                raise UserError(f"{file}: cannot be removed ({error.strerror})") from None
            freed += size
    return freed, notes
