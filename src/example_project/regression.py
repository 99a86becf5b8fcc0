"""A synthetic regression problem for the second example: y = sum(sin(x)) + noise, 4 features."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset


class SineSums(Dataset):
    """``count`` samples ``(x [features], {"y": [1], "index": i})``, the same for the same seed."""

    def __init__(self, count: int, seed: int, features: int = 4, noise: float = 0.05) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.rand(count, features, generator=generator) * 6 - 3
        self.y = torch.sin(self.x).sum(dim=1, keepdim=True)
        self.y += noise * torch.randn(self.y.shape, generator=generator)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.x[i], {"y": self.y[i], "index": i}


class MLP(nn.Sequential):
    """``features`` -> ``hidden`` (``layers`` times, ReLU) -> 1."""

    def __init__(self, features: int = 4, hidden: int = 32, layers: int = 2) -> None:
        blocks: list[nn.Module] = []
        width = features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        super().__init__(*blocks, nn.Linear(width, 1))
