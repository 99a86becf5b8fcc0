"""Choosing runs for the ``runs`` command and ``load_runs``: the filters (a pattern on the
directory name, statuses, project, sweep, the newest N) and a task id or the start of one.
Standard library only."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from torch_lab.errors import UserError, did_you_mean
from torch_lab.runs.records import STATUSES, Run, duplicates
from torch_lab.storage.run_dir import matching_ids


def statuses(given: list[str] | None, option: str = "--status") -> list[str]:
    """The statuses of ``--status`` values (comma-separated, repeated, or both); an unknown one is
    a UserError naming ``option``, with the closest status."""
    chosen = [status.strip() for one in given or [] for status in one.split(",") if status.strip()]
    for status in chosen:
        if status not in STATUSES:
            raise UserError(f"{option} {status}: no such status{did_you_mean(status, STATUSES, False)}; "
                            f"one of {', '.join(STATUSES)}")
    return chosen


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
    """The run whose task id is ``ident``, or starts with it (with or without ``offline-``). An
    empty or blank ``ident`` (an unset ``$ID``), and an id several run directories record, are a
    UserError."""
    if not ident.strip():
        raise UserError(f"task id {ident!r}: empty; give a task id or the start of one (runs lists them)")
    found = matching_ids([run.task_id for run in runs], ident)
    if not found:
        raise UserError(f"no run with task id {ident!r} under {root}")
    if len(found) > 1:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise UserError(f"task id {ident!r} is ambiguous under {root}: {len(found)} runs match "
                        f"({shown}); give more characters")
    if paths := duplicates([run for run in runs if run.task_id == found[0]]).get(found[0]):
        raise UserError(f"task id {found[0]} is recorded in {len(paths)} run directories ({', '.join(paths)}); "
                        "remove or move all but one by hand, nothing done")
    return next(run for run in runs if run.task_id == found[0])
