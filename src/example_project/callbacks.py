"""Debug samples for ClearML: a validation confusion matrix and a few misclassified digits per
epoch."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from clearml import Task
from torchmetrics.classification import MulticlassConfusionMatrix

from example_project.datasets import MEAN, STD


class DebugSamples(pl.Callback):
    """After each validation epoch, report the confusion matrix and up to ``images`` misclassified
    validation images (titled with the true and predicted digit) to the current ClearML task."""

    def __init__(self, images: int = 8, classes: int = 10) -> None:
        self.images = images
        self.confusion = MulticlassConfusionMatrix(num_classes=classes)
        self.wrong: list[tuple[torch.Tensor, int, int]] = []

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Fresh state in this loop's own mode: a standalone validate (inference mode) before fit
        # would otherwise leave inference tensors that fit's validation cannot update in place.
        self.confusion = self.confusion.to(pl_module.device)
        self.confusion.reset()
        self.wrong = []

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.sanity_checking:
            return
        x, md = batch
        predicted, labels = pl_module(x).argmax(dim=1), md["y"]
        self.confusion.update(predicted, labels)
        for index in torch.nonzero(predicted != labels).flatten().tolist():
            if len(self.wrong) < self.images:
                self.wrong.append((x[index].cpu(), int(labels[index]), int(predicted[index])))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        matrix = self.confusion.compute().cpu().numpy()  # under DDP a collective: every rank computes
        wrong, self.wrong = self.wrong, []
        self.confusion.reset()
        task = Task.current_task()
        if task is None or not trainer.is_global_zero:
            return
        reporter, epoch = task.get_logger(), trainer.current_epoch
        reporter.report_confusion_matrix("confusion matrix", "val", iteration=epoch, matrix=matrix,
                                         xaxis="predicted", yaxis="true")
        for number, (image, label, prediction) in enumerate(wrong):
            pixels = ((image[0] * STD + MEAN).clamp(0, 1) * 255).to(torch.uint8).numpy()
            reporter.report_image("misclassified", f"{number}: true {label}, predicted {prediction}",
                                  iteration=epoch, image=pixels)
