"""The sweep's Optuna study: its name, sampler and journal storage, and what each trial is told.

The study lives in ``<artifacts root>/sweeps/<name>/study.journal`` (Optuna's journal file, safe
for several processes), so the same command continues it. It belongs to one hparams file and one
space and seeds (recorded in its user attributes): another is refused. Several sweep processes may share it
(on one machine or on several, over a shared filesystem): a new trial is asked for under a lock
(``study.lock``), counting the trials running anywhere, so N holds in all. Interrupted trials
(Ctrl-C, a killed sweep) are recorded as failed with status ``interrupted`` and not counted, so
the next start replaces them.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from torch_lab.errors import UserError, display_path
from torch_lab.storage.run_dir import find_run_dir
from torch_lab.sweep.space import Sweep
from torch_lab.sweep.trial import open_storage, optuna_pruner, trial_run

#: Statuses that count as a finished trial (interrupted ones are run again).
COUNTED = ("completed", "pruned", "failed")


def sweep_name(hparams_path: Path, sweep_path: Path, dev: bool = False) -> str:
    """``<experiment folder>-<hparams stem>-<sweep stem>``, e.g. ``01_regression-hparams-sweep``;
    a ``--dev-run`` sweep's ends in ``-dev`` (a study of its own: dev trials never count)."""
    return f"{hparams_path.parent.name}-{hparams_path.stem}-{Path(sweep_path).stem}" + ("-dev" if dev else "")


def make_sampler(sweep: Sweep, offset: int, parallel: bool) -> Any:
    """The sweep's Optuna sampler; ``offset`` (trials already in the study) shifts its seed."""
    import optuna

    seed = None if sweep.seed is None else sweep.seed + offset  # a continued study draws anew
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sweep.sampler == "grid":
        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, *args: Any) -> None:
                """Nothing: the sweep counts its trials itself (the grid's size at most), and
                GridSampler's ``study.stop()`` raises outside ``study.optimize``."""

        return Grid(sweep.grid(), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)


@contextmanager
def study_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``study.lock`` beside the journal (POSIX locks also hold on
    NFS), so that sweep processes sharing the study check and ask one at a time."""
    with open(folder / "study.lock", "a") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN)


def _owner(sweep: Sweep, hparams_path: Path) -> dict[str, Any]:
    return {"hparams_path": str(hparams_path.resolve()), "space": json.loads(json.dumps(sweep.space)),
            "seeds": sweep.seeds}


def _check_owner(sweep: Sweep, folder: Path, recorded: dict[str, Any], owner: dict[str, Any]) -> None:
    """Refuse a study of another hparams file, another space or other seeds (exit 2, naming the
    clash)."""
    where, fix = display_path(sweep.path), f"rename {sweep.path.name} or remove {display_path(folder)} to start afresh"
    if recorded.get("hparams_path", owner["hparams_path"]) != owner["hparams_path"]:
        raise UserError(f"{where}: the study in {display_path(folder)} is a sweep of {recorded['hparams_path']}, "
                        f"not of {owner['hparams_path']}; {fix}")
    space = recorded.get("space", owner["space"])
    if space != owner["space"]:
        key = next(k for k in {**space, **owner["space"]} if space.get(k) != owner["space"].get(k))
        raise UserError(f"{where}: space.{key} is {owner['space'].get(key)}, but the study in "
                        f"{display_path(folder)} has {space.get(key)}; the space of a study cannot change; {fix}")
    seeds = recorded.get("seeds")  # a study begun before seeds existed has none: one run a trial
    if seeds != owner["seeds"]:
        def shown(value: list[int] | None) -> str:
            return str(value) if value else "none (one run a trial)"

        raise UserError(f"{where}: seeds is {shown(owner['seeds'])}, but the study in {display_path(folder)} has "
                        f"{shown(seeds)}; the seeds of a study cannot change; {fix}")


def open_study(sweep: Sweep, name: str, folder: Path, parallel: bool, hparams_path: Path) -> Any:
    """Create or load the study of ``hparams_path`` and the sweep's space (another is refused);
    trials left running by a sweep that died are recorded as interrupted (failed, not counted)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(str(folder / "study.journal"))
    owner = _owner(sweep, hparams_path)
    with study_lock(folder):
        names = {summary.study_name: summary for summary in optuna.get_all_study_summaries(storage, False)}
        if name in names and names[name].direction.name.lower() != sweep.direction:
            raise UserError(f"{display_path(sweep.path)}: direction {sweep.direction}, but the study in "
                            f"{display_path(folder)} is to {names[name].direction.name.lower()}; "
                            "remove that folder to start afresh")
        if name in names:
            _check_owner(sweep, folder, names[name].user_attrs, owner)
        offset = names[name].n_trials if name in names else 0
        study = optuna.create_study(storage=storage, study_name=name, direction=sweep.direction,
                                    sampler=make_sampler(sweep, offset, parallel),
                                    pruner=optuna_pruner(sweep.pruner), load_if_exists=True)
        for key, value in owner.items():
            study.set_user_attr(key, value)
        with warnings.catch_warnings():  # experimental in Optuna since 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([sweep.metric])  # Optuna Dashboard's objective: loss/val, not "Objective 0"
        for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if not _alive(frozen.user_attrs):
                trial = optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(
                    storage.get_study_id_from_name(name), frozen.number))
                run_dir = trial_run(name, frozen.number)
                trial.set_user_attr("status", "interrupted")
                trial.set_user_attr("error", "the sweep running it was killed")
                if run_dir:
                    trial.set_user_attr("run_dir", str(run_dir))
                    trial.set_user_attr("task_id", _task_id(run_dir))
                study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
    return study


