"""The text the ``runs`` command prints: the listing (a table, or JSON), one run in full
(``runs show``) and runs side by side (``runs compare``). Pure standard library."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from torch_lab.errors import UserError
from torch_lab.runs import slurm_jobs
from torch_lab.runs.records import MISSING, Key, Run, differing, lineage
from torch_lab.runs.tidy import usage
from torch_lab.storage.atomic import plain_json
from torch_lab.text import (cut, display_width, duration_text, number_text, pad, printable, short_names,
                            size_text, table)

LIST_COLUMNS = ("task name", "task id", "status", "started", "duration", "epochs", "best")
RIGHT = {"duration", "epochs"}  # right-aligned columns of the listing
#: Display columns a listing's cells are cut to (the task name's own).
CELL_WIDTH, NAME_WIDTH = 24, 32


def value_text(value: Any) -> str:
    """An hparams value as a user would type it after ``--set``: strings bare, anything else as a
    Python literal (``-`` for a key the run does not have)."""
    return value if isinstance(value, str) else "-" if value is MISSING else repr(value)


def metric_text(value: Any, digits: int = 6) -> str:
    """A metric value to ``digits`` significant digits, or ``-`` when there is none."""
    return "-" if value is None else f"{float(value):.{digits}g}"


def time_text(run: Run, key: str = "started") -> str:
    """A run.json time as ``YYYY-MM-DD HH:MM:SS`` (as recorded, in the run's own time zone)."""
    text = run.record.get(key)
    return str(text)[:19].replace("T", " ") if text else "-"


def best_text(run: Run, digits: int = 4) -> str:
    """``<monitor>=<best value>``, or ``-`` when the run has none."""
    best = run.best
    if best.get("value") is None:
        return "-"
    return f"{best.get('monitor', '?')}={metric_text(best['value'], digits)}"


def short_value(value: Any) -> str:
    """An hparams value in a listing or a legend: floats (in lists too) to 4 significant digits."""
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, (list, tuple)) and any(isinstance(item, float) for item in value):
        return "[" + ", ".join(short_value(item) for item in value) + "]"
    return value_text(value)


def pick_columns(runs: list[Run], asked: list[str]) -> list[Key]:
    """The hparams keys ``--columns`` names: each a dotted key (``config.lr``) or its unique end
    (``lr``)."""
    known: dict[str, None] = {}
    for run in runs:
        known.update(dict.fromkeys(run.hparams))
    keys = []
    for name in asked:
        found = [key for key in known if key == name or key.endswith(f".{name}")]
        exact = [key for key in found if key == name]
        if len(found) != 1 and not exact:
            what = f"is ambiguous ({', '.join(found[:4])})" if found else "is no hparams key of these runs"
            raise UserError(f"--columns {name}: {what}")
        keys.append(tuple((exact or found)[0].split(".")))
    return keys


def listing(runs: list[Run], width: int | None = None, columns: list[str] | None = None) -> tuple[str, list[str]]:
    """One line per run (newest last) with the hparams that differ among ``runs`` (or those
    ``columns`` names) as columns, each headed by the shortest unambiguous end of its dotted key;
    numbers to 4 significant digits. Within ``width`` display columns (None: no limit, for a file
    or pipe): long cells cut with ``…``, task ids shortened to their unique start if need be, and
    the hparams columns that do not fit left out. A ``kind`` column follows the status when not
    all runs are training runs (``infer``, ``export``, ``lr-find``, ``test`` tasks). Returns the
    table and the names of the columns left out."""
    keys = pick_columns(runs, columns) if columns else differing(runs)
    names = short_names([".".join(key) for key in keys])
    ids = [run.task_id for run in runs]
    name_width, cell = (NAME_WIDTH, CELL_WIDTH) if width is not None else (sys.maxsize, sys.maxsize)
    kinds = any(run.kind != "train" for run in runs)
    jobs = slurm_jobs.cells(runs)
    heads = [*LIST_COLUMNS[:3], *(["kind"] * kinds), *(["slurm job"] * bool(jobs)), *LIST_COLUMNS[3:]]
    fixed = [[cut(printable(run.task_name), name_width), run.task_id, run.status, *([run.kind] * kinds),
              *([jobs[index]] if jobs else []), time_text(run), duration_text(run.duration), str(run.epochs),
              cut(printable(best_text(run)), cell)] for index, run in enumerate(runs)]
    extra = [[cut(printable(name), cell)] + [cut(printable(short_value(run.hparam(key))), cell)
                                             for run in runs] for name, key in zip(names, keys)]

    kept, dropped = (extra, []) if width is None else fit(heads, fixed, extra, ids, width)
    header = [*heads, *(column[0] for column in kept)]
    rows = [header] + [[*row, *(column[index + 1] for column in kept)] for index, row in enumerate(fixed)]
    return table(rows, right=[i for i, name in enumerate(header) if name in RIGHT]), dropped


