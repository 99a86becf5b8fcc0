"""Cost of per-step scalar logging to ClearML: a small training loop on the demo's model and data,
with every step's loss and learning rate sent through ``torch_lab.loggers.ClearMLLogger`` to an
offline task (torch-lab's ClearML settings), against the same loop without logging.

    python benchmarks/tracking_cost.py [--steps 500] [--repeats 3] [--clearml-defaults] [--smoke]

Reports the throughput ratio (on / off) and the largest single-step time, where a flush of
ClearML's event queue on the training thread would show up as a stall.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

import common
from example_project.models import SmallCNN

SCALARS_PER_STEP = 2  # loss and learning rate


def forever(loader: DataLoader) -> Iterator[Any]:
    """The batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def train_steps(hparams: dict[str, Any], loader: DataLoader, steps: int,
                log: Callable[[dict[str, float], int], None] | None) -> list[float]:
    """Seconds of each of ``steps`` training steps (batch fetch, forward, backward, optimizer step
    and, when ``log`` is given, the logging call)."""
    config = hparams["config"]
    pl.seed_everything(0, verbose=False)
    model = SmallCNN(**config["model"]).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"],
                                  weight_decay=config["weight_decay"])
    loss_function = nn.CrossEntropyLoss()
    batches = forever(loader)
    seconds = []
    for step in range(steps):
        start = time.perf_counter()
        x, metadata = next(batches)
        loss = loss_function(model(x), metadata["y"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if log is not None:
            log({"loss/train": loss.item(), "lr/train": optimizer.param_groups[0]["lr"]}, step)
        seconds.append(time.perf_counter() - start)
    return seconds


def start_task(clearml_defaults: bool) -> Any:
    """An offline ClearML task, with torch-lab's settings or ClearML's defaults."""
    from clearml import Task

    from torch_lab import tracking

    if clearml_defaults:
        Task.set_offline(True)
        return Task.init(project_name="benchmarks", task_name="tracking_cost")
    tracking.configure(offline=True)
    return tracking.start_task({"project_name": "benchmarks"}, "tracking_cost", "training", [],
                               offline=True)


def summary(runs: list[list[float]], batch_size: int) -> dict[str, Any]:
    """Median throughput and step times over repetitions, and the largest single step."""
    return {
        "samples_per_s": common.median([batch_size * len(r) / sum(r) for r in runs]),
        "median_step_s": common.median([common.median(r) for r in runs]),
        "max_step_s": max(max(r) for r in runs),
    }


def main() -> None:
    parser = common.parser("tracking_cost", __doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps per loop (default 500)")
    parser.add_argument("--clearml-defaults", action="store_true",
                        help="use ClearML's default settings instead of torch-lab's")
    args = parser.parse_args()
    steps = common.SMOKE_BATCHES if args.smoke else args.steps
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        os.environ.update(common.tracking_env(Path(scratch)))  # the offline session goes to scratch
        from torch_lab.loggers import ClearMLLogger

        data = common.prepare_data(args.data_dir, Path(scratch), args.smoke)
        hparams = common.demo_hparams(data)
        loader = common.train_loader(hparams)
        task = start_task(args.clearml_defaults)
        logger = ClearMLLogger(task)
        runs: dict[str, list[list[float]]] = {"logging_off": [], "logging_on": []}
        for repeat in range(common.repeats(args)):
            print(f"repetition {repeat + 1}: {steps} steps without, then with logging ...", flush=True)
            runs["logging_off"].append(train_steps(hparams, loader, steps, None))
            runs["logging_on"].append(train_steps(hparams, loader, steps, logger.log_metrics))
        close_seconds, _ = common.timed(task.close)
    modes = {name: summary(r, loader.batch_size) for name, r in runs.items()}
    ratio = modes["logging_on"]["samples_per_s"] / modes["logging_off"]["samples_per_s"]
    settings = "ClearML defaults" if args.clearml_defaults else "torch-lab settings"
    common.print_table(
        f"{steps} steps x {loader.batch_size} samples, {SCALARS_PER_STEP} scalars per step "
        f"({settings}), median of {common.repeats(args)}",
        [{"mode": name, "samples/s": m["samples_per_s"], "median step ms": 1000 * m["median_step_s"],
          "max step ms": 1000 * m["max_step_s"]} for name, m in modes.items()])
    print(f"throughput ratio logging on / off: {ratio:.3f}; task close: {close_seconds:.2f} s")
    common.write_json(args.out, {
        "benchmark": "tracking_cost",
        "settings": {"steps": steps, "batch_size": loader.batch_size,
                     "scalars_per_step": SCALARS_PER_STEP, "clearml_settings": settings,
                     "repeats": common.repeats(args), "synthetic_data": data.synthetic,
                     "smoke": args.smoke},
        "environment": common.environment(),
        "modes": modes,
        "ratio_on_off": ratio,
        "max_step_stall_s_logging_on": modes["logging_on"]["max_step_s"],
        "task_close_s": close_seconds,
    })


if __name__ == "__main__":
    main()