def _task_id(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "run.json").read_text()).get("task_id")
    except (OSError, ValueError, AttributeError):
        return None


def _alive(attrs: dict[str, Any]) -> bool:
    """Whether the sweep that asked for a trial still runs; one on another host (a shared
    journal) is taken to, as its pid cannot be checked from here."""
    pid = attrs.get("sweep_pid")
    if not isinstance(pid, int):
        return False
    if attrs.get("sweep_host", socket.gethostname()) != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def ask(study: Any, folder: Path, trials: int, distributions: dict[str, Any]) -> Any:
    """A new trial, or None once ``trials`` are done or running in all processes sharing the
    study: counted and asked under the study's lock, so two sweeps never overshoot N."""
    from optuna.trial import TrialState

    with study_lock(folder):
        taken = counted(study) + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if taken >= trials:
            return None
        trial = study.ask(distributions)
        trial.set_user_attr("sweep_pid", os.getpid())
        trial.set_user_attr("sweep_host", socket.gethostname())
        return trial


def counted(study: Any) -> int:
    """Trials that finished (completed, pruned, failed): the ones N counts."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state.is_finished() and t.user_attrs.get("status", "failed") in COUNTED)


def tell(study: Any, trial: Any, result: dict[str, Any]) -> None:
    """Record a trial's outcome in the study (before ``tell``, its attributes: task id, status,
    run directory, best checkpoint, error, and a trial over seeds each seed's run as ``seeds``)."""
    from optuna.trial import TrialState

    status = result.get("status", "failed")
    best = result.get("best") or {}
    value = best.get("value")
    if status == "completed" and not isinstance(value, (int, float)):
        status, result = "failed", {**result, "error": f"the run logged no {best.get('monitor') or 'metric'}"}
    task_id = result.get("task_id")
    run_dir = find_run_dir(task_id) if task_id else trial_run(study.study_name, trial.number)
    if run_dir and not task_id:
        task_id = _task_id(run_dir)
    for key, item in (("task_id", task_id), ("status", status), ("error", result.get("error")),
                      ("run_dir", str(run_dir) if run_dir else None), ("checkpoint", best.get("path"))):
        trial.set_user_attr(key, item)
    if "seeds" in result:
        trial.set_user_attr("seeds", [{**run, "run_dir": str(found) if run["task_id"] and (
            found := find_run_dir(run["task_id"])) else None} for run in result["seeds"]])
    if status == "completed":
        study.tell(trial, float(value))
    else:
        study.tell(trial, state=TrialState.PRUNED if status == "pruned" else TrialState.FAIL)
    reason = f": {result.get('error')}" if status == "failed" else ""
    print(f"torch-lab: trial {trial.number} {status}{reason}", flush=True)
