"""MNIST demo: ``train_config(hparams)`` and ``infer_config(hparams, checkpoint, output_csv)``."""

from __future__ import annotations

from typing import Any

import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader

from example_project.callbacks import DebugSamples
from example_project.datasets import MNISTDigits, train_val_indices
from example_project.models import SmallCNN
from example_project.writers import CSVPredictionWriter
from torch_lab.checkpoints import load_weights, resolve_checkpoint
from torch_lab.modules import LabModule, TrainLabModule


def argmax(logits: torch.Tensor) -> torch.Tensor:
    """Class ids from logits."""
    return logits.argmax(dim=1)


def loader(dataset: MNISTDigits, config: dict[str, Any], shuffle: bool) -> DataLoader:
    return DataLoader(dataset, batch_size=config["batch_size"], shuffle=shuffle,
                      num_workers=config["num_workers"])


def train_config(hparams: dict[str, Any]) -> dict[str, Any]:
    config = hparams["config"]
    train_idx, val_idx = train_val_indices(config["data_dir"], config["val_size"], config["split_seed"])
    train_loader = loader(MNISTDigits(config["data_dir"], "train", train_idx), config, shuffle=True)
    epochs = hparams["trainer"]["init"]["max_epochs"]
    module = TrainLabModule(
        SmallCNN(**config["model"]),
        loss_function=nn.CrossEntropyLoss(),
        optimizer_config={
            "optimizer": getattr(torch.optim, config["optimizer"]),
            "optimizer_kwargs": {"lr": config["learning_rate"], "weight_decay": config["weight_decay"]},
            "scheduler": torch.optim.lr_scheduler.OneCycleLR,
            "scheduler_kwargs": {"max_lr": config["learning_rate"],
                                 "total_steps": epochs * len(train_loader)},
            "interval": "step",
        },
        metrics={"accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=10)},
        output_transform=argmax,
    )
    return dict(
        module=module,
        callbacks=[DebugSamples(config["debug_images"])] if config["debug_images"] else [],
        train_dataloaders=train_loader,
        val_dataloaders=loader(MNISTDigits(config["data_dir"], "train", val_idx), config, shuffle=False),
        test_dataloaders=loader(MNISTDigits(config["data_dir"], "test"), config, shuffle=False),
    )


def infer_config(hparams: dict[str, Any], checkpoint: str, output_csv: str) -> dict[str, Any]:
    """Predict every test image with ``checkpoint`` (a task id or a .ckpt path) into ``output_csv``."""
    config = hparams["config"]
    model = SmallCNN(**config["model"])
    path = resolve_checkpoint(checkpoint)
    load_weights(model, path)
    return dict(
        module=LabModule(model, output_transform=argmax),
        predict_dataloaders=loader(MNISTDigits(config["data_dir"], "test"), config, shuffle=False),
        callbacks=[CSVPredictionWriter(output_csv)],
        weights=f"checkpoint {path}",  # says infer_config loaded them itself
    )
