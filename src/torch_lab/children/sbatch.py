"""``train ... --slurm``: the runs of a ``train`` command as one SLURM batch job, submitted with
``sbatch`` instead of run here. One run is one job; several files or ``--seeds`` are one job
array (``--array=0-K``), each array task one run, as a local child would run it; a sweep is one
job running the sweep (its trials need the parent's Optuna study and its ClearML task).

The job script is kept in ``<artifacts root>/slurm/<name>-<time>/job.sh`` with the job's output
beside it, for the user to read and to submit again. It runs ``train`` under ``srun`` with the
requeue settings of docs/how-to/cluster.md: ``--signal=TERM@120`` (torch-lab saves and requeues
the job before its time limit), ``--requeue`` (pre-emption requeues it; the next start resumes
the run, see ``torch_lab.launch.slurm``) and ``--open-mode=append`` (each start's output kept).

Standard library only; nothing is submitted or left behind when sbatch refuses the job.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from torch_lab.children.jobs import GROUP_ENV
from torch_lab.errors import UserError, display_path
from torch_lab.storage.run_dir import ARTIFACTS_ENV, artifacts_root

#: ``train``'s options (dest, flag) that only ``--slurm`` uses.
SLURM_OPTIONS = (("nodes", "--nodes"), ("gpus_per_node", "--gpus-per-node"), ("time", "--time"),
                 ("partition", "--partition"), ("account", "--account"), ("sbatch_args", "--sbatch-arg"),
                 ("max_parallel", "--max-parallel"))
#: What every job gets: notice 120 s before its time limit, requeued on pre-emption, output appended.
REQUEUE_SETTINGS = ("--signal=TERM@120", "--requeue", "--open-mode=append")
SBATCH_TIMEOUT_S = 60


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 (one line) for a job's resource given without ``--slurm``, and for ``--slurm``
    with ``--queue`` (a ClearML agent and a SLURM job are two ways to run it elsewhere)."""
    if not args.slurm:
        given = [flag for dest, flag in SLURM_OPTIONS if getattr(args, dest) not in (None, [])]
        if given:
            parser.error(f"{given[0]} is a SLURM job's setting: add --slurm to submit the run as a job, "
                         "or leave it out")
    elif args.queue:
        parser.error(f"--queue {args.queue} with --slurm: run it through a ClearML agent (--queue) or "
                     "as a SLURM job (--slurm), not both")


def sbatch_path() -> str:
    """The ``sbatch`` on PATH; a UserError (before anything is checked or written) when none is."""
    found = shutil.which("sbatch")
    if found is None:
        raise UserError("--slurm: no sbatch on PATH (SLURM's client); run train on a machine that "
                        "submits to the cluster (a login node), or without --slurm")
    return found


def job_name(paths: list[str]) -> str:
    """``<folder>-<stem>`` of the first hparams file (``01_toy-hparams``)."""
    first = Path(paths[0]).absolute()
    return f"{first.parent.name}-{first.stem}"


def train_command() -> list[str]:
    """This ``train`` script, as the job's ``srun`` runs it (absolute: the job may not have the
    venv on its PATH)."""
    script = os.path.abspath(sys.argv[0])
    return [sys.executable, script] if script.endswith(".py") else [script]


def resource_arguments(args: argparse.Namespace) -> list[str]:
    """The ``train`` arguments a job's resources imply: Lightning's ``num_nodes`` for several
    nodes, ``--devices G`` for G GPUs per node (unless ``--devices`` was given)."""
    extra = ["--set", f"trainer.init.num_nodes={args.nodes}"] if args.nodes and args.nodes > 1 else []
    if args.gpus_per_node and args.devices is None:
        extra += ["--devices", str(args.gpus_per_node)]
    return extra


