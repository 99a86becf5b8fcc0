"""A sweep trial's side of the contract with ``torch_lab.sweep.command``: a ``train`` child started by a
sweep finds its study and trial number in ``TORCH_LAB_SWEEP_TRIAL`` (JSON); its run is tagged
and recorded as that trial. Light to import: Optuna loads only inside the functions that need it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch_lab.storage.run_dir import artifacts_root

TRIAL_ENV = "TORCH_LAB_SWEEP_TRIAL"


def trial_env() -> dict[str, Any] | None:
    """This process's trial: ``name``, ``trial``, ``storage``, ``parent`` (the sweep's ClearML
    task), ``metric``, ``pruner``; None outside a sweep."""
    text = os.environ.get(TRIAL_ENV)
    return json.loads(text) if text else None


def sweep_record() -> dict[str, Any] | None:
    """run.json's ``sweep`` entry: ``{"name": ..., "trial": n}``, with ``"seed"`` in a sweep over
    seeds; None outside a sweep."""
    trial = trial_env()
    if not trial:
        return None
    return {"name": trial["name"], "trial": trial["trial"], **({"seed": trial["seed"]} if "seed" in trial else {})}


def sweep_tags() -> list[str]:
    """The ClearML tags of a trial's task: ``sweep:<name>``, ``trial:<n>``."""
    trial = trial_env()
    return [f"sweep:{trial['name']}", f"trial:{trial['trial']}"] if trial else []


def optuna_pruner(spec: dict[str, Any]) -> Any:
    """The Optuna pruner of a sweep's ``pruner`` entry (``{"type": ..., **kwargs}``)."""
    import optuna

    kwargs = {key: value for key, value in spec.items() if key != "type"}
    kind = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[spec["type"]]
    return kind(**kwargs)


def open_storage(path: str) -> Any:
    """The study storage: Optuna's journal file (safe for several processes at once)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(path))


def trial_run(name: str, number: int) -> Path | None:
    """The run directory of a sweep's trial, by its run.json ``sweep`` entry (an interrupted child
    reports no task id); of a trial over seeds, its last started run."""
    found: list[tuple[str, Path]] = []
    for record in artifacts_root().absolute().glob("*/run.json"):
        try:
            run = json.loads(record.read_text())
            sweep = run.get("sweep") or {}
            if (sweep.get("name"), sweep.get("trial")) == (name, number):
                found.append((str(run.get("started") or ""), record.parent))
        except (OSError, ValueError, AttributeError):
            continue
    return max(found)[1] if found else None
