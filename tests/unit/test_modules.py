"""TrainLabModule / LabModule under a real pl.Trainer on tiny data."""

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from torch_lab.modules import LabModule, TrainLabModule, split_batch


def trainer(tmp_path: Path, **kwargs) -> pl.Trainer:
    options = dict(default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, max_epochs=1)
    return pl.Trainer(**{**options, **kwargs})


def classifier(lr: float = 0.1, **optimizer) -> TrainLabModule:
    torch.manual_seed(0)
    return TrainLabModule(
        nn.Linear(4, 2), nn.CrossEntropyLoss(),
        {"optimizer": torch.optim.SGD, "optimizer_kwargs": {"lr": lr}, **optimizer},
        metrics={"accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=2)},
        output_transform=lambda logits: logits.argmax(dim=1),
    )


def points(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x.sum(dim=1) > 0).long())


class Flipping(Dataset):
    """Labels flip on odd epochs (set by the callback below), so per-epoch accuracies differ."""

    def __init__(self, data: TensorDataset) -> None:
        self.x, self.y = data.tensors
        self.flip = 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], {"y": self.y[i] ^ self.flip, "index": i}


class FlipEachEpoch(pl.Callback):
    def __init__(self, dataset: Flipping) -> None:
        self.dataset, self.accuracies = dataset, []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.dataset.flip = trainer.current_epoch % 2

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.accuracies.append(float(trainer.callback_metrics["accuracy/train"]))


def test_metrics_are_per_epoch_and_per_stage(tmp_path: Path) -> None:
    """With a frozen model (lr=0) and labels flipped on odd epochs, a metric that is not reset each
    epoch would average the epochs; the logged values must be each epoch's own accuracy."""
    module = classifier(lr=0.0)
    data = Flipping(points(64, 0))
    flips = FlipEachEpoch(data)
    val = points(32, 1)
    trainer(tmp_path, max_epochs=3, callbacks=[flips]).fit(
        module, DataLoader(data, batch_size=16), DataLoader(val, batch_size=16))
    with torch.no_grad():
        correct = (module.model(data.x).argmax(1) == data.y).float().mean().item()
        val_accuracy = (module.model(val.tensors[0]).argmax(1) == val.tensors[1]).float().mean().item()
    assert flips.accuracies == pytest.approx([correct, 1 - correct, correct])
    assert correct != pytest.approx(0.5)
    assert module.train_metrics["accuracy"] is not module.val_metrics["accuracy"]
    assert float(module.trainer.callback_metrics["accuracy/val"]) == pytest.approx(val_accuracy)


class EpochLosses(pl.Callback):
    """What a callback sees of loss/train and loss/val at each training epoch's end."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        self.seen.append((float(metrics["loss/train"]), float(metrics["loss/val"])))


def test_losses_are_each_epochs_sample_mean(tmp_path: Path) -> None:
    """Frozen model (lr=0), batches of unequal size (16, 16, 8): each epoch's loss/train and
    loss/val must be the mean over that epoch's samples, untouched by the sanity check's batch
    and by the previous epoch, and visible to callbacks at the epoch's end."""
    module = classifier(lr=0.0)
    train, val = points(40, 0), points(24, 1)
    losses = EpochLosses()
    trainer(tmp_path, max_epochs=2, num_sanity_val_steps=1, callbacks=[losses]).fit(
        module, DataLoader(train, batch_size=16), DataLoader(val, batch_size=16))
    with torch.no_grad():
        expected = tuple(nn.functional.cross_entropy(module.model(d.tensors[0]), d.tensors[1]).item()
                         for d in (train, val))
    assert losses.seen == [pytest.approx(expected)] * 2


def test_in_place_metric_survives_validate_then_fit(tmp_path: Path) -> None:
    """MeanSquaredError updates its state in place; a validate under inference mode before fit
    must not break the training copy."""
    module = TrainLabModule(nn.Linear(4, 1), nn.MSELoss(), {"optimizer": torch.optim.SGD,
                            "optimizer_kwargs": {"lr": 0.01}}, metrics={"mse": torchmetrics.MeanSquaredError()})
    x = torch.randn(32, 4)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    run = trainer(tmp_path, max_epochs=2)
    run.validate(module, data, verbose=False)
    run.fit(module, data, data)
    assert {"mse/train", "mse/val", "loss/train", "loss/val"} <= set(run.callback_metrics)


def test_checkpoint_loads_into_bare_model_and_safely(tmp_path: Path) -> None:
    module = classifier()
    run = trainer(tmp_path, enable_checkpointing=True)
    run.fit(module, DataLoader(points(32, 0), batch_size=8), DataLoader(points(16, 1), batch_size=8))
    path = tmp_path / "saved.ckpt"
    run.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert set(checkpoint["state_dict"]) == {"weight", "bias"}
    bare = nn.Linear(4, 2)
    bare.load_state_dict(checkpoint["state_dict"])
    assert torch.equal(bare.weight, module.model.weight)
    fresh = classifier(lr=0.5)
    fresh.load_state_dict(checkpoint["state_dict"])
    assert torch.equal(fresh.model.weight, module.model.weight)


def test_step_interval_scheduler(tmp_path: Path) -> None:
    module = classifier(lr=1.0, scheduler=torch.optim.lr_scheduler.StepLR,
                        scheduler_kwargs={"step_size": 1, "gamma": 0.5}, interval="step")
    run = trainer(tmp_path, max_epochs=1)
    run.fit(module, DataLoader(points(32, 0), batch_size=8), DataLoader(points(8, 1), batch_size=8))
    assert run.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.5 ** 4)


def test_plateau_scheduler_monitors_a_logged_metric(tmp_path: Path) -> None:
    module = classifier(lr=1.0, scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau,
                        scheduler_kwargs={"patience": 0, "factor": 0.5, "threshold": 10.0},
                        monitor="loss/val")
    run = trainer(tmp_path, max_epochs=3)
    run.fit(module, DataLoader(points(32, 0), batch_size=8), DataLoader(points(8, 1), batch_size=8))
    assert run.optimizers[0].param_groups[0]["lr"] < 1.0


def test_predict_returns_predictions_and_metadata(tmp_path: Path) -> None:
    module = LabModule(nn.Linear(4, 2), output_transform=lambda y: y.argmax(dim=1))
    data = Flipping(points(10, 0))
    out = trainer(tmp_path).predict(module, DataLoader(data, batch_size=4))
    assert [len(batch["y_pred"]) for batch in out] == [4, 4, 2]
    assert torch.equal(torch.cat([b["md"]["index"] for b in out]), torch.arange(10))
    bare = trainer(tmp_path).predict(module, DataLoader(data.x, batch_size=5))
    assert set(bare[0]) == {"y_pred"}


def test_split_batch_forms() -> None:
    x, y = torch.zeros(2, 4), torch.ones(2)
    assert split_batch((x, y))[1] == {"y": y}
    assert split_batch([x, {"y": y, "id": 1}])[1] == {"y": y, "id": 1}
    assert split_batch(x) == (x, None)


def test_training_batch_without_label_is_rejected(tmp_path: Path) -> None:
    module = classifier()
    with pytest.raises(ValueError, match=r"training batches must be \(x, y\)"):
        trainer(tmp_path).fit(module, DataLoader(points(8, 0).tensors[0], batch_size=4))
