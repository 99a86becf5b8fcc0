"""CallbackGroup and Checkpoint in a real ``pl.Trainer``: members' hooks run in order, their
states round-trip through a checkpoint, and Lightning sees one callback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torch_lab.callbacks.checkpoint import Checkpoint
from torch_lab.callbacks.group import CallbackGroup
from torch_lab.modules import TrainLabModule

calls: list[str] = []


class Counter(pl.Callback):
    def __init__(self, name: str) -> None:
        self.name, self.batches = name, 0

    @property
    def state_key(self) -> str:
        return f"Counter-{self.name}"

    def on_train_batch_end(self, *args: Any) -> None:
        self.batches += 1
        calls.append(self.name)

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = state_dict["batches"]


def fit(tmp_path: Path, group: CallbackGroup, epochs: int, ckpt_path: str | None = None) -> pl.Trainer:
    torch.manual_seed(0)
    module = TrainLabModule(nn.Linear(4, 2), nn.CrossEntropyLoss(), {"optimizer": torch.optim.SGD,
                                                                    "optimizer_kwargs": {"lr": 0.1}})
    trainer = pl.Trainer(max_epochs=epochs, limit_val_batches=0, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[group, Checkpoint(dirpath=tmp_path, save_last=True)])
    data = TensorDataset(torch.randn(12, 4), torch.randint(0, 2, (12,)))
    trainer.fit(module, DataLoader(data, batch_size=4), ckpt_path=ckpt_path, weights_only=False)
    return trainer


def test_members_run_in_order_and_keep_their_states(tmp_path: Path) -> None:
    calls.clear()
    trainer = fit(tmp_path, CallbackGroup([Counter("a"), Counter("b")]), epochs=1)
    assert calls == ["a", "b"] * 3
    assert sum(isinstance(c, (Counter, CallbackGroup)) for c in trainer.callbacks) == 1
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"]
    assert saved["CallbackGroup"] == {"Counter-a": {"batches": 3}, "Counter-b": {"batches": 3}}
    assert any(key.startswith("ModelCheckpoint{") for key in saved)  # ModelCheckpoint's own key

    resumed = CallbackGroup([Counter("a"), Counter("b")])
    fit(tmp_path / "resumed", resumed, epochs=2, ckpt_path=str(tmp_path / "last.ckpt"))
    assert [c.batches for c in resumed.callbacks] == [6, 6]


def test_ungrouped_states_of_older_checkpoints_load(tmp_path: Path) -> None:
    fit(tmp_path, CallbackGroup([Counter("a")]), epochs=1)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    checkpoint["callbacks"]["Counter-a"] = checkpoint["callbacks"].pop("CallbackGroup")["Counter-a"]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    resumed = CallbackGroup([Counter("a")])
    fit(tmp_path / "resumed", resumed, epochs=2, ckpt_path=str(tmp_path / "old.ckpt"))
    assert resumed.callbacks[0].batches == 6


def test_checkpoint_is_a_model_checkpoint_with_the_same_state_key(tmp_path: Path) -> None:
    ours = Checkpoint(dirpath=tmp_path, monitor="loss/val", every_n_train_steps=5)
    theirs = ModelCheckpoint(dirpath=tmp_path, monitor="loss/val", every_n_train_steps=5)
    assert ours.state_key == theirs.state_key and ours.state_key is ours.state_key
