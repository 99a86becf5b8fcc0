"""Curves of runs as PNG files with matplotlib's Agg renderer (no display, no pyplot state):
``runs plot`` (one panel per metric, a line per run) and each run's own curves.png (see
``torch_lab.curves``). matplotlib is imported only when a figure is made."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from torch_lab.errors import UserError
from torch_lab.runs import NOT_METRICS, Run, differing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: A curve: its label, x values and y values.
Line = tuple[str, list[float], list[float]]
#: Curves with at most this many points get a marker on each point.
MARKED_POINTS = 30


def history_curves(rows: Iterable[dict[str, str | float]]) -> dict[str, tuple[list[float], list[float]]]:
    """Each metric column of history rows as (epochs, values), empty cells skipped."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        for name, value in row.items():
            if name in NOT_METRICS or value in (None, ""):
                continue
            epochs, values = curves.setdefault(name, ([], []))
            epochs.append(float(row["epoch"]))
            values.append(float(value))
    return curves


def read_history(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """A run's history.csv as curves by epoch (none when it has no history yet)."""
    try:
        with open(path / "history.csv", newline="") as handle:
            return history_curves(csv.DictReader(handle))
    except FileNotFoundError:
        return {}


def session_curves(zip_path: str | None) -> dict[str, tuple[list[float], list[float]]]:
    """Every scalar of an offline ClearML session (its folder, else its zip) as (steps, values),
    named as torch-lab logged it (``loss/val``; ``lr-SGD``)."""
    if not zip_path:
        return {}
    folder = Path(zip_path).with_suffix("")
    if (folder / "metrics.jsonl").is_file():
        text = (folder / "metrics.jsonl").read_text()
    elif Path(zip_path).is_file():
        with zipfile.ZipFile(zip_path) as zipped:
            text = zipped.read("metrics.jsonl").decode() if "metrics.jsonl" in zipped.namelist() else ""
    else:
        return {}
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for line in text.splitlines():
        for event in json.loads(line) if line.strip() else []:
            if event.get("type") == "training_stats_scalar":
                title, series = event["metric"], event["variant"]
                steps, values = curves.setdefault(title if title == series else f"{title}/{series}", ([], []))
                steps.append(float(event["iter"]))
                values.append(float(event["value"]))
    return curves


def figure(panels: int, width: float = 4.2, height: float = 3.0, dpi: int = 100,
           constrained: bool = True) -> Figure:
    """An Agg figure with room for ``panels`` panels, at most three per row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(max(panels, 1), 3)
    rows = math.ceil(max(panels, 1) / columns)
    result = Figure(figsize=(width * columns, height * rows), dpi=dpi,
                    layout="constrained" if constrained else None)
    FigureCanvasAgg(result)
    return result


def draw(fig: Figure, panels: dict[str, list[Line]], xlabel: str) -> None:
    """One panel per entry of ``panels`` (its title), a line per curve, a legend in each panel
    with more than one line."""
    columns = min(max(len(panels), 1), 3)
    rows = math.ceil(max(len(panels), 1) / columns)
    for index, (title, lines) in enumerate(panels.items()):
        axes = fig.add_subplot(rows, columns, index + 1)
        for label, xs, ys in lines:
            axes.plot(xs, ys, label=label, marker="o" if len(xs) <= MARKED_POINTS else None, markersize=3)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel(xlabel, fontsize=8)
        axes.tick_params(labelsize=7)
        axes.xaxis.get_major_locator().set_params(integer=True, nbins=5)  # epochs and steps
        axes.yaxis.get_major_locator().set_params(nbins=5)  # each tick label costs a text layout
        if len(lines) > 1:
            axes.legend(fontsize=7)


def png_bytes(fig: Figure) -> bytes:
    """``fig`` rendered as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def run_labels(runs: list[Run]) -> list[str]:
    """The runs' legend entries: the start of the task id, the task name when they differ, and
    the first three hparams that differ (``a75aa0dc learning_rate=0.01``)."""
    from torch_lab.runs_report import short_names, value_text

    keys = differing(runs)[:3]
    names = short_names([".".join(key) for key in keys])
    same_name = len({run.task_name for run in runs}) == 1
    return [" ".join([run.task_id.removeprefix("offline-")[:8], *([] if same_name else [run.task_name]),
                      *(f"{name}={value_text(run.hparam(key))}" for name, key in zip(names, keys))])
            for run in runs]


def pick_metrics(available: list[str], asked: list[str] | None) -> list[str]:
    """The metrics to plot: all ``available`` ones, or each asked name (a full name such as
    ``loss/val``, or a name before the stage, ``loss``, for all its stages)."""
    if not asked:
        return available
    chosen: list[str] = []
    for name in asked:
        found = [m for m in available if m == name or m.rpartition("/")[0] == name]
        if not found:
            raise UserError(f"--metric {name}: no run has it; they have {', '.join(available) or 'none'}")
        chosen += [m for m in found if m not in chosen]
    return chosen


def plot_runs(runs: list[Run], out: Path, metrics: list[str] | None = None, steps: bool = False) -> Path:
    """Write ``out``: one panel per metric, a line per run, from history.csv (by epoch) or, with
    ``steps``, from each run's offline session (by step)."""
    curves = {run.task_id: session_curves(run.record.get("offline_session")) if steps
              else read_history(run.path) for run in runs}
    available: list[str] = []
    for run_curves in curves.values():
        available += [name for name in run_curves if name not in available]
    if not available:
        where = "offline sessions" if steps else "history.csv files"
        raise UserError(f"nothing to plot: the runs' {where} hold no metrics")
    chosen = pick_metrics(available, metrics)
    labels = dict(zip((run.task_id for run in runs), run_labels(runs)))
    panels = {name: [(labels[run.task_id], *curves[run.task_id][name]) for run in runs
                     if name in curves[run.task_id]] for name in chosen}
    fig = figure(len(panels))
    draw(fig, panels, "step" if steps else "epoch")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png_bytes(fig))
    return out
