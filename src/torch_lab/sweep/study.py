"""The sweep's Optuna study: its name, sampler and journal storage, and what each trial is told.

The study lives in ``<artifacts root>/sweeps/<name>/study.journal`` (Optuna's journal file, safe
for several processes), so the same command continues it. Interrupted trials (Ctrl-C, a killed
sweep) are recorded as failed with status ``interrupted`` and not counted, so the next start
replaces them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch_lab.errors import UserError, display_path
from torch_lab.storage.run_dir import find_run_dir
from torch_lab.sweep.space import Sweep
from torch_lab.sweep.trial import open_storage, optuna_pruner, trial_run

#: Statuses that count as a finished trial (interrupted ones are run again).
COUNTED = ("completed", "pruned", "failed")


def sweep_name(hparams_path: Path, sweep_path: Path) -> str:
    """``<experiment folder>-<hparams stem>-<sweep stem>``, e.g. ``01_regression-hparams-sweep``."""
    return f"{hparams_path.parent.name}-{hparams_path.stem}-{Path(sweep_path).stem}"


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