def fit(heads: list[str], fixed: list[list[str]], extra: list[list[str]], ids: list[str],
        width: int) -> tuple[list[list[str]], list[str]]:
    """Fit a listing into ``width`` display columns: shorten the task ids (``fixed``'s second
    cells, under ``heads``) when all would not fit, then keep the hparams columns of ``extra``
    (header first) that fit; returns them and the names of those left out."""
    def size(column: list[str]) -> int:
        return max(display_width(cell) for cell in column) + 2

    total = sum(size([head] + [row[i] for row in fixed]) for i, head in enumerate(heads))
    if total + sum(size(column) for column in extra) > width:
        for row, short in zip(fixed, short_ids(ids)):
            row[1] = short
        total = sum(size([head] + [row[i] for row in fixed]) for i, head in enumerate(heads))
    kept: list[list[str]] = []
    dropped: list[str] = []
    for column in extra:
        if not dropped and total + size(column) <= width + 2:
            kept.append(column)
            total += size(column)
        else:
            dropped.append(column[0])
    return kept, dropped


def short_ids(ids: list[str]) -> list[str]:
    """Each task id as its shortest start (8 characters or more, without ``offline-``) that no
    other of ``ids`` shares: what ``runs show`` and ``--resume`` take."""
    bare = [task_id.removeprefix("offline-") for task_id in ids]
    shorts = []
    for task_id in bare:
        length = min(8, len(task_id))
        while length < len(task_id) and sum(other.startswith(task_id[:length]) for other in bare) > 1:
            length += 1
        shorts.append(task_id[:length])
    return shorts


def listing_json(runs: list[Run]) -> str:
    """The listing as a JSON list: each run's summary, its path, its bytes on disk (see
    ``tidy.usage``) and its flattened hparams; NaN and infinities as null (JSON has none)."""
    return json.dumps(plain_json([{
        "task_id": run.task_id, "task_name": run.task_name,
        "project_name": run.record.get("project_name"), "kind": run.kind, "status": run.status,
        "started": run.record.get("started"), "finished": run.record.get("finished"),
        "duration_s": run.duration, "epochs": run.epochs, "best": run.best or None,
        "sweep": run.record.get("sweep"), "group": run.record.get("group"), "slurm": job,
        "path": str(run.path), "size_bytes": usage(run).total,
        "hparams": run.hparams,
    } for run, job in zip(runs, slurm_jobs.fields(runs))]), indent=2, default=str, allow_nan=False)


def show(run: Run, runs: list[Run]) -> str:
    """One run in full: summary (its size on disk too), hparams, metrics, lineage, files and its
    offline session."""
    record = run.record
    summary = [("task id", run.task_id), ("task name", run.task_name),
               ("project", str(record.get("project_name", "-"))), ("status", run.status),
               ("started", time_text(run)), ("finished", time_text(run, "finished")),
               ("duration", duration_text(run.duration)), ("epochs", str(run.epochs))]
    if record.get("sweep"):
        summary.append(("sweep", f"{record['sweep'].get('name')} (trial {record['sweep'].get('trial')})"))
    if (job := slurm_jobs.job_text(record)) is not None:
        state = slurm_jobs.states([run]).get(job)
        requeued = record["slurm"].get("restart_count") or 0
        summary.append(("slurm job", f"{job}{f' ({state})' if state else ''}"
                        f"{f', requeued {requeued} times' if requeued else ''}"))
    if record.get("error"):
        summary.append(("error", str(record["error"])))
    if isinstance(record.get("synced"), dict):  # runs sync imported it into a ClearML server
        summary.append(("synced", f"task {record['synced'].get('task_id')} ({record['synced'].get('at')})"))
    summary += [("hparams file", str(record.get("hparams_path", "-"))), ("directory", str(run.path)),
                ("size", usage(run).text())]
    parts = ["\n".join(_pairs(summary)),
             _section("hparams", _pairs([(k, value_text(v)) for k, v in run.hparams.items()]))]
    best = run.best
    if best.get("value") is not None:
        parts.append(printable(f"best: {best_text(run, 6)} ({best.get('mode', '?')}) at epoch {best.get('epoch')}"))
    parts.append(_section("final metrics", _pairs(_metrics(record.get("metrics")))))
    if record.get("start_metrics"):
        parts.append(_section("metrics at the start (inherited model)",
                              _pairs(_metrics(record["start_metrics"]))))
    parts.append(_section("lineage", _lineage(run, runs)))
    parts.append(_section("files", _pairs(_files(run.path))))
    parts.append(_section("offline session", _session(record.get("offline_session"))))
    return "\n\n".join(parts)


