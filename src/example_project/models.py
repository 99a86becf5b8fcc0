"""The demo's network."""

from torch import nn


class SmallCNN(nn.Sequential):
    """Two 5x5 conv blocks (``width``, ``2 * width`` channels) and a two-layer classifier."""

    def __init__(self, width: int = 8, hidden: int = 128, dropout: float = 0.25, classes: int = 10):
        super().__init__(
            nn.Conv2d(1, width, 5, padding=2), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout),
            nn.Linear(2 * width * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, classes),
        )
