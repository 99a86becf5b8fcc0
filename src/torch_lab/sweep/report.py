"""What a sweep leaves behind: its ClearML task (type ``optimizer``, the trials' parent), the
summary table, and in ``<artifacts root>/sweeps/<name>/`` trials.csv, best.json and Optuna's own
pictures (optimization history, parameter importances, parallel coordinates)."""

from __future__ import annotations

import csv
import io
import json
import logging
import statistics
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from torch_lab.tracking import outcome
from torch_lab.tracking import task as tracking
from torch_lab.errors import display_path
from torch_lab.text import mean_std
from torch_lab.figures import pyplot, save_pyplot
from torch_lab.storage.atomic import write_atomic
from torch_lab.sweep.space import Sweep, resolved_sweep
from torch_lab.sweep.parallel import parallel_axes
from torch_lab.sweep.study import counted
from torch_lab.text import duration_text, number_text, short_names, table

log = logging.getLogger(__name__)

PICTURES = ("optimization_history", "param_importances", "parallel_coordinate")
#: Fewer completed trials than this draw no parameter importances (2 trials give e.g. 0.99 / 0.01).
MIN_IMPORTANCE_TRIALS = 5


def start_task(experiment: Any, sweep: Sweep, name: str, offline: bool) -> Any:
    """The sweep's own ClearML task, holding the sweep script and its validated space."""
    tracking.configure(offline)
    if not offline:
        tracking.check_server()
    # No framework hooks: ClearML would also capture the matplotlib figures as untitled plots.
    block = {**experiment.hparams["task"], "task_name": name, "task_type": "optimizer",
             "auto_connect_frameworks": False}
    block.pop("continue_last_task", None)
    task = tracking.start_task(block, name, "optimizer", ["sweep", f"sweep:{name}"], offline)
    task.connect_configuration(resolved_sweep(sweep.path, experiment.hparams, experiment.hparams_path),
                               name="sweep")
    tracking.store_sources(task, [sweep.path])
    print(f"torch-lab: sweep task {task.id} started", flush=True)
    return task


def seed_values(trial: Any) -> list[float]:
    """The best values of a trial's completed seed runs (a sweep over seeds), in seed order."""
    return [run["value"] for run in trial.user_attrs.get("seeds") or [] if run["status"] == "completed"
            and isinstance(run["value"], (int, float))]


def _seed_columns(trial: Any) -> dict[str, Any]:
    """trials.csv's ``mean``, ``std`` (sample; none for one seed) and ``n`` of a trial over seeds."""
    values = seed_values(trial)
    mean, std = mean_std(values) if values else (None, None)
    return {"mean": mean, "std": std, "n": len(values)}


def rows(study: Any, sweep: Sweep) -> list[dict[str, Any]]:
    """One plain dict per trial (number order): the columns of trials.csv (a sweep over seeds
    adds ``mean``, ``std`` and ``n`` of its seeds' best values)."""
    keys = list(sweep.space)
    best = _best(study)
    result = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        finished = trial.datetime_complete and trial.datetime_start
        status = attrs.get("status") or trial.state.name.lower()
        result.append({
            "trial": trial.number, "task_id": attrs.get("task_id"), "status": status,
            **{key: trial.params.get(key) for key in keys},
            "objective": trial.value if status in ("completed", "pruned") else None,
            **(_seed_columns(trial) if sweep.seeds else {}),
            "duration_s": round((trial.datetime_complete - trial.datetime_start).total_seconds(), 1)
            if finished else None,
            "best": best is not None and trial.number == best.number,
            "run_dir": attrs.get("run_dir"), "checkpoint": attrs.get("checkpoint"), "error": attrs.get("error"),
        })
    return result


def cells(rows_: list[dict[str, Any]], sweep: Sweep) -> list[list[str]]:
    """The summary table as rows of cells, the header first (best marked ``*``); over seeds, the
    objective is ``mean ± std`` of the seeds."""
    short = dict(zip(sweep.space, short_names(list(sweep.space))))
    metric = (sweep.metric or "objective") + (f" (mean ± std, {len(sweep.seeds)} seeds)" if sweep.seeds else "")
    lines = [["trial", "task id", "status", "values", metric, "duration", "best"]]
    for row in rows_:
        values = " ".join(f"{short[key]}={number_text(row[key])}" for key in sweep.space if row[key] is not None)
        objective = row["objective"]
        shown = f"{objective:.4g}" if objective is not None else "-"
        if row.get("n"):
            shown = f"{number_text(row['mean'])} ± {number_text(row['std'])}"
        lines.append([str(row["trial"]), row["task_id"] or "-", row["status"], values or "-", shown,
                      duration_text(row["duration_s"]),
                      "*" if row["best"] else ""])
    return lines


def _best(study: Any) -> Any:
    completed = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("status") == "completed"]
    if not completed:
        return None
    pick = min if study.direction.name == "MINIMIZE" else max
    return pick(completed, key=lambda t: t.value)


