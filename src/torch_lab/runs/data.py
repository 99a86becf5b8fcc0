"""Runs as data, for a notebook or a spreadsheet: ``load_runs`` (plain dicts) and the rows of
``runs --csv``. Standard library only; neither torch nor ClearML is imported."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from torch_lab.runs.groups import group_dict, group_runs
from torch_lab.runs.choose import select, statuses
from torch_lab.runs.records import Run, read_runs
from torch_lab.storage.run_dir import artifacts_root
from torch_lab.text import csv_table, printable


def history_rows(path: Path) -> list[dict[str, float | None]]:
    """A run's history.csv as one dict per epoch (empty cells None); none when the run has no
    history yet. A file of the wrong shape (no ``epoch`` column, a ragged row, a value that is not
    a number) is a ValueError naming the file and the line."""
    try:
        with open(path / "history.csv", newline="") as handle:
            lines = list(csv.reader(handle))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path / 'history.csv'}: unreadable ({error})") from None
    if not lines:
        return []
    header, rows = lines[0], []
    if "epoch" not in header:
        raise ValueError(f"{path / 'history.csv'}: no 'epoch' column (it has {', '.join(header) or 'none'})")
    for number, cells in enumerate(lines[1:], 2):
        if len(cells) != len(header):
            raise ValueError(f"{path / 'history.csv'}: line {number} has {len(cells)} values for "
                             f"{len(header)} columns")
        row: dict[str, float | None] = {}
        for name, cell in zip(header, cells):
            try:
                row[name] = float(cell) if cell.strip() else None
            except ValueError:
                raise ValueError(f"{path / 'history.csv'}: line {number}: {name} is {cell[:40]!r}, "
                                 "not a number") from None
        if row["epoch"] is None:
            raise ValueError(f"{path / 'history.csv'}: line {number}: no epoch")
        rows.append(row)
    return rows


#: The summary fields of a run (``row``'s first columns, ``load_runs``' top-level keys).
SUMMARY = ("task_id", "task_name", "project", "kind", "status", "sweep", "trial", "group", "started",
           "finished", "duration_s", "epochs")


def row(run: Run) -> dict[str, Any]:
    """The run as one flat row: summary (the kind of run; a sweep trial's sweep and trial number;
    the ``train --seeds`` group), ``best.*``, the hparams as dotted keys and the final metrics
    (their names hold a ``/``: ``loss/val``)."""
    best, sweep = run.best, run.record.get("sweep") or {}
    return {"task_id": run.task_id, "task_name": run.task_name,
            "project": run.record.get("project_name"), "kind": run.kind, "status": run.status,
            "sweep": sweep.get("name"), "trial": sweep.get("trial"), "group": run.record.get("group"),
            "started": run.record.get("started"), "finished": run.record.get("finished"),
            "duration_s": run.duration, "epochs": run.epochs, "best.monitor": best.get("monitor"),
            "best.value": best.get("value"), "best.epoch": best.get("epoch"),
            **run.hparams, **(run.record.get("metrics") or {}), "path": str(run.path)}


def csv_text(runs: list[Run]) -> str:
    """``runs --csv``: a header, then a row per run (see ``row``), the columns the union of all."""
    return csv_table([row(run) for run in runs])


def load_runs(root: str | Path | None = None, pattern: str | None = None,
              status: str | list[str] | None = None, sweep: str | None = None) -> list[dict[str, Any]]:
    """The runs ``runs`` lists (oldest first), filtered as ``runs PATTERN --status S --sweep NAME``
    filters them, as plain dicts: ``task_id``, ``task_name``, ``project``, ``status``,
    ``kind``, ``sweep``, ``trial``, ``group``, ``started``, ``finished`` (ISO 8601 as recorded),
    ``duration_s``, ``epochs``, ``best`` (monitor, value, mode, epoch; or None), ``metrics``
    (final), ``hparams`` (nested), ``hparams_dotted``, ``history`` (a dict per epoch), ``path``
    and ``row`` (all of it flat, as ``runs --csv`` prints it: ``pandas.DataFrame([run["row"] for
    run in runs])``). ``status`` is one or a list, each may be comma-separated
    (``"completed,failed"``); an unknown one is a UserError, a missing ``root`` a
    FileNotFoundError. What cannot be read is reported on stderr and left out."""
    def warn(line: str) -> None:
        print(f"load_runs: warning: {printable(line)}", file=sys.stderr)

    loaded = []
    runs = _selected(root, pattern, status, sweep, warn)
    for run in runs:
        try:
            history = history_rows(run.path)
        except ValueError as error:
            warn(f"{error}; its history left out")
            history = []
        flat = row(run)
        loaded.append({**{key: flat[key] for key in SUMMARY}, "best": run.best or None,
                       "metrics": dict(run.record.get("metrics") or {}),
                       "hparams": run.tree, "hparams_dotted": run.hparams, "history": history,
                       "path": run.path, "row": flat})
    return loaded


def load_groups(root: str | Path | None = None, pattern: str | None = None,
                status: str | list[str] | None = None, sweep: str | None = None) -> list[dict[str, Any]]:
    """The runs ``load_runs`` returns grouped over seeds as ``runs --group`` groups them (the same
    task name and hparams but ``seed``), in the order of their first runs, as plain dicts:
    ``task_name``, ``group`` (the ``train --seeds`` group, if all share one), ``task_ids``, ``n``,
    ``statuses`` (a count per status), ``seeds``, ``hparams`` (nested, without the seed),
    ``hparams_dotted``, ``best`` (``monitor``, and n, mean, std, min, max of the runs' best values;
    None when no run has one) and ``metrics`` (the same statistics per final metric). std is the
    sample standard deviation, None for one value."""
    def warn(line: str) -> None:
        print(f"load_groups: warning: {printable(line)}", file=sys.stderr)

    return [group_dict(group) for group in group_runs(_selected(root, pattern, status, sweep, warn))]


def _selected(root: str | Path | None, pattern: str | None, status: str | list[str] | None,
              sweep: str | None, warn: Any) -> list[Run]:
    root = Path(root) if root is not None else artifacts_root()
    wanted = statuses([status] if isinstance(status, str) else status, "status")
    if not root.is_dir():
        raise FileNotFoundError(f"no artifacts root {root} (give root=DIR, or set TORCH_LAB_ARTIFACTS)")
    return select(read_runs(root, warn), pattern, wanted, None, sweep)
