"""``LoaderEpochEnd``: a resumable train loader resumed from an epoch-end checkpoint shuffles the
next epoch as the uninterrupted run would have."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader


class LoaderEpochEnd(pl.Callback):
    """Resume a resumable train loader (one with ``state_dict``/``load_state_dict``, e.g.
    torchdata's ``StatefulDataLoader``) from an epoch-end checkpoint where the uninterrupted run
    would have gone on.

    Lightning loads a loader's saved state only when it resumes inside an epoch. Such a loader
    shuffles with a generator of its own, seeded once when the loader is built and drawn from at
    every epoch; from an epoch-end checkpoint it would start the next epoch with that generator
    as built, i.e. in the first epoch's order. Here the saved state is loaded and replayed to its
    end (the generator draws as it did in that epoch), so the next epoch's iterator, which
    Lightning makes, starts where the uninterrupted run's did. The global generators are left as
    they were (``RandomState`` sets them).
    """

    def __init__(self, train_dataloaders: Any) -> None:
        self.loaders = [loader for loader in CombinedLoader(train_dataloaders).flattened
                        if callable(getattr(loader, "state_dict", None))
                        and callable(getattr(loader, "load_state_dict", None))]

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
        states = fit_loop.get("state_dict", {}).get("combined_loader") or []
        epoch = fit_loop.get("epoch_progress", {}).get("current", {})
        at_epoch_end = epoch.get("ready") == epoch.get("started") == epoch.get("processed")
        # Lightning itself restores the loaders inside an epoch, and in step-based training.
        if (trainer.state.fn != "fit" or not at_epoch_end or trainer.max_steps != -1
                or len(states) != len(self.loaders)):
            return
        with torch.random.fork_rng(devices=[]):  # making an iterator draws a base seed
            for loader, state in zip(self.loaders, states):
                loader.load_state_dict(state)
                if not state.get("_iterator_finished", False):  # else the next iterator starts anew
                    iter(loader)  # the saved epoch, replayed to where it was saved
