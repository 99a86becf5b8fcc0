"""A tiny GAN for the third example: a generator learns a correlated 2-D Gaussian from noise.

``TinyGAN`` is a LightningModule of its own (not a ``torch_lab.modules.TrainLabModule``): it
optimises by hand, with one optimizer for the generator and one for the discriminator, and logs
its own metrics. torch-lab trains it as it trains any LightningModule.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce
from torch.utils.data import Dataset

#: The distribution the generator learns.
TARGET_MEAN = (2.0, -1.0)
TARGET_COVARIANCE = ((1.0, 0.8), (0.8, 1.0))


class NoiseAndSamples(Dataset):
    """``count`` samples ``(z [latent], {"y": a point of the target [2], "index": i})``: the
    generator's input and a real point; the same for the same seed."""

    def __init__(self, count: int, seed: int, latent: int = 4) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.z = torch.randn(count, latent, generator=generator)
        factor = torch.linalg.cholesky(torch.tensor(TARGET_COVARIANCE))
        self.real = torch.randn(count, 2, generator=generator) @ factor.T + torch.tensor(TARGET_MEAN)

    def __len__(self) -> int:
        return len(self.z)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, Any]]:
        return self.z[i], {"y": self.real[i], "index": i}


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                         nn.LeakyReLU(0.2), nn.Linear(hidden, outputs))


def moment_gap(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """How far two point clouds' first two moments are: the distance of their means plus that
    of their covariance matrices (Frobenius); 0 for the same distribution, in the limit."""
    return torch.linalg.norm(fake.mean(0) - real.mean(0)) + torch.linalg.norm(torch.cov(fake.T) - torch.cov(real.T))


class TinyGAN(pl.LightningModule):
    """A generator (``forward``: noise ``z`` -> 2-D points) and a discriminator, each with its own
    Adam, stepped by hand in ``training_step``. Logs ``loss_d/train`` and ``loss_g/train`` per
    epoch, and ``gap/val`` (``moment_gap`` of the generated and the real validation points, on one
    device); ``predict_step`` returns ``{"y_pred": points, "md": the batch's metadata}``."""

    def __init__(self, latent: int = 4, hidden: int = 32, lr_generator: float = 2e-3,
                 lr_discriminator: float = 2e-3) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = mlp(latent, hidden, 2)
        self.discriminator = mlp(2, hidden, 1)
        self.learning_rates = (lr_generator, lr_discriminator)
        self._validated: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        z, metadata = batch
        real = metadata["y"]
        generator_optimizer, discriminator_optimizer = self.optimizers()
        fake = self(z)
        real_score, fake_score = self.discriminator(real), self.discriminator(fake.detach())
        loss_d = bce(real_score, torch.ones_like(real_score)) + bce(fake_score, torch.zeros_like(fake_score))
        discriminator_optimizer.zero_grad()
        self.manual_backward(loss_d)
        discriminator_optimizer.step()
        fooled = self.discriminator(fake)
        loss_g = bce(fooled, torch.ones_like(fooled))
        generator_optimizer.zero_grad()
        self.manual_backward(loss_g)
        generator_optimizer.step()
        self.log_dict({"loss_d/train": loss_d, "loss_g/train": loss_g}, on_step=False, on_epoch=True, prog_bar=True)
        return loss_d + loss_g  # returned: torch-lab's NaN guard checks it

    def on_validation_epoch_start(self) -> None:
        self._validated = []

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        z, metadata = batch
        self._validated.append((self(z), metadata["y"]))

    def on_validation_epoch_end(self) -> None:
        fake, real = (torch.cat(parts) for parts in zip(*self._validated))
        self.log("gap/val", moment_gap(fake, real), prog_bar=True)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        z, metadata = batch
        return {"y_pred": self(z), "md": metadata}

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        lr_generator, lr_discriminator = self.learning_rates
        return [torch.optim.Adam(self.generator.parameters(), lr=lr_generator, betas=(0.5, 0.999)),
                torch.optim.Adam(self.discriminator.parameters(), lr=lr_discriminator, betas=(0.5, 0.999))]
