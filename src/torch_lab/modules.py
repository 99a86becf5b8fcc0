"""Lightning modules wrapping a plain ``torch.nn.Module``: ``LabModule`` (predict) and
``TrainLabModule`` (loss, per-stage torchmetrics, optimizer and scheduler).

Checkpoints hold the bare model's ``state_dict`` keys, so ``ckpt["state_dict"]`` loads straight into
the model as well as into the module.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import pytorch_lightning as pl
import torch
from torch import nn

from torch_lab.epoch_metrics import EpochUpdates, LossMean


def split_batch(batch: Any) -> tuple[Any, dict[str, Any] | None]:
    """Split a batch into ``(x, metadata)``.

    Accepted: ``(x, y)`` (``y`` becomes ``{"y": y}``), ``(x, metadata_dict)`` with the label at
    ``metadata["y"]``, or a bare ``x`` (no metadata, for prediction).
    """
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        x, second = batch
        return x, dict(second) if isinstance(second, Mapping) else {"y": second}
    return batch, None


class LabModule(pl.LightningModule):
    """Wrap ``model`` for prediction; ``output_transform`` maps model outputs to predictions."""

    def __init__(self, model: nn.Module, output_transform: Callable | None = None) -> None:
        super().__init__()
        self.model = model
        self.output_transform = output_transform

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Return ``{"y_pred": ...}`` plus the batch's metadata as ``"md"`` when it has one."""
        x, md = split_batch(batch)
        y_pred = self(x)
        if self.output_transform is not None:
            y_pred = self.output_transform(y_pred)
        return {"y_pred": y_pred} if md is None else {"y_pred": y_pred, "md": md}

    # Checkpoints store the bare model's keys (no "model." prefix).
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool | None = True, assign: bool = False
    ) -> Any:
        return self.model.load_state_dict(state_dict, strict=strict is not False, assign=assign)


class TrainLabModule(LabModule):
    """Train ``model`` with ``loss_function`` and the optimizer described by ``optimizer_config``.

    Args:
        model: the network; called on the batch's ``x``.
        loss_function: ``loss_function(output, y) -> scalar tensor``.
        optimizer_config: ``{"optimizer": class, "optimizer_kwargs": {...}, "scheduler": class
            (optional), "scheduler_kwargs": {...}, "monitor": metric name for the scheduler
            (e.g. ``"loss/val"``), "interval": "epoch" | "step", "frequency": int}``.
        metrics: ``{name: torchmetrics.Metric}``; each stage (train, val, test) gets its own copy,
            fed ``(output_transform(output), y)`` and logged as ``<name>/<stage>`` per epoch. The
            steps' inputs are fed in one ``update`` at the epoch's end (see
            ``torch_lab.epoch_metrics.EpochUpdates``): nothing waits on the device during a step.
        output_transform: applied to outputs before metrics and in ``predict_step``.

    The loss is logged as ``loss/<stage>`` per epoch: the mean over the epoch's samples.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_function: Callable[[Any, Any], torch.Tensor],
        optimizer_config: dict[str, Any],
        metrics: dict[str, Any] | None = None,
        output_transform: Callable | None = None,
    ) -> None:
        super().__init__(model, output_transform)
        if "optimizer" not in optimizer_config:
            raise ValueError("optimizer_config needs an 'optimizer' class, e.g. torch.optim.Adam")
        self.loss_function = loss_function
        self.optimizer_config = optimizer_config
        metrics = metrics or {}
        if "loss" in metrics:
            raise ValueError("metrics: 'loss' is taken by the loss itself (logged as loss/<stage>)")
        # One independent set per stage: the loss's mean, then copies of the metrics.
        self.train_metrics = self._stage_metrics(metrics)
        self.val_metrics = self._stage_metrics(metrics)
        self.test_metrics = self._stage_metrics(metrics)
        self._logged: set[str] = set()

    @staticmethod
    def _stage_metrics(metrics: dict[str, Any]) -> nn.ModuleDict:
        return nn.ModuleDict({"loss": LossMean(),
                              **{name: EpochUpdates(copy.deepcopy(metric)) for name, metric in metrics.items()}})

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        x, md = split_batch(batch)
        if md is None or "y" not in md:
            raise ValueError("training batches must be (x, y) or (x, metadata dict with 'y')")
        y = md["y"]
        output = self(x)
        loss = self.loss_function(output, y)
        stage_metrics = getattr(self, f"{stage}_metrics")
        stage_metrics["loss"].update(loss.detach(), len(y) if hasattr(y, "__len__") else 1)
        if len(stage_metrics) > 1:
            prediction = (self.output_transform(output) if self.output_transform else output).detach()
            for name, metric in stage_metrics.items():
                if name != "loss":
                    metric.update(prediction, y)
        if stage not in self._logged:
            # Logging a Metric object once per epoch is enough: Lightning computes (synced across
            # processes) and resets it at the epoch's end. Logging at every step costs ~1 ms each.
            for name, metric in stage_metrics.items():
                self.log(f"{name}/{stage}", metric, on_step=False, on_epoch=True,
                         prog_bar=name == "loss" or stage != "train")
            self._logged.add(stage)
        return loss

    def on_fit_start(self) -> None:
        """Recreate metric states outside inference mode: a ``validate`` run before ``fit`` leaves
        inference tensors that in-place metrics (e.g. MeanSquaredError) cannot update in fit."""
        for stage_metrics in (self.train_metrics, self.val_metrics, self.test_metrics):
            for metric in stage_metrics.values():
                metric.reset()

    def on_train_epoch_start(self) -> None:
        self._logged.discard("train")

    def on_validation_epoch_start(self) -> None:
        self._logged.discard("val")

    def on_test_epoch_start(self) -> None:
        self._logged.discard("test")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        config = self.optimizer_config
        optimizer = config["optimizer"](self.model.parameters(), **config.get("optimizer_kwargs", {}))
        scheduler_class = config.get("scheduler")
        if scheduler_class is None:
            return optimizer
        scheduler = {
            "scheduler": scheduler_class(optimizer, **config.get("scheduler_kwargs", {})),
            "interval": config.get("interval", "epoch"),
            "frequency": config.get("frequency", 1),
        }
        if "monitor" in config:
            scheduler["monitor"] = config["monitor"]
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
