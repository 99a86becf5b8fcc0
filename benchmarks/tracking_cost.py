"""Cost of per-step scalar logging to ClearML: a small training loop on the demo's model and data,
with every step's loss and learning rate sent through ``torch_lab.tracking.logger.ClearMLLogger`` to an
offline task (torch-lab's ClearML settings), against the same loop without logging.

    python benchmarks/tracking_cost.py [--steps 1000] [--repeats 3] [--clearml-defaults] [--smoke]

Logging is on in every other block of steps of the same loop. Reports the throughput ratio (on /
off) and the stall: the longest time a logging call held the training thread (a flush of ClearML's
event queue on that thread would show up there), besides the largest step time of each mode.
Also the cost of redrawing a run's curves.png (``torch_lab.callbacks.curves.CurvesPlot``) at an epoch end,
for histories of several lengths, and its share of one epoch of this loop.
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
BLOCK = 25  # steps: logging alternates on and off in blocks of this many steps
WARMUP_STEPS = 10


def forever(loader: DataLoader) -> Iterator[Any]:
    """The batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def train_steps(hparams: dict[str, Any], loader: DataLoader, steps: int,
                log: Callable[[dict[str, float], int], None]) -> dict[str, list[float]]:
    """Train ``steps`` steps, logging in every other block of ``BLOCK`` steps, so that drifting
    machine speed hits both modes alike. Returns the seconds of each step (batch fetch, forward,
    backward, optimizer step and the logging call) by mode, and the seconds of each logging call:
    the time tracking blocks the training thread."""
    config = hparams["config"]
    pl.seed_everything(0, verbose=False)
    model = SmallCNN(**config["model"]).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"],
                                  weight_decay=config["weight_decay"])
    loss_function = nn.CrossEntropyLoss()
    batches = forever(loader)
    seconds: dict[str, list[float]] = {"logging_off": [], "logging_on": [], "log_calls": []}
    for step in range(WARMUP_STEPS + steps):
        logging_on = (step // BLOCK) % 2 == 1
        start = time.perf_counter()
        x, metadata = next(batches)
        loss = loss_function(model(x), metadata["y"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if logging_on:
            log_start = time.perf_counter()
            log({"loss/train": loss.item(), "lr/train": optimizer.param_groups[0]["lr"]}, step)
            log_seconds = time.perf_counter() - log_start
        end = time.perf_counter()
        if step >= WARMUP_STEPS:  # the first steps pay one-off costs in both modes
            seconds["logging_on" if logging_on else "logging_off"].append(end - start)
            if logging_on:
                seconds["log_calls"].append(log_seconds)
    return seconds


def start_task(clearml_defaults: bool) -> Any:
    """An offline ClearML task, with torch-lab's settings or ClearML's defaults."""
    from clearml import Task

    from torch_lab.tracking import task as tracking

    if clearml_defaults:
        Task.set_offline(True)
        return Task.init(project_name="benchmarks", task_name="tracking_cost")
    tracking.configure(offline=True)
    return tracking.start_task({"project_name": "benchmarks"}, "tracking_cost", "training", [],
                               offline=True)


def curves_cost(scratch: Path, smoke: bool) -> dict[str, Any]:
    """Seconds of ``CurvesPlot.draw`` over histories of the demo's metrics: the first drawing
    (it imports matplotlib) and the median of 3 at each history length, wall and CPU (the CPU
    time moves less with the machine's load)."""
    from torch_lab.callbacks.history import RunHistory
    from torch_lab.callbacks.curves import CurvesPlot
    from torch_lab.storage.run_dir import RunDirectory

    run = RunDirectory.create("curves", "bench", root=scratch / "curves")
    history = RunHistory(run, {"metric": "loss/val", "mode": "min", "patience": None})
    plot = CurvesPlot(history)
    row = {"accuracy/train": 0.9, "accuracy/val": 0.95, "loss/train": 0.3, "loss/val": 0.2,
           "lr-AdamW": 1e-3, "train_seconds": 10.0, "val_seconds": 1.0}
    lengths = [5] if smoke else [5, 20, 100]
    history.rows = [{"epoch": 0, **row}]
    first, _ = common.timed(plot.draw)
    wall, cpu = {}, {}
    for length in lengths:
        times, cpu_times = [], []
        for _ in range(1 if smoke else 3):
            history.rows = [{"epoch": e, **{k: v / (1 + e) for k, v in row.items()}} for e in range(length)]
            cpu_start = time.process_time()
            times.append(common.timed(plot.draw)[0])
            cpu_times.append(time.process_time() - cpu_start)
        wall[str(length)], cpu[str(length)] = common.median(times), common.median(cpu_times)
    return {"first_draw_s": first, "draw_s_by_epochs": wall, "draw_cpu_s_by_epochs": cpu}


def summary(runs: list[list[float]], batch_size: int) -> dict[str, Any]:
    """Median throughput and step times over repetitions, and the largest single step."""
    return {
        "samples_per_s": common.median([batch_size * len(r) / sum(r) for r in runs]),
        "median_step_s": common.median([common.median(r) for r in runs]),
        "max_step_s": max(max(r) for r in runs),
    }


def main() -> None:
    parser = common.parser("tracking_cost", __doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps per loop (default 1000)")
    parser.add_argument("--clearml-defaults", action="store_true",
                        help="use ClearML's default settings instead of torch-lab's")
    args = parser.parse_args()
    steps = 2 * BLOCK if args.smoke else args.steps
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        os.environ.update(common.tracking_env(Path(scratch)))  # the offline session goes to scratch
        from torch_lab.tracking.logger import ClearMLLogger

        data = common.prepare_data(args.data_dir, Path(scratch), args.smoke)
        hparams = common.demo_hparams(data)
        loader = common.train_loader(hparams)
        task = start_task(args.clearml_defaults)
        logger = ClearMLLogger(task)
        runs: dict[str, list[list[float]]] = {"logging_off": [], "logging_on": [], "log_calls": []}
        for repeat in range(common.repeats(args)):
            print(f"repetition {repeat + 1}: {steps} steps, logging on in every other block of "
                  f"{BLOCK} ...", flush=True)
            for name, values in train_steps(hparams, loader, steps, logger.log_metrics).items():
                runs[name].append(values)
        close_seconds, _ = common.timed(task.close)
        curves = curves_cost(Path(scratch), args.smoke)
    modes = {name: summary(runs[name], loader.batch_size) for name in ("logging_off", "logging_on")}
    ratio = modes["logging_on"]["samples_per_s"] / modes["logging_off"]["samples_per_s"]
    longest_log_call = max(max(r) for r in runs["log_calls"])
    settings = "ClearML defaults" if args.clearml_defaults else "torch-lab settings"
    common.print_table(
        f"{steps} steps x {loader.batch_size} samples, {SCALARS_PER_STEP} scalars per logged step "
        f"({settings}), median of {common.repeats(args)}",
        [{"mode": name, "samples/s": m["samples_per_s"], "median step ms": 1000 * m["median_step_s"],
          "max step ms": 1000 * m["max_step_s"]} for name, m in modes.items()])
    print(f"throughput ratio logging on / off: {ratio:.3f}; longest logging call (stall): "
          f"{1000 * longest_log_call:.1f} ms; task close: {close_seconds:.2f} s")
    epoch_s = len(loader) * modes["logging_off"]["median_step_s"]  # one demo epoch of this loop
    curves["share_of_demo_epoch"] = max(curves["draw_s_by_epochs"].values()) / epoch_s
    print("curves.png per epoch end: " + ", ".join(
        f"{1000 * s:.0f} ms ({1000 * curves['draw_cpu_s_by_epochs'][n]:.0f} ms CPU) at {n} epochs"
        for n, s in curves["draw_s_by_epochs"].items())
        + f" ({100 * curves['share_of_demo_epoch']:.2f}% of a {epoch_s:.1f} s demo epoch); "
        f"first drawing, importing matplotlib: {curves['first_draw_s']:.2f} s")
    common.write_json(args.out, {
        "benchmark": "tracking_cost",
        "settings": {"steps": steps, "block": BLOCK, "warmup_steps": WARMUP_STEPS,
                     "batch_size": loader.batch_size, "scalars_per_step": SCALARS_PER_STEP,
                     "clearml_settings": settings, "repeats": common.repeats(args),
                     "synthetic_data": data.synthetic, "smoke": args.smoke},
        "environment": common.environment(),
        "modes": modes,
        "ratio_on_off": ratio,
        "max_step_stall_s_logging_on": longest_log_call,
        "task_close_s": close_seconds,
        "curves_png": curves,
    })


if __name__ == "__main__":
    main()