def write_outputs(study: Any, sweep: Sweep, folder: Path) -> list[Path]:
    """trials.csv, best.json (when a trial completed) and the pictures; returns the pictures."""
    rows_ = rows(study, sweep)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows_[0]) if rows_ else ["trial"])
    writer.writeheader()
    writer.writerows(rows_)
    write_atomic(folder / "trials.csv", buffer.getvalue())
    best = _best(study)
    if best is not None:
        attrs = best.user_attrs
        write_atomic(folder / "best.json", json.dumps({
            "trial": best.number, "values": best.params, "objective": best.value, "metric": sweep.metric,
            "direction": sweep.direction, "task_id": attrs.get("task_id"),
            "checkpoint": attrs.get("checkpoint"), "run_dir": attrs.get("run_dir"),
            **({**_seed_columns(best), "seeds": attrs.get("seeds")} if sweep.seeds else {})}, indent=2) + "\n")
    return pictures(study, folder, sweep.metric or "objective")


def pictures(study: Any, folder: Path, metric: str) -> list[Path]:
    """Optuna's matplotlib plots as PNGs (Agg, no display); parameter importances by
    ``PedAnovaImportanceEvaluator`` (no scikit-learn needed), from ``MIN_IMPORTANCE_TRIALS``
    completed trials on (else one line says why there are none). A plot Optuna cannot draw is
    skipped with a log line."""
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as plots

    pyplot()  # Agg, before Optuna imports pyplot

    drawers = {
        "optimization_history": lambda: plots.plot_optimization_history(study, target_name=metric),
        "param_importances": lambda: plots.plot_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(), target_name=metric),
        "parallel_coordinate": lambda: parallel_axes(study, metric),  # torch-lab's own: readable
    }
    written: list[Path] = []
    completed = sum(t.user_attrs.get("status") == "completed" for t in study.get_trials(deepcopy=False))
    if not completed:
        return written  # nothing to draw
    for name in PICTURES:
        path = folder / f"{name}.png"
        if name == "param_importances" and completed < MIN_IMPORTANCE_TRIALS:
            print(f"torch-lab: no {path.name}: param importances need at least {MIN_IMPORTANCE_TRIALS} "
                  f"completed trials; have {completed}", flush=True)
            path.unlink(missing_ok=True)
            continue
        try:
            with warnings.catch_warnings():  # a picture's warnings would end the sweep's output
                warnings.simplefilter("ignore")
                axes = drawers[name]()
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.tight_layout()
            written.append(save_pyplot(figure, path, dpi=100))
        except Exception as error:  # e.g. too few completed trials for that plot
            log.info("no %s picture: %s", name, error)
            path.unlink(missing_ok=True)
    return written


def progress_line(study: Any, name: str, trials: int, slots: int, metric: str, now: datetime | None = None) -> str:
    """What a sweep prints after each trial: ``3 of 6 trials done, 1 running, best so far
    loss/val=0.62 (trial 1), about 0:02:10 left``. The end is estimated from the mean duration of
    the finished trials (all of the study's): what the running trials still need and the trials
    not yet started, shared among ``slots``."""
    from optuna.trial import TrialState

    done, everything = counted(study), study.get_trials(deepcopy=False)
    running = [t for t in everything if t.state == TrialState.RUNNING]
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in everything
                 if t.state.is_finished() and t.datetime_start and t.datetime_complete]
    best = _best(study)
    parts = [f"{done} of {trials} trials done", f"{len(running)} running",
             f"best so far {metric}={best.value:.4g} (trial {best.number})" if best else "no best yet"]
    if durations and done < trials:
        mean, now = statistics.fmean(durations), now or datetime.now()  # Optuna's times are local
        ahead = sum(max(mean - (now - t.datetime_start).total_seconds(), 0.0) for t in running if t.datetime_start)
        left = (ahead + max(trials - done - len(running), 0) * mean) / max(slots, 1)
        parts.append(f"about {duration_text(left)} left")
    return f"torch-lab: sweep {name}: " + ", ".join(parts)


def watch_line(folder: Path) -> str:
    """How to see the study in Optuna Dashboard (live while the sweep runs)."""
    return f"torch-lab: watch it: optuna-dashboard {display_path(folder / 'study.journal')}"


def finish(study: Any, sweep: Sweep, name: str, folder: Path, task: Any, interrupted: bool) -> None:
    """Print the summary, write the sweep folder's files, report them on the sweep task, close it."""
    grid = cells(rows(study, sweep), sweep)
    print(table(grid), flush=True)
    images = write_outputs(study, sweep, folder)
    reporter = task.get_logger()
    reporter.report_table("trials", "summary", iteration=0, table_plot=grid)
    for image in images:
        reporter.report_image("sweep", image.stem, iteration=0, local_path=str(image))
    for path in (folder / "trials.csv", folder / "best.json"):
        if path.is_file():
            task.upload_artifact(path.name, artifact_object=path, wait_on_upload=True)
    best = _best(study)
    if best is not None:
        reporter.report_single_value(f"best {sweep.metric}", best.value)
        over = f" (mean of {len(seed_values(best))} seeds)" if sweep.seeds else ""
        print(f"torch-lab: sweep {name}: best trial {best.number} {sweep.metric}={best.value:.4g}{over} "
              f"{best.params} (task {best.user_attrs.get('task_id')})", flush=True)
    print(f"torch-lab: sweep folder {display_path(folder)}", flush=True)
    print(watch_line(folder), flush=True)
    outcome.finish_task(task, "interrupted" if interrupted else "completed", None)