def directives(args: argparse.Namespace, name: str, folder: Path, tasks: int) -> list[str]:
    """The ``#SBATCH`` lines: name, resources, requeue settings, output, array, then the
    ``--sbatch-arg`` options (last: sbatch takes the last of an option given twice)."""
    per_node = args.gpus_per_node or (args.devices if isinstance(args.devices, int) else 1)
    options = [f"--job-name={name}", f"--nodes={args.nodes or 1}", f"--ntasks-per-node={per_node}",
               *([f"--gpus-per-node={args.gpus_per_node}"] if args.gpus_per_node else []),
               *([f"--time={args.time}"] if args.time else []),
               *([f"--partition={args.partition}"] if args.partition else []),
               *([f"--account={args.account}"] if args.account else []),
               *REQUEUE_SETTINGS, f"--chdir={Path.cwd()}",
               f"--output={folder / ('slurm-%A_%a.out' if tasks > 1 else 'slurm-%j.out')}"]
    if tasks > 1:
        options.append(f"--array=0-{tasks - 1}{f'%{args.max_parallel}' if args.max_parallel else ''}")
    return [f"#SBATCH {shlex.quote(option)}" for option in [*options, *args.sbatch_args]]


def job_script(args: argparse.Namespace, runs: list[tuple[str, list[str]]], name: str, folder: Path,
               group: str | None = None) -> str:
    """The job script: its ``#SBATCH`` lines, the artifacts root (and the seeds' group), and one
    ``srun train ...`` per run, picked by ``SLURM_ARRAY_TASK_ID`` in a job array."""
    command = " ".join(map(shlex.quote, train_command()))
    extra = resource_arguments(args)
    lines = ["#!/bin/bash", f"# Written by: train {shlex.join(sys.argv[1:])}",
             "# Submit it again with: sbatch " + shlex.quote(str(folder / "job.sh")),
             *directives(args, name, folder, len(runs)),
             f"export {ARTIFACTS_ENV}={shlex.quote(str(artifacts_root().absolute()))}"]
    if group:
        lines.append(f"export {GROUP_ENV}={shlex.quote(group)}")
    if len(runs) == 1:
        return "\n".join([*lines, f"srun {command} {shlex.join([*runs[0][1], *extra])}", ""])
    lines.append('case "$SLURM_ARRAY_TASK_ID" in')
    lines += [f"    {index}) set -- {shlex.join(argv)} ;;" for index, (_, argv) in enumerate(runs)]
    lines += ["esac", f"srun {command} \"$@\"{' ' + shlex.join(extra) if extra else ''}", ""]
    return "\n".join(lines)


def submissions_folder(name: str) -> Path:
    """A new ``<artifacts root>/slurm/<name>-<time>`` folder; a UserError when it cannot be made."""
    base = artifacts_root().absolute() / "slurm" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for number in range(1, 100):
        folder = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
        except OSError as error:
            raise UserError(f"--slurm: cannot create {display_path(folder)} for the job script "
                            f"({error.strerror or error}); set {ARTIFACTS_ENV} to a writable directory") from None
    raise UserError(f"--slurm: {display_path(base)}: 99 submissions in one second")


def submit(args: argparse.Namespace, runs: list[tuple[str, list[str]]], paths: list[str],
           group: str | None = None) -> int:
    """Write the job script of ``runs`` (``(label, train arguments)``), submit it and print the job
    id and where its output goes; exit code 0. A refused submission is a UserError quoting
    sbatch, and leaves no folder behind."""
    sbatch = sbatch_path()
    name = job_name(paths)
    folder = submissions_folder(name)
    script = folder / "job.sh"
    try:
        script.write_text(job_script(args, runs, name, folder, group))
        done = subprocess.run([sbatch, "--parsable", str(script)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=SBATCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"--slurm: sbatch did not answer in {SBATCH_TIMEOUT_S} s (is slurmctld up?); "
                        "nothing submitted") from None
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        said = [line.strip().removeprefix("sbatch: error: ") for line in done.stderr.splitlines() if line.strip()]
        raise UserError(f"--slurm: sbatch refused the job: {'; '.join(said) or f'exit code {done.returncode}'}")
    job_id = done.stdout.strip().split(";")[0]
    output = folder / (f"slurm-{job_id}_<task>.out" if len(runs) > 1 else f"slurm-{job_id}.out")
    what = f"a job array of {len(runs)} runs" if len(runs) > 1 else "1 run"
    print(f"torch-lab: SLURM job {job_id} submitted ({what}); script {display_path(script)}; "
          f"output {display_path(output)}", flush=True)
    print(f"torch-lab: see it with: squeue -j {job_id}; runs (once it started)", flush=True)
    return 0
