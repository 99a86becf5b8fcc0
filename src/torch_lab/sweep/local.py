"""A sweep run here: trials asked of the study one slot at a time, each one ordinary ``train`` run
in a child process (its own ClearML task, run directory, checkpoints) that finds its trial in
``TORCH_LAB_SWEEP_TRIAL`` (see ``torch_lab.sweep.trial``)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from torch_lab.children.forwarder import Forwarder
from torch_lab.children.jobs import GROUP_ENV, Job, job_slots, argument_text
from torch_lab.errors import UserError, display_path
from torch_lab.storage.run_dir import artifacts_root
from torch_lab.sweep import seeded
from torch_lab.sweep.seeded import combine, trial_runs
from torch_lab.sweep.space import Sweep, optuna_distributions
from torch_lab.sweep.study import ask, counted, open_study, sweep_name, tell
from torch_lab.sweep.trial import TRIAL_ENV
from torch_lab.text import duration_text

#: Variables of the sweep's own ClearML task that would attach a child to it.
CLEARML_PROCESS_VARS = ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID", "CLEARML_TASK_ID", "TRAINS_TASK_ID")


@dataclass
class TrialJob(Job):
    """A trial's ``train`` child: its Optuna trial, its slot, (in parallel) its log file, and in a
    sweep over seeds the seed runs to come and those done."""

    trial: Any = None
    slot: int = 0
    log: IO[str] | None = None
    #: The trial's runs still to start, this job's first: ``(seed or None, train arguments)``.
    runs: list[tuple[int | None, list[str]]] = field(default_factory=list)
    #: Its finished runs' ``(seed, result)``, the seeds' outcomes of a sweep over seeds.
    outcomes: list[tuple[int | None, dict[str, Any]]] = field(default_factory=list)


def child_args(args: argparse.Namespace, sweep: Sweep, experiment: Any, offline: bool,
               params: dict[str, Any]) -> list[str]:
    """The ``train`` arguments of one trial: the base command plus the trial's values; the
    hparams monitor follows the sweep's metric, so the objective is the run's best value."""
    argv = [str(experiment.hparams_path), *(["--offline"] if offline else [])]
    if args.dev_run is not None:
        argv += ["--dev-run", str(args.dev_run)]
    if args.devices is not None:
        argv += ["--devices", argument_text(args.devices)]
    monitor = experiment.hparams["monitor"]
    follow = [f"monitor.metric={sweep.metric!r}", f"monitor.mode={sweep.direction[:3]!r}"] if (
        monitor["metric"], monitor["mode"]) != (sweep.metric, sweep.direction[:3]) else []
    values = [*args.overrides, *follow, *(f"{key}={value!r}" for key, value in params.items())]
    return argv + [part for value in values for part in ("--set", value)]  # one KEY=VALUE each


def sweep_folder(name: str) -> Path:
    """``<artifacts root>/sweeps/<name>``, created; one that cannot be is a UserError."""
    folder = (artifacts_root() / "sweeps" / name).absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{display_path(blocker)} is not a directory" if blocker else error.strerror
        raise UserError(f"sweep folder {display_path(folder)}: cannot be created ({reason}); set "
                        "TORCH_LAB_ARTIFACTS to a writable directory") from None
    return folder


def done_text(done: int, trials: int) -> str:
    """``3 of 6 trials done``; ``8 trials done, more than the 6 asked: none to run``."""
    return f"{done} of {trials} trials done" if done <= trials else (
        f"{done} trials done, more than the {trials} asked: none to run")


def run_local(args: argparse.Namespace, experiment: Any, sweep: Sweep, trials: int) -> int:
    """Run the sweep's trials here, in order or ``--parallel``; the exit code."""
    from torch_lab.sweep import report as sweep_report
    from torch_lab.tracking import task as tracking

    name = sweep_name(experiment.hparams_path, sweep.path, dev=args.dev_run is not None)
    folder = sweep_folder(name)
    offline = args.offline or tracking.offline_by_environment() or not tracking.is_configured()
    study = open_study(sweep, name, folder, args.parallel, experiment.hparams_path)
    print(f"torch-lab: sweep {name}: {done_text(counted(study), trials)}; study "
          f"{display_path(folder / 'study.journal')}", flush=True)
    print(sweep_report.watch_line(folder), flush=True)
    environ = {k: v for k, v in os.environ.items() if k not in CLEARML_PROCESS_VARS}
    slots = job_slots(args.parallel)
    distributions = optuna_distributions(sweep)
    # Installed from here to the process's end: a signal after the last trial makes the exit 130
    # and no longer interrupts the summary.
    forwarder = Forwarder("trials").install()
    task = sweep_report.start_task(experiment, sweep, name, offline)
    forwarder.install()  # again: Task.init put ClearML's handlers in front
    # The trials' result files: in the sweep folder (a killed sweep leaves nothing in /tmp).
    with tempfile.TemporaryDirectory(prefix=".results-", dir=folder) as scratch, forwarder:
        free, running = list(range(len(slots))), forwarder.running

        def start(trial: Any, slot: int, log: IO[str] | None, runs: list[tuple[int | None, list[str]]],
                  outcomes: list[tuple[int | None, dict[str, Any]]]) -> None:
            """Start the trial's next run, ``runs[0]``, in ``slot``."""
            (seed, argv), number = runs[0], trial.number
            job = TrialJob(str(experiment.hparams_path), Path(scratch) / f"{number}-{seed}.json", slots[slot],
                           trial=trial, slot=slot, log=log, runs=runs, outcomes=outcomes)
            env = {**environ, TRIAL_ENV: json.dumps(seeded.trial_env({
                "name": name, "trial": number, "storage": str(folder / "study.journal"),
                "parent": task.id, "metric": sweep.metric, "pruner": sweep.pruner}, seed, not outcomes))}
            if seed is not None:
                env[GROUP_ENV] = seeded.group(name, number)
                print(f"torch-lab: sweep {name}: trial {number}: seed {seed} "
                      f"({len(outcomes) + 1} of {len(runs) + len(outcomes)})", flush=True)
            job.start(argv, log, env, stdin=subprocess.DEVNULL, process_group=0)
            running.append(job)

        started, spent = time.monotonic(), False
        while True:
            while forwarder.received is None and free and not spent:
                if spent := sweep.budget is not None and time.monotonic() - started >= sweep.budget:
                    print(f"torch-lab: sweep {name}: its budget of {duration_text(sweep.budget)} is spent: no new "
                          f"trials{f', {len(running)} running finish' if running else ''}", flush=True)
                    break
                trial = ask(study, folder, trials, distributions)
                if trial is None:
                    break
                print(f"torch-lab: sweep {name}: trial {trial.number} {trial.params}", flush=True)
                # Parallel outputs would interleave: one log file per trial then.
                log = open(folder / f"trial-{trial.number}.log", "w") if args.parallel else None
                runs = trial_runs(child_args(args, sweep, experiment, offline, trial.params), sweep.seeds)
                start(trial, free.pop(0), log, runs, [])
            if not running:
                break
            while all(job.process.poll() is None for job in running):
                time.sleep(0.2)
            for job in [job for job in running if job.process.poll() is not None]:
                running.remove(job)
                job.outcomes.append((job.runs[0][0], job.result()))
                if job.runs[1:] and job.outcomes[-1][1].get("status") == "completed" and forwarder.received is None:
                    start(job.trial, job.slot, job.log, job.runs[1:], job.outcomes)  # the trial's next seed
                    continue
                free.append(job.slot)
                if job.log:
                    job.log.close()
                tell(study, job.trial, combine(job.outcomes, sweep.seeds, sweep.direction) if sweep.seeds
                     else job.outcomes[0][1])
                print(sweep_report.progress_line(study, name, trials, len(slots), sweep.metric), flush=True)
    interrupted = forwarder.received is not None
    sweep_report.finish(study, sweep, name, folder, task, interrupted=interrupted)
    completed = any(t.user_attrs.get("status") == "completed" for t in study.get_trials(deepcopy=False))
    if not completed and not interrupted:
        print(f"train: sweep {name}: no trial completed", file=sys.stderr, flush=True)
    return forwarder.close(130 if interrupted else 0 if completed else 1)
