"""MNIST as normalised tensors, with each sample's index carried in its metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from example_project.preprocess import mnist

MEAN, STD = 0.1307, 0.3081


class MNISTDigits(Dataset):
    """Samples ``(image [1, 28, 28] float, {"y": label, "index": position in the split})``.

    ``indices`` selects a subset of the split (e.g. a train/val split); ``index`` in the metadata
    stays the position in the full split, so predictions can be matched to test images.
    """

    def __init__(self, data_dir: str | Path, split: str, indices: torch.Tensor | None = None) -> None:
        tensors = mnist.load(data_dir, split)
        self.indices = indices if indices is not None else torch.arange(len(tensors["labels"]))
        images = tensors["images"][self.indices]
        self.images = ((images.float() / 255 - MEAN) / STD).unsqueeze(1)
        self.labels = tensors["labels"][self.indices]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.images[i], {"y": self.labels[i], "index": self.indices[i]}


def train_val_indices(data_dir: str | Path, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random split of the training set's positions into train and validation."""
    count = len(mnist.load(data_dir, "train")["labels"])
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]
