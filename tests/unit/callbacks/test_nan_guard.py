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


class ByHand(pl.LightningModule):
    """Manual optimisation; ``training_step`` returns ``loss`` (+inf at step 2) or nothing."""

    def __init__(self, returns: bool) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.layer, self.returns = nn.Linear(4, 1), returns

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor | None:
        optimizer = self.optimizers()
        loss = self.layer(batch).pow(2).mean()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return (loss + (float("inf") if batch_idx == 2 else 0.0)) if self.returns else None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit_by_hand(returns: bool) -> None:
    trainer = pl.Trainer(max_epochs=1, limit_val_batches=0, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False, callbacks=[nan_guard.NaNGuard()])
    trainer.fit(ByHand(returns), DataLoader(torch.randn(8, 4), batch_size=2))


def test_manual_optimisation_returning_its_loss_is_guarded(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(FloatingPointError, match=r"the training loss is inf at step 2 \(epoch 0, batch 2\)"):
        fit_by_hand(returns=True)
    assert "NaN guard off" not in capsys.readouterr().out


def test_manual_optimisation_returning_nothing_says_the_guard_is_off(capsys: pytest.CaptureFixture) -> None:
    fit_by_hand(returns=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if "NaN guard" in line]
    assert lines == ["torch-lab: NaN guard off: training_step returns no loss (manual optimisation); return the "
                     "loss (a one-element tensor) to have each step's checked"]
