"""The trial side of a sweep: a ``train`` child started by ``torch_lab.sweep`` finds its study and
trial number in ``TORCH_LAB_SWEEP_TRIAL`` (JSON). Its run is tagged and recorded as that trial,
and with a pruner, :class:`PruningCallback` reports the monitored metric to Optuna at each
validation epoch end and stops the run with :class:`~torch_lab.errors.TrialPruned` when Optuna
says so (run.json status ``pruned``, exit code 0). Optuna is imported only by the callback.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytorch_lightning as pl

from torch_lab.errors import TrialPruned

TRIAL_ENV = "TORCH_LAB_SWEEP_TRIAL"


def trial_env() -> dict[str, Any] | None:
    """This process's trial: ``name``, ``trial``, ``storage``, ``parent`` (the sweep's ClearML
    task), ``metric``, ``pruner``; None outside a sweep."""
    text = os.environ.get(TRIAL_ENV)
    return json.loads(text) if text else None


def follow_sweep(trial: dict[str, Any]) -> None:
    """Stop this trial cleanly (SIGTERM) when the sweep that started it dies: each trial runs in
    its own process group, so nothing else would reach it (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != trial["sweep_pid"]:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def sweep_record() -> dict[str, Any] | None:
    """run.json's ``sweep`` entry: ``{"name": ..., "trial": n}``; None outside a sweep."""
    trial = trial_env()
    return {"name": trial["name"], "trial": trial["trial"]} if trial else None


def sweep_tags() -> list[str]:
    """The ClearML tags of a trial's task: ``sweep:<name>``, ``trial:<n>``."""
    trial = trial_env()
    return [f"sweep:{trial['name']}", f"trial:{trial['trial']}"] if trial else []


def pruning_callbacks() -> list[pl.Callback]:
    """The pruning callback of this trial, when it runs in a sweep with a pruner."""
    trial = trial_env()
    return [PruningCallback(trial)] if trial and trial["pruner"]["type"] != "none" else []


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


class PruningCallback(pl.Callback):
    """Report ``trial["metric"]`` after every validation (step = epoch) and, when the study's
    pruner prunes the trial, raise ``TrialPruned`` at the end of that training epoch, once its
    checkpoints and history row are written."""

    def __init__(self, trial: dict[str, Any]) -> None:
        import optuna

        storage = open_storage(trial["storage"])
        study = optuna.load_study(study_name=trial["name"], storage=storage,
                                  pruner=optuna_pruner(trial["pruner"]))
        trial_id = storage.get_trial_id_from_study_id_trial_number(
            storage.get_study_id_from_name(trial["name"]), trial["trial"])
        self.trial = optuna.trial.Trial(study, trial_id)
        self.metric = trial["metric"]
        self.pruned: str | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric])
        self.trial.report(value, step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned = f"pruned at epoch {trainer.current_epoch} ({self.metric}={value:.4g})"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.pruned = trainer.strategy.broadcast(self.pruned, src=0)  # every rank stops together
        if self.pruned:
            raise TrialPruned(self.pruned)
