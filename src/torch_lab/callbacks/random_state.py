"""``RandomState``: the global random generators in every checkpoint, as plain data."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


class RandomState(pl.Callback):
    """Keep the global random generators (torch, Python, NumPy) in checkpoints, as plain data, so
    a run resumed from a checkpoint shuffles, drops out and augments exactly as the uninterrupted
    run would have.

    Resumed inside an epoch, Lightning rebuilds the train loader's iterator after the checkpoint
    is loaded, which draws from the torch generator (the loader's base seed) where the
    uninterrupted run drew nothing: the states are set again once that is done, at the start of
    training. (From an epoch's end, that draw is the next epoch's, as in the uninterrupted run.)
    """

    def __init__(self) -> None:
        self._loaded: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = random.getstate()
        name, keys, position, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": [version, list(internal), gauss],
            "numpy": [name, keys.tolist(), int(position), int(has_gauss), float(cached)],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = state_dict
        self._set(state_dict)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._loaded is not None and trainer.fit_loop.restarting:  # resumed inside an epoch
            self._set(self._loaded)
        self._loaded = None

    @staticmethod
    def _set(state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        name, keys, position, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
