"""Epoch metrics fed without a per-step update: the same values as torchmetrics' per-step
updates."""

from __future__ import annotations

import torch
import torchmetrics

from torch_lab.epoch_metrics import EpochUpdates, LossMean


def batches(count: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 5, generator=generator), torch.randint(0, 5, (8,), generator=generator))
            for _ in range(count)]


def test_accuracy_fed_once_equals_per_step_updates() -> None:
    per_step = torchmetrics.Accuracy(task="multiclass", num_classes=5)
    deferred = EpochUpdates(torchmetrics.Accuracy(task="multiclass", num_classes=5))
    for prediction, target in batches(20):
        per_step.update(prediction, target)
        deferred.update(prediction, target)
    assert deferred.metric.update_count == 0  # nothing fed during the steps
    assert torch.equal(deferred.compute(), per_step.compute())
    assert deferred.metric.update_count == 1


def test_size_limit_and_shape_changes_feed_early_with_equal_values() -> None:
    per_step = torchmetrics.MeanSquaredError()
    deferred = EpochUpdates(torchmetrics.MeanSquaredError(), max_bytes=1000)
    for index, (prediction, _) in enumerate(batches(12)):
        prediction = prediction if index % 5 else prediction[:, :3].contiguous()  # a shape change feeds the kept ones
        target = torch.zeros_like(prediction)
        per_step.update(prediction, target)
        deferred.update(prediction, target)
    assert deferred.metric.update_count > 2
    assert torch.allclose(deferred.compute(), per_step.compute(), rtol=1e-6)
    deferred.reset()
    assert deferred._kept == [] and deferred.metric.update_count == 0


def test_loss_mean_weights_by_samples_and_keeps_nan() -> None:
    mean = LossMean()
    mean.update(torch.tensor(1.0), 3)
    mean.update(torch.tensor(3.0), 1)
    assert mean.compute().item() == 1.5
    mean.update(torch.tensor(float("nan")), 2)
    assert mean.compute().isnan()
