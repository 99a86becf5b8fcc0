"""``train HPARAMS.py --sweep SWEEP.py``: an Optuna study over ``--set`` keys, each trial one
ordinary ``train`` run in a child process (its own ClearML task, run directory, checkpoints).

The study lives in ``<artifacts root>/sweeps/<name>/study.journal`` (Optuna's journal file, safe
for several processes), so the same command continues it to N trials in all. Trials are asked
for here, run by ``torch_lab.multirun.Job`` children that find their trial in
``TORCH_LAB_SWEEP_TRIAL`` (see ``torch_lab.sweep_trial``), and told their outcome: the run's best
monitored value, pruned, or failed. Interrupted trials (Ctrl-C, a killed sweep) are recorded as
failed with status ``interrupted`` and not counted, so the next start replaces them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from torch_lab.errors import UserError, display_path
from torch_lab.multirun import Forwarder, Job, job_slots
from torch_lab.run_dir import artifacts_root, find_run_dir
from torch_lab.sweep_space import Sweep, optuna_distributions, read_sweep
from torch_lab.sweep_trial import TRIAL_ENV, open_storage, optuna_pruner, trial_run

#: Statuses that count as a finished trial (interrupted ones are run again).
COUNTED = ("completed", "pruned", "failed")
#: Variables of the sweep's own ClearML task that would attach a child to it.
CLEARML_PROCESS_VARS = ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID", "CLEARML_TASK_ID", "TRAINS_TASK_ID")


@dataclass
class TrialJob(Job):
    """A trial's ``train`` child: its Optuna trial, its slot and (in parallel) its log file."""

    trial: Any = None
    slot: int = 0
    log: IO[str] | None = None


def sweep_name(hparams_path: Path, sweep_path: Path) -> str:
    """``<experiment folder>-<hparams stem>-<sweep stem>``, e.g. ``01_regression-hparams-sweep``."""
    return f"{hparams_path.parent.name}-{hparams_path.stem}-{Path(sweep_path).stem}"


def prepare(args: argparse.Namespace) -> tuple[Any, Sweep, int]:
    """The base experiment (statically checked), the validated sweep and the number of trials;
    every mistake is a UserError before anything runs, the sweep's before ``__main__.py`` is
    imported (torch, ...)."""
    from torch_lab.experiment import load_experiment
    from torch_lab.precheck import Precheck

    static = Precheck("train_config", None, ("init", "fit"))
    read: list[tuple[Sweep, int]] = []

    def checks(hparams_path: Path, main_path: Path, hparams: dict[str, Any]) -> None:
        static(hparams_path, main_path, hparams)
        read.append(check_sweep(args, hparams, hparams_path))

    experiment = load_experiment(args.hparams_path, args.overrides, checks)
    return experiment, *read[0]


def check_sweep(args: argparse.Namespace, hparams: dict[str, Any], hparams_path: Path) -> tuple[Sweep, int]:
    """Read ``--sweep`` against the base hparams; the number of trials to reach."""
    sweep = read_sweep(args.sweep, hparams, hparams_path)
    trials = args.trials or sweep.trials
    if trials is None:
        raise UserError(f"{display_path(sweep.path)}: no 'trials'; give it there or with --trials N")
    try:
        optuna_pruner(sweep.pruner)
    except (TypeError, ValueError) as error:
        raise UserError(f"{display_path(sweep.path)}: pruner {sweep.pruner}: {error}") from None
    if sweep.sampler == "grid":
        size = 1
        for values in sweep.grid().values():
            size *= len(values)
        if trials > size:
            print(f"torch-lab: the grid has {size} points; running {size} trials, not {trials}", flush=True)
            trials = size
    return sweep, trials


def make_sampler(sweep: Sweep, offset: int, parallel: bool) -> Any:
    """The sweep's Optuna sampler; ``offset`` (trials already in the study) shifts its seed."""
    import optuna

    seed = None if sweep.seed is None else sweep.seed + offset  # a continued study draws anew
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sweep.sampler == "grid":
        return optuna.samplers.GridSampler(sweep.grid(), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)


def open_study(sweep: Sweep, name: str, folder: Path, parallel: bool) -> Any:
    """Create or load the study; trials left running by a sweep that died are recorded as
    interrupted (failed, not counted)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(str(folder / "study.journal"))
    names = {summary.study_name: summary for summary in optuna.get_all_study_summaries(storage, False)}
    if name in names and names[name].direction.name.lower() != sweep.direction:
        raise UserError(f"{display_path(sweep.path)}: direction {sweep.direction}, but the study in "
                        f"{display_path(folder)} is to {names[name].direction.name.lower()}; "
                        "remove that folder to start afresh")
    offset = names[name].n_trials if name in names else 0
    study = optuna.create_study(storage=storage, study_name=name, direction=sweep.direction,
                                sampler=make_sampler(sweep, offset, parallel),
                                pruner=optuna_pruner(sweep.pruner), load_if_exists=True)
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if not _alive(frozen.user_attrs.get("sweep_pid")):
            trial = optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(
                storage.get_study_id_from_name(name), frozen.number))
            trial.set_user_attr("status", "interrupted")
            trial.set_user_attr("error", "the sweep running it was killed")
            study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
    return study


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def counted(study: Any) -> int:
    """Trials that finished (completed, pruned, failed): the ones N counts."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state.is_finished() and t.user_attrs.get("status", "failed") in COUNTED)


