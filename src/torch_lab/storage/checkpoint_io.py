"""Checkpoint files written atomically.

Lightning stages a checkpoint in the system temp directory and moves it into place; across
filesystems (a local /tmp, checkpoints on shared storage) that move is a copy, which a kill can
leave torn. Here the file is written beside its target and renamed over it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from torch_lab.storage.atomic import atomic_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves leave the old or the new checkpoint, never a torn one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as handle:
            torch.save(checkpoint, handle)
