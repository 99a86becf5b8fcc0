"""The NaN guard in a real ``pl.Trainer``: it finds the first non-finite loss without waiting on
the device at each step, and a checkpoint is never written after it."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torch_lab.callbacks import nan_guard
from torch_lab.modules import TrainLabModule


class InfAt:
    """Cross-entropy plus +inf at the given training steps: the loss is infinite there, its
    gradient stays finite, so the steps after are finite again."""

    def __init__(self, steps: set[int]) -> None:
        self.steps, self.calls = steps, 0

    def __call__(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = nn.functional.cross_entropy(output, y)
        bad = self.calls in self.steps
        self.calls += 1
        return loss + float("inf") if bad else loss


def fit(tmp_path: Path, steps: int, bad: set[int], save_every: int) -> None:
    torch.manual_seed(0)
    module = TrainLabModule(nn.Linear(4, 2), InfAt(bad), {"optimizer": torch.optim.SGD,
                                                          "optimizer_kwargs": {"lr": 0.01}})
    data = TensorDataset(torch.randn(steps, 4), torch.randint(0, 2, (steps,)))
    saves = ModelCheckpoint(dirpath=tmp_path, filename="{step}", every_n_train_steps=save_every,
                            save_top_k=-1)
    trainer = pl.Trainer(max_epochs=1, limit_val_batches=0, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[nan_guard.NaNGuard(), saves])
    trainer.fit(module, DataLoader(data, batch_size=1))


def test_first_bad_step_is_named_and_never_checkpointed(tmp_path: Path) -> None:
    assert nan_guard.CHUNK < 260  # the bad step lies past a fold of the kept losses
    with pytest.raises(FloatingPointError, match=r"the training loss is inf at step 260 \(epoch 0, "
                                                 r"batch 260\); stopped before checkpointing it"):
        fit(tmp_path, steps=320, bad={260, 280}, save_every=150)
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["step=150.ckpt"]  # not step=300


def test_finite_losses_pass_every_check(tmp_path: Path) -> None:
    fit(tmp_path, steps=40, bad=set(), save_every=10)
    assert len(list(tmp_path.glob("*.ckpt"))) == 4