def child_args(args: argparse.Namespace, sweep: Sweep, experiment: Any, offline: bool,
               params: dict[str, Any]) -> list[str]:
    """The ``train`` arguments of one trial: the base command plus the trial's values; the
    hparams monitor follows the sweep's metric, so the objective is the run's best value."""
    argv = [str(experiment.hparams_path), *(["--offline"] if offline else [])]
    if args.dev_run is not None:
        argv += ["--dev-run", str(args.dev_run)]
    if args.devices is not None:
        devices = args.devices
        argv += ["--devices", ",".join(map(str, devices)) if isinstance(devices, list) else str(devices)]
    monitor = experiment.hparams["monitor"]
    follow = [f"monitor.metric={sweep.metric!r}", f"monitor.mode={sweep.direction[:3]!r}"] if (
        monitor["metric"], monitor["mode"]) != (sweep.metric, sweep.direction[:3]) else []
    values = [*args.overrides, *follow, *(f"{key}={value!r}" for key, value in params.items())]
    return argv + [part for value in values for part in ("--set", value)]  # one KEY=VALUE each


def run_sweep(args: argparse.Namespace) -> int:
    """The ``train --sweep`` command; returns the exit code (0, 1 no trial completed, 2, 130)."""
    try:
        experiment, sweep, trials = prepare(args)
        if args.queue:
            from torch_lab.sweep_queue import run_on_queue

            return run_on_queue(args, experiment, sweep, trials)
        return _run_local(args, experiment, sweep, trials)
    except KeyboardInterrupt:  # before any trial started
        print("train: interrupted", file=sys.stderr)
        return 130
    except UserError as error:
        if args.debug:
            raise
        print(f"train: error: {error}", file=sys.stderr)
        return 2


def _run_local(args: argparse.Namespace, experiment: Any, sweep: Sweep, trials: int) -> int:
    from torch_lab import sweep_report, tracking

    name = sweep_name(experiment.hparams_path, sweep.path)
    folder = (artifacts_root() / "sweeps" / name).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    offline = args.offline or not tracking.is_configured()
    study = open_study(sweep, name, folder, args.parallel)
    done = counted(study)
    print(f"torch-lab: sweep {name}: {done} of {trials} trials done; study "
          f"{display_path(folder / 'study.journal')}", flush=True)
    task = sweep_report.start_task(experiment, sweep, name, offline)
    environ = {k: v for k, v in os.environ.items() if k not in CLEARML_PROCESS_VARS}
    slots = job_slots(args.parallel)
    distributions = optuna_distributions(sweep)
    forwarder = Forwarder("trials")
    with tempfile.TemporaryDirectory(prefix="torch-lab-sweep-") as scratch, forwarder:
        free, running = list(range(len(slots))), forwarder.running
        while True:
            while forwarder.received is None and free and done + len(running) < trials:
                trial = study.ask(distributions)
                trial.set_user_attr("sweep_pid", os.getpid())
                slot = free.pop(0)
                # Parallel outputs would interleave: one log file per trial then.
                log = open(folder / f"trial-{trial.number}.log", "w") if args.parallel else None
                job = TrialJob(str(experiment.hparams_path), Path(scratch) / f"{trial.number}.json",
                               slots[slot], trial=trial, slot=slot, log=log)
                env = {**environ, TRIAL_ENV: json.dumps({
                    "name": name, "trial": trial.number, "storage": str(folder / "study.journal"),
                    "parent": task.id, "sweep_pid": os.getpid(), "metric": sweep.metric,
                    "pruner": sweep.pruner})}
                print(f"torch-lab: sweep {name}: trial {trial.number} {trial.params}", flush=True)
                job.start(child_args(args, sweep, experiment, offline, trial.params), log, env,
                          stdin=subprocess.DEVNULL, process_group=0)
                running.append(job)
            if not running:
                break
            while all(job.process.poll() is None for job in running):
                time.sleep(0.2)
            for job in [job for job in running if job.process.poll() is not None]:
                running.remove(job)
                free.append(job.slot)
                if job.log:
                    job.log.close()
                done += tell(study, job.trial, job.result())
    sweep_report.finish(study, sweep, name, folder, task, interrupted=forwarder.received is not None)
    if forwarder.received is not None:
        return 130
    return 0 if any(t.user_attrs.get("status") == "completed" for t in study.get_trials(deepcopy=False)) else 1


def tell(study: Any, trial: Any, result: dict[str, Any]) -> int:
    """Record a trial's outcome in the study (before ``tell``, its attributes: task id, status,
    run directory, best checkpoint, error); returns 1 when it counts towards N."""
    from optuna.trial import TrialState

    status = result.get("status", "failed")
    best = result.get("best") or {}
    value = best.get("value")
    if status == "completed" and not isinstance(value, (int, float)):
        status, result = "failed", {**result, "error": f"the run logged no {best.get('monitor') or 'metric'}"}
    task_id = result.get("task_id")
    run_dir = find_run_dir(task_id) if task_id else trial_run(study.study_name, trial.number)
    if run_dir and not task_id:
        task_id = json.loads((run_dir / "run.json").read_text())["task_id"]
    for key, item in (("task_id", task_id), ("status", status), ("error", result.get("error")),
                      ("run_dir", str(run_dir) if run_dir else None), ("checkpoint", best.get("path"))):
        trial.set_user_attr(key, item)
    if status == "completed":
        study.tell(trial, float(value))
    else:
        study.tell(trial, state=TrialState.PRUNED if status == "pruned" else TrialState.FAIL)
    reason = f": {result.get('error')}" if status == "failed" else ""
    print(f"torch-lab: trial {trial.number} {status}{reason}", flush=True)
    return 1 if status in COUNTED else 0
