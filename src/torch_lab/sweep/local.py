"""A sweep run here: trials asked of the study one slot at a time, each one ordinary ``train`` run
in a child process (its own ClearML task, run directory, checkpoints) that finds its trial in
``TORCH_LAB_SWEEP_TRIAL`` (see ``torch_lab.sweep.trial``)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from torch_lab.children.forwarder import Forwarder
from torch_lab.children.jobs import Job, job_slots
from torch_lab.errors import display_path
from torch_lab.storage.run_dir import artifacts_root
from torch_lab.sweep.space import Sweep, optuna_distributions
from torch_lab.sweep.study import counted, open_study, sweep_name, tell
from torch_lab.sweep.trial import TRIAL_ENV

#: Variables of the sweep's own ClearML task that would attach a child to it.
CLEARML_PROCESS_VARS = ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID", "CLEARML_TASK_ID", "TRAINS_TASK_ID")


@dataclass
class TrialJob(Job):
    """A trial's ``train`` child: its Optuna trial, its slot and (in parallel) its log file."""

    trial: Any = None
    slot: int = 0
    log: IO[str] | None = None


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


def run_local(args: argparse.Namespace, experiment: Any, sweep: Sweep, trials: int) -> int:
    """Run the sweep's trials here, in order or ``--parallel``; the exit code."""
    from torch_lab.sweep import report as sweep_report
    from torch_lab.tracking import task as tracking

    name = sweep_name(experiment.hparams_path, sweep.path)
    folder = (artifacts_root() / "sweeps" / name).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    offline = args.offline or tracking.offline_by_environment() or not tracking.is_configured()
    study = open_study(sweep, name, folder, args.parallel)
    done = counted(study)
    print(f"torch-lab: sweep {name}: {done} of {trials} trials done; study "
          f"{display_path(folder / 'study.journal')}", flush=True)
    print(sweep_report.watch_line(folder), flush=True)
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
