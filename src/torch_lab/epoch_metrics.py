"""Epoch metrics that cost a training step almost nothing and never wait on the device.

``torchmetrics``' own ``update`` validates its inputs at every call (e.g. ``MeanMetric`` checks the
value for NaN, the classification metrics check the labels' range and count them with
``bincount``): each of those reads a device value back on the host, a synchronisation, and costs a
few hundred microseconds of Python on a small model. ``LossMean`` keeps two sums updated in place;
``EpochUpdates`` keeps a step's inputs and feeds them to the wrapped metric in one ``update`` when
it is computed (at the epoch's end), which gives the same values for every metric whose state adds
up over samples (counts, sums, concatenations: classification, regression, ...).
"""

from __future__ import annotations

from typing import Any

import torch
import torchmetrics

#: ``EpochUpdates`` feeds its metric early once the kept inputs reach this size (bytes).
MAX_KEPT_BYTES = 16 * 2**20


class LossMean(torchmetrics.Metric):
    """The mean loss per sample: a weighted sum and a count, updated in place; a NaN or infinite
    loss stays in the mean."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, loss: torch.Tensor, count: int) -> None:
        """Add ``loss`` (a batch's mean loss) for ``count`` samples."""
        self.total.add_(loss, alpha=count)
        self.count.add_(count)

    def compute(self) -> torch.Tensor:
        return self.total / self.count


class EpochUpdates(torchmetrics.Metric):
    """Wrap ``metric``: keep each ``update``'s ``(prediction, target)`` and feed them to ``metric``
    concatenated, in one ``update``, when computed (or once ``max_bytes`` are kept, or when a
    batch does not concatenate with the kept ones). Inputs other than tensors with a batch
    dimension go to ``metric`` at once."""

    full_state_update = False

    def __init__(self, metric: torchmetrics.Metric, max_bytes: int = MAX_KEPT_BYTES) -> None:
        super().__init__()
        self.metric = metric
        self.max_bytes = max_bytes
        self._kept: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._bytes = 0

    def update(self, prediction: Any, target: Any) -> None:
        if not _batched(prediction, target):
            self._feed()
            self.metric.update(prediction, target)
            return
        if self._kept and not _concatenates(self._kept[0], (prediction, target)):
            self._feed()
        self._kept.append((prediction, target))
        self._bytes += prediction.nbytes + target.nbytes
        if self._bytes >= self.max_bytes:
            self._feed()

    def compute(self) -> Any:
        self._feed()
        return self.metric.compute()

    def reset(self) -> None:
        super().reset()
        self._kept, self._bytes = [], 0
        self.metric.reset()

    def _feed(self) -> None:
        if self._kept:
            predictions, targets = zip(*self._kept)
            self._kept, self._bytes = [], 0
            self.metric.update(torch.cat(predictions), torch.cat(targets))


def _batched(prediction: Any, target: Any) -> bool:
    return (isinstance(prediction, torch.Tensor) and isinstance(target, torch.Tensor)
            and prediction.ndim > 0 and target.ndim > 0 and len(prediction) == len(target))


def _concatenates(first: tuple[torch.Tensor, torch.Tensor], pair: tuple[torch.Tensor, torch.Tensor]) -> bool:
    return all(a.shape[1:] == b.shape[1:] and a.dtype == b.dtype and a.device == b.device
               for a, b in zip(first, pair))
