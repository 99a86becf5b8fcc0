"""Regression example: ``train_config(hparams)``; ``infer_config(hparams, checkpoint, output_csv,
count)`` predicts ``count`` fresh samples with ``checkpoint`` (a task id or a .ckpt path)."""

from __future__ import annotations

from typing import Any

import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader

from example_project.regression import MLP, SineSums
from example_project.writers import CSVPredictionWriter
from torch_lab.checkpoints import load_weights, resolve_checkpoint
from torch_lab.modules import LabModule, TrainLabModule


def flatten(y: torch.Tensor) -> torch.Tensor:
    """[N, 1] predictions -> [N]."""
    return y.squeeze(-1)


def train_config(hparams: dict[str, Any]) -> dict[str, Any]:
    config = hparams["config"]
    module = TrainLabModule(
        MLP(**config["model"]),
        loss_function=nn.MSELoss(),
        optimizer_config={
            "optimizer": torch.optim.Adam,
            "optimizer_kwargs": {"lr": config["learning_rate"]},
            "scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau,  # follows hparams["monitor"]
            "scheduler_kwargs": {"factor": 0.5, "patience": 1},
        },
        metrics={"mse": torchmetrics.MeanSquaredError(), "mae": torchmetrics.MeanAbsoluteError()},
    )
    return dict(
        module=module,
        train_dataloaders=DataLoader(SineSums(config["train_size"], seed=1), batch_size=config["batch_size"],
                                     shuffle=True),
        val_dataloaders=DataLoader(SineSums(config["val_size"], seed=2), batch_size=config["batch_size"]),
    )


def infer_config(hparams: dict[str, Any], checkpoint: str, output_csv: str, count: str) -> dict[str, Any]:
    config = hparams["config"]
    model = MLP(**config["model"])
    path = resolve_checkpoint(checkpoint)
    load_weights(model, path)
    return dict(
        module=LabModule(model, output_transform=flatten),
        predict_dataloaders=DataLoader(SineSums(int(count), seed=3), batch_size=config["batch_size"]),
        callbacks=[CSVPredictionWriter(output_csv)],
        weights=f"checkpoint {path}",  # says infer_config loaded them itself
    )
