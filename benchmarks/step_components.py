"""Per-step cost of each piece of torch-lab's training step against the plain Lightning /
torchmetrics way of doing the same, in microseconds (``timeit``, best of the repetitions, one
torch thread): the breakdown behind ``step_overhead.py``'s totals.

    python benchmarks/step_components.py [--repeats 5] [--smoke]

    loss mean          torchmetrics.MeanMetric.update        vs torch_lab's LossMean.update
    metric             torchmetrics Accuracy.update per step vs EpochUpdates (its epoch-end feed
                                                                and compute spread over the steps)
    NaN check          bool(isfinite(loss)) per step         vs NaNGuard (folds and final check
                                                                spread over the steps)
    callback dispatch  Lightning calling 6 callbacks and a   vs one CallbackGroup of 6 and a
                       ModelCheckpoint at the 6 per-step        Checkpoint
                       hooks
"""

from __future__ import annotations

import timeit
from types import SimpleNamespace
from typing import Any, Callable

import pytorch_lightning as pl
import torch
import torchmetrics
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer import call

import common
from torch_lab.callbacks.checkpoint import Checkpoint
from torch_lab.callbacks.group import CallbackGroup
from torch_lab.epoch_metrics import EpochUpdates, LossMean
from torch_lab.callbacks.nan_guard import NaNGuard

#: The hooks Lightning calls on every callback at every training step, with stand-in arguments.
STEP_HOOKS = {"on_train_batch_start": (None, 0), "on_before_backward": (None,), "on_after_backward": (),
              "on_before_optimizer_step": (None,), "on_before_zero_grad": (None,),
              "on_train_batch_end": (None, None, 0)}
EPOCH = 2000  # steps over which epoch-end work is spread


def per_step(function: Callable[[], Any], steps: int, repeats: int) -> float:
    """Microseconds per step of ``function`` (which runs ``steps`` steps), best of ``repeats``."""
    return 1e6 * min(timeit.repeat(function, number=1, repeat=repeats)) / steps


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (torch.tensor(0.5), torch.randn(32, 10, generator=generator),
            torch.randint(0, 10, (32,), generator=generator))


def loss_means(steps: int) -> dict[str, Callable[[], Any]]:
    loss, _, _ = batch()

    def run(metric: torchmetrics.Metric) -> Callable[[], Any]:
        def epoch() -> Any:
            metric.reset()
            for _ in range(steps):
                metric.update(loss, 32)
            return metric.compute()
        return epoch

    return {"baseline": run(torchmetrics.MeanMetric(nan_strategy=float("nan"))), "torch_lab": run(LossMean())}


def metrics(steps: int) -> dict[str, Callable[[], Any]]:
    _, prediction, target = batch()

    def run(metric: torchmetrics.Metric) -> Callable[[], Any]:
        def epoch() -> Any:
            metric.reset()
            for _ in range(steps):
                metric.update(prediction, target)
            return metric.compute()
        return epoch

    accuracy = lambda: torchmetrics.Accuracy(task="multiclass", num_classes=10)  # noqa: E731
    return {"baseline": run(accuracy()), "torch_lab": run(EpochUpdates(accuracy()))}


def nan_checks(steps: int) -> dict[str, Callable[[], Any]]:
    loss, _, _ = batch()
    trainer = SimpleNamespace(global_step=0, current_epoch=0)

    def synchronous() -> None:
        for _ in range(steps):
            if not bool(torch.isfinite(loss).all()):
                raise FloatingPointError

    def deferred() -> None:
        guard = NaNGuard()
        for index in range(steps):
            guard.on_train_batch_start(trainer)
            guard.on_train_batch_end(trainer, None, {"loss": loss}, None, index)
        guard.check(trainer)

    return {"baseline": synchronous, "torch_lab": deferred}


def dispatch(steps: int) -> dict[str, Callable[[], Any]]:
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=True)
    trainer.strategy.connect(pl.LightningModule())  # hooks are called with it; nothing is fitted

    def run(callbacks: list[pl.Callback]) -> Callable[[], None]:
        def epoch() -> None:
            trainer.callbacks = callbacks
            for _ in range(steps):
                for hook, args in STEP_HOOKS.items():
                    call._call_callback_hooks(trainer, hook, *args)
        return epoch

    plain = [pl.Callback() for _ in range(6)]
    return {"baseline": run([*plain, ModelCheckpoint()]),
            "torch_lab": run([CallbackGroup(plain), Checkpoint()])}


COMPONENTS = {"loss mean": loss_means, "metric (Accuracy)": metrics, "NaN check": nan_checks,
              "callback dispatch": dispatch}


def main() -> None:
    parser = common.parser("step_components", __doc__.splitlines()[0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = 20 if args.smoke else EPOCH
    repeats = common.repeats(args)
    results = {}
    for name, build in COMPONENTS.items():
        functions = build(steps)
        results[name] = {side: per_step(function, steps, repeats) for side, function in functions.items()}
        results[name]["saved"] = results[name]["baseline"] - results[name]["torch_lab"]
    common.print_table(f"microseconds per step, best of {repeats}, {steps} steps",
                       [{"component": name, "Lightning / torchmetrics way": r["baseline"],
                         "torch-lab": r["torch_lab"], "saved": r["saved"]} for name, r in results.items()])
    common.write_json(args.out, {
        "benchmark": "step_components",
        "settings": {"steps": steps, "repeats": repeats, "smoke": args.smoke, "synthetic_data": True,
                     "timer": "perf_counter, best of the repeats", "torch_threads": 1},
        "environment": common.environment(),
        "components_us_per_step": results,
    })


if __name__ == "__main__":
    main()
