"""Custom-module example: ``train_config(hparams)`` returns a LightningModule of its own
(``TinyGAN``: manual optimisation, two optimizers); ``infer_config(hparams, output_csv, count)``
writes ``count`` generated points with the weights of ``checkpoint.checkpoint_task_id``."""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader

from example_project.gan import NoiseAndSamples, TinyGAN
from example_project.writers import CSVPredictionWriter


def module(config: dict[str, Any]) -> TinyGAN:
    return TinyGAN(config["latent"], config["hidden"], config["lr_generator"], config["lr_discriminator"])


def train_config(hparams: dict[str, Any]) -> dict[str, Any]:
    config = hparams["config"]
    return dict(
        module=module(config),
        train_dataloaders=DataLoader(NoiseAndSamples(config["train_size"], seed=1, latent=config["latent"]),
                                     batch_size=config["batch_size"], shuffle=True),
        val_dataloaders=DataLoader(NoiseAndSamples(config["val_size"], seed=2, latent=config["latent"]),
                                   batch_size=config["batch_size"]),
    )


def infer_config(hparams: dict[str, Any], output_csv: str, count: str) -> dict[str, Any]:
    config = hparams["config"]
    return dict(
        module=module(config),  # torch-lab loads the checkpoint's weights into it
        predict_dataloaders=DataLoader(NoiseAndSamples(int(count), seed=3, latent=config["latent"]),
                                       batch_size=config["batch_size"]),
        callbacks=[CSVPredictionWriter(output_csv)],
    )
