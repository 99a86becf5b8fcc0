from pathlib import Path

import pytest
import torch

from torch_lab.storage.checkpoint_io import AtomicCheckpointIO


def test_saves_load_and_a_failed_save_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(2))
    with pytest.raises(Exception):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(2)}, "bad": lambda: None}, path)
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
