"""Training throughput of the MNIST demo three ways, on the same batches with the same seed:
(a) a hand-written PyTorch loop, (b) a bare ``pl.Trainer`` on the demo's ``TrainLabModule``,
(c) the real ``train`` console script (``--offline``; its throughput from history.csv). Each run
is a fresh process.

    python benchmarks/training_parity.py [--epochs 1] [--max-batches N] [--repeats 5] [--smoke]

Throughput counts training only (validation, capped at a few batches, is excluded everywhere, as in
torch-lab's ``train_seconds``). All three do the demo's per-step work, including the epoch's mean
loss and training accuracy (torchmetrics). Same seed: Lightning's and torch-lab's train losses must
agree to 5 decimals.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn

import common
from example_project.models import SmallCNN

VAL_BATCHES = 2  # validation is not timed; a couple of batches keep torch-lab's best.ckpt working
LOSS_DECIMALS = 5


@dataclass
class Epochs:
    """Per-epoch training seconds and mean train loss of one run."""

    seconds: list[float]
    losses: list[float]


def hand_written(hparams: dict[str, Any], max_batches: int | None) -> Epochs:
    """The demo's model, data, optimizer and schedule in a plain PyTorch loop, doing the demo's
    per-step work: the loss's epoch mean and the training accuracy (the same torchmetrics)."""
    pl.seed_everything(0, workers=True, verbose=False)
    config, epochs = hparams["config"], hparams["trainer"]["init"]["max_epochs"]
    model = SmallCNN(**config["model"])
    loader = common.train_loader(hparams)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"],
                                  weight_decay=config["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config["learning_rate"],
                                                    total_steps=epochs * len(loader))
    loss_function = nn.CrossEntropyLoss()
    mean_loss = torchmetrics.MeanMetric()
    accuracy = torchmetrics.Accuracy(task="multiclass", num_classes=10)
    result = Epochs([], [])
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for index, (x, metadata) in enumerate(loader):
            if index == max_batches:
                break
            output = model(x)
            loss = loss_function(output, metadata["y"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            mean_loss.update(loss.detach(), len(x))
            accuracy.update(output.detach().argmax(dim=1), metadata["y"])
        result.losses.append(float(mean_loss.compute()))
        accuracy.compute()  # as the demo does at each epoch's end
        result.seconds.append(time.perf_counter() - start)
        mean_loss.reset()
        accuracy.reset()
    return result


class EpochRecorder(pl.Callback):
    """Training seconds per epoch without validation, and ``loss/train``, as torch-lab's history.csv
    measures them."""

    def __init__(self) -> None:
        self.epochs = Epochs([], [])
        self._start = self._val_start = self._val_seconds = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._start, self._val_seconds = time.perf_counter(), 0.0

    def on_validation_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val_seconds += time.perf_counter() - self._val_start

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.epochs.seconds.append(time.perf_counter() - self._start - self._val_seconds)
        self.epochs.losses.append(float(trainer.callback_metrics["loss/train"]))


def lightning(hparams: dict[str, Any]) -> Epochs:
    """The demo's ``train_config`` in a bare ``pl.Trainer``: no logger, checkpoints or progress bar."""
    pl.seed_everything(0, workers=True, verbose=False)  # as torch-lab does before train_config
    config = common.demo_main().train_config(hparams)
    recorder = EpochRecorder()
    trainer = pl.Trainer(**hparams["trainer"]["init"], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[recorder])
    trainer.fit(config["module"], config["train_dataloaders"], config["val_dataloaders"])
    return recorder.epochs


def torch_lab(data: common.Data, hparams: dict[str, Any], folder: Path) -> Epochs:
    """The real ``train --offline`` in a subprocess; its epochs from the run's history.csv."""
    init = hparams["trainer"]["init"]
    extra = {f"trainer.init.{key}": init[key]
             for key in ("max_epochs", "limit_train_batches", "limit_val_batches") if key in init}
    command = [common.console_script("train"), common.DEMO_HPARAMS, "--offline",
               *common.demo_overrides(data, extra)]
    folder.mkdir()
    common.run_command(command, env=common.tracking_env(folder), cwd=folder)
    history = next((folder / "artifacts").glob("*/history.csv"))
    rows = list(csv.DictReader(history.open()))
    return Epochs([float(r["train_seconds"]) for r in rows], [float(r["loss/train"]) for r in rows])


def run_variant(variant: str, hparams_file: Path, max_batches: int | None) -> None:
    """The child side of ``common.in_fresh_process``: print the variant's epochs as one JSON line."""
    hparams = json.loads(hparams_file.read_text())
    epochs = hand_written(hparams, max_batches) if variant == "hand_written" else lightning(hparams)
    print(json.dumps(asdict(epochs)))


def summary(runs: list[Epochs], samples_per_epoch: int) -> dict[str, Any]:
    """Median seconds and samples/s over repetitions, and the final train loss of each."""
    seconds = [sum(run.seconds) for run in runs]
    rates = [samples_per_epoch * len(run.seconds) / s for run, s in zip(runs, seconds)]
    return {"samples_per_s": common.median(rates), "seconds": common.median(seconds),
            "samples_per_s_all": rates, "train_loss": runs[0].losses[-1],
            "train_losses_per_epoch": runs[0].losses}


def loss_agreement(lightning_runs: list[Epochs], torch_lab_runs: list[Epochs]) -> dict[str, Any]:
    """Whether every epoch's train loss of Lightning and torch-lab agree to 5 decimals."""
    differences = [abs(a - b) for x, y in zip(lightning_runs, torch_lab_runs)
                   for a, b in zip(x.losses, y.losses, strict=True)]
    return {"lightning_vs_torch_lab_equal_5_decimals": max(differences) < 0.5 * 10 ** -LOSS_DECIMALS,
            "max_abs_difference": max(differences)}


def main() -> None:
    parser = common.parser("training_parity", __doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    parser.add_argument("--max-batches", type=int, help="cap on training batches per epoch")
    parser.add_argument("--variant", choices=("hand_written", "lightning"), help=argparse.SUPPRESS)
    parser.add_argument("--hparams-json", type=Path, help=argparse.SUPPRESS)
    parser.set_defaults(repeats=5)
    args = parser.parse_args()
    if args.variant:
        run_variant(args.variant, args.hparams_json, args.max_batches)
        return
    max_batches = common.SMOKE_BATCHES if args.smoke else args.max_batches
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        data = common.prepare_data(args.data_dir, Path(scratch), args.smoke)
        hparams = common.demo_hparams(data, args.epochs)
        hparams["trainer"]["init"]["limit_val_batches"] = VAL_BATCHES
        if max_batches is not None:
            hparams["trainer"]["init"]["limit_train_batches"] = max_batches
        samples = common.samples_in(common.train_loader(hparams), max_batches)
        hparams_file = Path(scratch) / "hparams.json"
        hparams_file.write_text(json.dumps(hparams))
        runs: dict[str, list[Epochs]] = {"hand_written": [], "lightning": [], "torch_lab": []}
        def child_run(variant: str) -> Epochs:
            return Epochs(**common.in_fresh_process(__file__, variant, "--hparams-json", hparams_file,
                                                    max_batches=max_batches))

        runners = {
            "hand_written": lambda repeat: child_run("hand_written"),
            "lightning": lambda repeat: child_run("lightning"),
            "torch_lab": lambda repeat: torch_lab(data, hparams, Path(scratch) / f"torch-lab-{repeat}"),
        }
        names = list(runners)
        for repeat in range(common.repeats(args)):
            # Each variant in a fresh process; interleaved, and each repetition starts with
            # another variant: drifting machine speed hits all three alike.
            order = names[repeat % 3:] + names[:repeat % 3]
            print(f"repetition {repeat + 1}: {', '.join(order)} ...", flush=True)
            for name in order:
                runs[name].append(runners[name](repeat))
    variants = {name: summary(r, samples) for name, r in runs.items()}
    rate = {name: v["samples_per_s"] for name, v in variants.items()}
    ratios = {"torch_lab/hand_written": rate["torch_lab"] / rate["hand_written"],
              "torch_lab/lightning": rate["torch_lab"] / rate["lightning"]}
    agreement = loss_agreement(runs["lightning"], runs["torch_lab"])
    common.print_table(
        f"training, {args.epochs} epoch(s) x {samples} samples, median of {common.repeats(args)}",
        [{"variant": n, "samples/s": v["samples_per_s"], "seconds": v["seconds"],
          "final train loss": f"{v['train_loss']:.6f}"} for n, v in variants.items()])
    print("\n".join(f"{k}: {v:.3f}" for k, v in ratios.items()))
    print(f"Lightning vs torch-lab train loss equal to {LOSS_DECIMALS} decimals: "
          f"{agreement['lightning_vs_torch_lab_equal_5_decimals']} "
          f"(max difference {agreement['max_abs_difference']:.2e})")
    common.write_json(args.out, {
        "benchmark": "training_parity",
        "settings": {"epochs": args.epochs, "max_batches": max_batches, "val_batches": VAL_BATCHES,
                     "samples_per_epoch": samples, "repeats": common.repeats(args),
                     "synthetic_data": data.synthetic, "smoke": args.smoke},
        "environment": common.environment(),
        "variants": variants,
        "ratios": ratios,
        "loss_agreement": agreement,
    })


if __name__ == "__main__":
    main()
