"""Callbacks the launcher adds, each run inside a real ``pl.Trainer`` on tiny data."""

from __future__ import annotations

import pytorch_lightning as pl
import pytest
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torch_lab.callbacks.progress import ProgressBar
from torch_lab.callbacks.progress import ProgressLines, RunHeader
from torch_lab.callbacks.progress import console_callbacks as progress_bar
from torch_lab.modules import LabModule, TrainLabModule


def fit_with(bar: ProgressBar, batches: int) -> None:
    module = TrainLabModule(nn.Linear(4, 2), nn.CrossEntropyLoss(), {"optimizer": torch.optim.SGD,
                                                                    "optimizer_kwargs": {"lr": 0.1}})
    data = TensorDataset(torch.randn(batches * 2, 4), torch.randint(0, 2, (batches * 2,)))
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, callbacks=[bar])
    trainer.fit(module, DataLoader(data, batch_size=2))


def test_progress_bar_redraws_at_most_every_interval_and_always_at_the_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    original = TQDMProgressBar.on_train_batch_end

    def record(self, trainer, module, outputs, batch, batch_idx):  # counts Lightning's redraws
        drawn.append(batch_idx)
        original(self, trainer, module, outputs, batch, batch_idx)

    monkeypatch.setattr(TQDMProgressBar, "on_train_batch_end", record)
    bar = ProgressBar(interval=3600)
    fit_with(bar, batches=20)
    assert drawn == [0, 19]  # the first batch, then nothing until the last one
    assert bar.train_progress_bar.n == 20

    drawn.clear()
    fit_with(ProgressBar(interval=0), batches=5)
    assert drawn == [0, 1, 2, 3, 4]


def test_progress_bar_throttles_prediction_too(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    original = TQDMProgressBar.on_predict_batch_end

    def record(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        drawn.append(batch_idx)
        original(self, trainer, module, outputs, batch, batch_idx, dataloader_idx)

    monkeypatch.setattr(TQDMProgressBar, "on_predict_batch_end", record)
    bar = ProgressBar(interval=3600)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, callbacks=[bar])
    trainer.predict(LabModule(nn.Linear(4, 2)), DataLoader(torch.randn(20, 4), batch_size=2))
    assert drawn == [0, 9] and bar.predict_progress_bar.n == 10


def test_the_experiments_own_bar_or_no_bar_wins() -> None:
    """Under pytest the console is no terminal: progress lines instead of a bar; the header always."""
    assert [type(c) for c in progress_bar({}, [])] == [RunHeader, ProgressLines]
    assert [type(c) for c in progress_bar({}, [TQDMProgressBar(refresh_rate=5)])] == [RunHeader]
    assert [type(c) for c in progress_bar({"enable_progress_bar": False}, [])] == [RunHeader]


def test_piped_progress_lines_label_the_previous_epochs_validation(toy) -> None:
    """Through ``train`` into a pipe, a line each batch: a training line of epoch 1 shows epoch 0's
    validation loss labelled as such, never as if it were epoch 1's."""
    from conftest import run_cli, sets

    result = run_cli("train", toy, "--offline", *sets("trainer.init.max_epochs=2", "trainer.init.enable_progress_bar=True"),
                     env={"TORCH_LAB_PROGRESS_INTERVAL": "0"})
    assert result.returncode == 0, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("epoch 1: ")]
    assert lines and all("; epoch 0's validation: " in line for line in lines), lines
    assert all("loss/val=" in line.split("; epoch 0's validation: ")[1] for line in lines)
    assert all("loss/val" not in line.split(";")[0] for line in lines)
