"""``runs plot``: the runs' curves in one PNG, one panel per metric and a line per run, by epoch
(history.csv) or by step (the offline sessions). Drawn with ``torch_lab.figures``."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

from torch_lab.errors import UserError
from torch_lab.figures import draw, figure, history_curves, png_bytes
from torch_lab.runs.records import Run, differing

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


def run_labels(runs: list[Run]) -> list[str]:
    """The runs' legend entries: the start of the task id, the task name when they differ, and
    the first three hparams that differ (``a75aa0dc learning_rate=0.01``)."""
    from torch_lab.runs.report import value_text
    from torch_lab.text import short_names

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
