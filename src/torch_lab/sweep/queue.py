"""``train HPARAMS.py --sweep SWEEP.py --queue NAME``: the same sweep driven by ClearML's own
``HyperParameterOptimizer`` with its Optuna strategy, trials cloned from a base task and enqueued
for ClearML agents (online only).

The base task is made by a ``train HPARAMS.py --queue NAME`` child told (``TORCH_LAB_TEMPLATE_FILE``)
to leave its task as a draft instead of enqueueing it; ClearML's optimizer clones it once per trial
with the trial's values in the task's ``hparams`` section (see ``sweep_space.clearml_ranges``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from torch_lab.errors import UserError, display_path
from torch_lab.tracking.logger import plot_and_series
from torch_lab.sweep.space import Sweep, clearml_ranges

TEMPLATE_ENV = "TORCH_LAB_TEMPLATE_FILE"
POLL_MINUTES = 0.5


def objective(sweep: Sweep) -> tuple[str, str, str]:
    """ClearML's objective of the sweep metric: plot, series, and ``min_global`` /
    ``max_global`` (the best value the task reported, as the local sweep's run best)."""
    title, series = plot_and_series(sweep.metric)
    return title, series, f"{sweep.direction[:3]}_global"


def build_optimizer(sweep: Sweep, hparams: dict[str, Any], trials: int, base_task_id: str, queue: str,
                    concurrency: int) -> Any:
    """A ``HyperParameterOptimizer`` over ``base_task_id`` with ``OptimizerOptuna``, the sweep's
    sampler and pruner, reporting to the current task (the controller)."""
    from clearml.automation import HyperParameterOptimizer
    from clearml.automation.optuna import OptimizerOptuna

    from torch_lab.sweep.study import make_sampler
    from torch_lab.sweep.trial import optuna_pruner

    title, series, sign = objective(sweep)
    return HyperParameterOptimizer(
        base_task_id=base_task_id, hyper_parameters=clearml_ranges(sweep, hparams),
        objective_metric_title=title, objective_metric_series=series, objective_metric_sign=sign,
        optimizer_class=OptimizerOptuna, execution_queue=queue,
        max_number_of_concurrent_tasks=concurrency, auto_connect_task=False,
        total_max_jobs=trials, max_iteration_per_job=None, pool_period_min=POLL_MINUTES,
        optuna_sampler=make_sampler(sweep, 0, concurrency > 1), optuna_pruner=optuna_pruner(sweep.pruner))


def base_task(args: argparse.Namespace, experiment: Any, sweep: Sweep) -> str:
    """Create the base task (a draft) with a ``train`` child; returns its id."""
    from torch_lab.sweep.local import child_args

    with tempfile.TemporaryDirectory(prefix="torch-lab-template-") as folder:
        record = Path(folder) / "template.json"
        argv = [*child_args(args, sweep, experiment, False, {}), "--queue", args.queue]
        subprocess.run([sys.executable, sys.argv[0], *argv], env={**os.environ, TEMPLATE_ENV: str(record)},
                       stdin=subprocess.DEVNULL, check=False)
        if not record.is_file():
            raise UserError(f"--queue {args.queue}: creating the sweep's base task failed (see above)")
        return json.loads(record.read_text())["task_id"]


def run_on_queue(args: argparse.Namespace, experiment: Any, sweep: Sweep, trials: int) -> int:
    """Run the sweep through ClearML agents; print the best trials at the end."""
    from torch_lab.tracking import outcome
    from torch_lab.tracking import task as tracking
    from torch_lab.sweep.report import start_task
    from torch_lab.sweep.study import sweep_name

    if sweep.seeds:
        raise UserError(f"{display_path(sweep.path)}: seeds: a sweep over seeds runs here only, not with "
                        f"--queue (ClearML's optimizer runs one task per trial)")
    if args.offline or tracking.offline_by_environment() or not tracking.is_configured():
        raise UserError(f"--queue {args.queue}: a ClearML agent needs a ClearML server, and this run is "
                        "offline (--offline, or no ClearML configuration)")
    name = sweep_name(experiment.hparams_path, sweep.path)
    clearml_ranges(sweep, experiment.hparams)  # refuse what ClearML cannot sweep, before any task
    template = base_task(args, experiment, sweep)
    task = start_task(experiment, sweep, name, offline=False)
    optimizer = build_optimizer(sweep, experiment.hparams, trials, template, args.queue,
                                trials if args.parallel else 1)
    print(f"torch-lab: sweep {name}: task {task.id} drives {trials} trials of base task {template} "
          f"on queue '{args.queue}'", flush=True)
    optimizer.start()
    try:
        optimizer.wait()
    finally:
        optimizer.stop()
    for rank, trial in enumerate(optimizer.get_top_experiments(top_k=min(trials, 5))):
        print(f"torch-lab: #{rank + 1} task {trial.id} {trial.get_parameters_as_dict().get('hparams')}",
              flush=True)
    outcome.finish_task(task, "completed", None)
    return 0
