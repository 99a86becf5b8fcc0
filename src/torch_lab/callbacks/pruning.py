"""Pruning a sweep trial: with a pruner, :class:`PruningCallback` reports the monitored metric to
Optuna after each validation and stops the run with :class:`~torch_lab.errors.TrialPruned` when
Optuna says so (run.json status ``pruned``, exit code 0). Optuna is imported only by the callback.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from torch_lab.errors import TrialPruned
from torch_lab.sweep.trial import open_storage, optuna_pruner, trial_env


def pruning_callbacks() -> list[pl.Callback]:
    """The pruning callback of this trial, when it runs in a sweep with a pruner."""
    trial = trial_env()
    return [PruningCallback(trial)] if trial and trial["pruner"]["type"] != "none" else []


class PruningCallback(pl.Callback):
    """Report ``trial["metric"]`` after every validation (step = epoch) and, when the study's
    pruner prunes the trial, raise ``TrialPruned`` as the next epoch starts: that epoch's
    checkpoints and history row are written first (Lightning saves them at the epoch's end, after
    the other callbacks). Pruned in its last epoch, a trial simply completes."""

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

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.pruned = trainer.strategy.broadcast(self.pruned, src=0)  # every rank stops together
        if self.pruned:
            raise TrialPruned(self.pruned)
