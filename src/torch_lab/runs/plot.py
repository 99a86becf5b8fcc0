"""``runs plot``: the runs' curves in one picture, one panel per metric and a line per run (or,
with ``--group``, per group of runs over seeds: their mean in a min-max band), by epoch
(history.csv) or by step (the offline sessions), with one legend for the figure beside the
panels. Drawn with ``torch_lab.figures``; a file it cannot use is one line, exit 2."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from torch_lab.errors import UserError
from torch_lab.figures import Line, draw, figure, figure_bytes, formats, history_curves
from torch_lab.runs.data import history_rows
from torch_lab.runs.groups import Group, group_labels, spread
from torch_lab.runs.records import Run, differing
from torch_lab.storage.atomic import atomic_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Curves = dict[str, tuple[list[float], list[float]]]
#: Inches of figure width per character of the longest legend label.
LEGEND_INCH_PER_CHAR = 0.055


def read_history(path: Path) -> Curves:
    """A run's history.csv as curves by epoch (none when it has no history yet)."""
    try:
        return history_curves(history_rows(path))
    except ValueError as error:
        raise UserError(str(error)) from None


def session_curves(zip_path: str | None) -> Curves:
    """Every scalar of an offline ClearML session (its folder, else its zip) as (steps, values),
    named as torch-lab logged it (``loss/val``; ``lr-SGD``). A torn last line (a kill mid-write)
    is left out; any other line of the wrong shape is a ``UserError``."""
    if not zip_path:
        return {}
    folder, where = Path(zip_path).with_suffix(""), f"{zip_path}: metrics.jsonl"
    try:
        if (folder / "metrics.jsonl").is_file():
            text, where = (folder / "metrics.jsonl").read_text(), str(folder / "metrics.jsonl")
        elif Path(zip_path).is_file():
            with zipfile.ZipFile(zip_path) as zipped:
                text = zipped.read("metrics.jsonl").decode() if "metrics.jsonl" in zipped.namelist() else ""
        else:
            return {}
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise UserError(f"{zip_path}: unreadable ({error})") from None
    curves: Curves = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        try:
            events = json.loads(line) if line.strip() else []
            for event in events if isinstance(events, list) else [None]:
                _add_event(curves, event)
        except (ValueError, TypeError, KeyError, AttributeError):
            if number == len(lines) and not text.endswith("\n"):
                continue  # a torn last line
            raise UserError(f"{where}: line {number} is not a list of ClearML events") from None
    return curves


def _add_event(curves: Curves, event: Any) -> None:
    if event.get("type") == "training_stats_scalar":
        title, series = str(event["metric"]), str(event["variant"])
        steps, values = curves.setdefault(title if title == series else f"{title}/{series}", ([], []))
        steps.append(float(event["iter"]))
        values.append(float(event["value"]))


def run_labels(runs: list[Run]) -> list[str]:
    """The runs' legend entries: the start of the task id, the task name when they differ, and
    the first three hparams that differ at 4 significant digits (``a75aa0dc lr=0.01``)."""
    from torch_lab.runs.report import short_ids, short_value
    from torch_lab.text import cut, printable, short_names

    keys = differing(runs)[:3]
    names = short_names([".".join(key) for key in keys])
    same_name = len({run.task_name for run in runs}) == 1
    return [printable(" ".join([short, *([] if same_name else [cut(run.task_name, 24)]),
                                *(f"{name}={cut(short_value(run.hparam(key)), 16)}" for name, key in zip(names, keys))]))
            for run, short in zip(runs, short_ids([run.task_id for run in runs]))]


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


def run_curves(run: Run, steps: bool = False) -> Curves:
    """A run's curves: from history.csv (by epoch) or, with ``steps``, its offline session."""
    return session_curves(run.record.get("offline_session")) if steps else read_history(run.path)


def metrics_of(curves: list[Curves], asked: list[str] | None, steps: bool) -> list[str]:
    """The metrics to plot of these curves (see ``pick_metrics``); a ``UserError`` when none has any."""
    available: list[str] = []
    for one in curves:
        available += [name for name in one if name not in available]
    if not available:
        where = "offline sessions" if steps else "history.csv files"
        raise UserError(f"nothing to plot: the runs' {where} hold no metrics")
    return pick_metrics(available, asked)


def runs_figure(runs: list[Run], metrics: list[str] | None = None, steps: bool = False) -> Figure:
    """One panel per metric, a line per run (a colour each), from history.csv (by epoch) or, with
    ``steps``, from each run's offline session (by step); one legend, right of the panels."""
    curves = {run.task_id: run_curves(run, steps) for run in runs}
    chosen = metrics_of(list(curves.values()), metrics, steps)
    labels = dict(zip((run.task_id for run in runs), run_labels(runs)))
    panels = {name: [(labels[run.task_id], *curves[run.task_id][name]) for run in runs
                     if name in curves[run.task_id]] for name in chosen}
    return _figure(panels, list(labels.values()), steps)


def groups_figure(groups: list[Group], metrics: list[str] | None = None, steps: bool = False) -> Figure:
    """One panel per metric, a line per group: the mean over its runs that have each epoch (or
    step), in a band from their min to their max; one legend, labelled by what differs."""
    curves = [[run_curves(run, steps) for run in group.runs] for group in groups]
    chosen = metrics_of([one for group in curves for one in group], metrics, steps)
    labels = group_labels(groups)
    panels: dict[str, list[Line]] = {name: [] for name in chosen}
    bands: dict[str, dict[str, tuple[list[float], list[float]]]] = {name: {} for name in chosen}
    for name in chosen:
        for label, group in zip(labels, curves):
            xs, means, lows, highs = spread([one[name] for one in group if name in one])
            if xs:
                panels[name].append((label, xs, means))
                bands[name][label] = (lows, highs)
    return _figure(panels, labels, steps, bands)


def _figure(panels: dict[str, list[Line]], labels: list[str], steps: bool,
            bands: dict[str, dict[str, tuple[list[float], list[float]]]] | None = None) -> Figure:
    fig = figure(len(panels), extra_width=0.6 + LEGEND_INCH_PER_CHAR * max(map(len, labels)))
    draw(fig, panels, "step" if steps else "epoch", figure_legend=True, bands=bands)
    return fig


def plot_runs(runs: list[Run], out: Path, metrics: list[str] | None = None, steps: bool = False) -> Path:
    """Write ``out`` in the format its suffix names (see ``runs_figure``), making its folder."""
    return write_figure(out, lambda: runs_figure(runs, metrics, steps))


def plot_groups(groups: list[Group], out: Path, metrics: list[str] | None = None, steps: bool = False) -> Path:
    """Write ``out`` (see ``groups_figure``), as ``plot_runs`` does."""
    return write_figure(out, lambda: groups_figure(groups, metrics, steps))


def write_figure(out: Path, make: Callable[[], Figure]) -> Path:
    """Write the figure ``make`` draws to ``out``, in the format its suffix names, making its folder."""
    kind = out.suffix.lower().lstrip(".")
    if out.is_dir():
        raise UserError(f"--out {out}: is a directory; give a file, e.g. {out / 'runs.png'}")
    fig = make()
    if kind not in formats(fig):
        raise UserError(f"--out {out}: matplotlib cannot write {kind or 'a file without a suffix'}; "
                        f"give one of .{', .'.join(formats(fig))}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out) as handle:
            handle.write(figure_bytes(fig, kind))
    except OSError as error:
        raise UserError(f"--out {out}: cannot write it ({error.strerror or error})") from None
    return out