def compare(runs: list[Run]) -> str:
    """``runs`` side by side: summary, the hparams that differ and every metric."""
    rows = [["", *(run.task_name for run in runs)], ["task id", *(run.task_id for run in runs)],
            ["status", *(run.status for run in runs)], ["started", *(time_text(run) for run in runs)],
            ["duration", *(duration_text(run.duration) for run in runs)],
            ["epochs", *(str(run.epochs) for run in runs)], ["best", *(best_text(run, 6) for run in runs)]]
    keys = differing(runs)
    rows.append(["hparams that differ" if keys else "hparams: all the same", *("" for _ in runs)])
    rows += [[f"  {'.'.join(key)}", *(value_text(run.hparam(key)) for run in runs)] for key in keys]
    metrics: dict[str, None] = {}
    for run in runs:
        metrics.update(dict.fromkeys(sorted(run.record.get("metrics") or {})))
    rows.append(["final metrics" if metrics else "final metrics: none", *("" for _ in runs)])
    rows += [[f"  {name}", *(metric_text((run.record.get("metrics") or {}).get(name)) for run in runs)]
             for name in metrics]
    return table(rows)


def _metrics(metrics: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [(name, metric_text(metrics[name])) for name in sorted(metrics or {})]


def _pairs(pairs: list[tuple[str, str]]) -> list[str]:
    """``key  value`` lines, the values aligned."""
    pairs = [(printable(key), printable(value)) for key, value in pairs]
    width = max((display_width(key) for key, _ in pairs), default=0)
    return [f"{pad(key, width)}  {value}".rstrip() for key, value in pairs]


def _section(title: str, lines: list[str]) -> str:
    """``title:`` and its lines indented, or ``title: none``."""
    return f"{title}:\n" + "\n".join(f"  {printable(line)}" for line in lines) if lines else f"{title}: none"


def _lineage(run: Run, runs: list[Run]) -> list[str]:
    lines = []
    started_from = run.record.get("started_from") or {}
    if started_from and not started_from.get("task_id"):
        lines.append(f"started from the checkpoint file {started_from.get('path')}")
    for depth, (task_id, parent) in enumerate(lineage(run, runs)):
        where = f"{parent.task_name}, {parent.status}" if parent else "not under this artifacts root"
        lines.append(f"{'  ' * depth}<- {task_id} ({where})")
    if lines and started_from.get("task_id"):
        how = "weights only" if started_from.get("weights_only") else "full training state"
        lines[0] += f": checkpoint '{started_from.get('checkpoint', '?')}', {how}"
    return lines


def _files(path: Path) -> list[tuple[str, str]]:
    files = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            if not name.startswith("."):  # atomic writes' temporary files
                file = Path(folder) / name
                files.append((str(file.relative_to(path)), _size(file)))
    return files


def _size(path: Path) -> str:
    try:
        return size_text(path.stat().st_size)
    except OSError:  # a dangling symlink
        return "(a link to nothing)" if path.is_symlink() else "(unreadable)"


def _session(zip_path: str | None) -> list[str]:
    if not zip_path:
        return []
    zipped, folder = Path(zip_path), Path(zip_path).with_suffix("")
    if not zipped.is_file():
        return [f"{zip_path} (missing{'; the session folder is ' + str(folder) if folder.is_dir() else ''})"]
    return [zip_path, f"import it with: clearml-task --import-offline-session {zip_path}"]
