"""What torch-lab adds to every training step, on a model so small that a step is mostly framework
overhead (``step_overhead_experiment/``: an MLP, batch 32, 2,000 steps an epoch, the second epoch
timed from its start to the end of training, epoch-end work and checkpoints included):

    hand_written      a plain PyTorch loop
    lightning         a bare ``pl.Trainer`` on a minimal LightningModule: no logger, checkpoints,
                      progress bar or metrics
    lightning_metric  the same plus a torchmetrics Accuracy updated every step, logged per epoch
    lightning_module  a bare ``pl.Trainer`` on torch-lab's ``TrainLabModule`` (its loss mean)
    lightning_defaults  ``pl.Trainer`` with its defaults (``ModelCheckpoint``, a ``CSVLogger``) on
                      ``TrainLabModule``: what a Lightning user runs without torch-lab
    train             the real ``train --offline`` command on the same experiment
    train_metric      ``train --offline`` with a torchmetrics Accuracy in ``TrainLabModule``
    train_before      ``train --offline`` with torch-lab imported from ``--before-src DIR`` (another
                      checkout's ``src``): before-and-after figures in one interleaved run

    python benchmarks/step_overhead.py [--repeats 5] [--steps 2000] [--variants a,b] [--smoke]

Every run is a fresh process with one torch thread (``OMP_NUM_THREADS=1``: the model is too
small for more, and spinning intra-op threads on shared cores only add noise). The variants are
interleaved, each round in another order, and the differences are paired within a round, so a
drifting machine speed hits both sides of a difference alike. Reported in microseconds per step,
by CPU time of the whole process (every thread: ClearML's too), which other processes on the same
cores barely disturb, by CPU time of the training thread alone (``time.thread_time``), and by wall
time: the median and the range over the rounds; and the other threads' CPU by owner (ClearML's,
torch's native pool) from ``/proc/self/task/*/stat``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from torch import nn

import common
from torch_lab.utils import import_script_as_module

EXPERIMENT = Path(__file__).parent / "step_overhead_experiment"
VARIANTS = ("hand_written", "lightning", "lightning_metric", "lightning_module", "lightning_defaults", "train",
            "train_metric", "train_before")
#: (name, variant, baseline): the paired differences reported.
DIFFERENCES = (
    ("Lightning over the hand-written loop", "lightning", "hand_written"),
    ("a torchmetrics update per step, in bare Lightning", "lightning_metric", "lightning"),
    ("TrainLabModule over a minimal module, bare Lightning", "lightning_module", "lightning"),
    ("train over bare Lightning, no metrics", "train", "lightning"),
    ("train over Lightning with its defaults", "train", "lightning_defaults"),
    ("train after over before", "train", "train_before"),
    ("a metric in train (per step, epoch end included)", "train_metric", "train"),
)
SMOKE_STEPS = 20
SMOKE_VARIANTS = ("lightning", "train")
#: The clocks reported: CPU time (of the whole process, every thread) is the main measure, as it is
#: nearly immune to other processes sharing the cores; wall time is reported beside it.
CLOCKS = {"cpu_seconds": "CPU", "thread_cpu_seconds": "training-thread CPU", "seconds": "wall"}


def experiment() -> Any:
    """The benchmark experiment's ``__main__.py``."""
    return import_script_as_module(EXPERIMENT / "__main__.py")


def hand_written(steps: int) -> dict[str, Any]:
    """The experiment's model, data and optimizer in a plain loop; the timed epoch's seconds."""
    main = experiment()
    pl.seed_everything(0, verbose=False)
    model, data = main.mlp(), main.loader(steps)
    optimizer = torch.optim.SGD(model.parameters(), lr=main.LEARNING_RATE)
    loss_function = nn.CrossEntropyLoss()
    for epoch in range(main.TIMED_EPOCH + 1):
        start = main.clocks()
        for x, y in data:
            loss = loss_function(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        end = main.clocks()
    return {"steps": len(data), **{name: end[name] - start[name] for name in end}}


class MinimalModule(pl.LightningModule):
    """Forward, loss, SGD; with ``metric``, a torchmetrics Accuracy updated each step and logged
    (as a Metric object, computed by Lightning) once per epoch."""

    def __init__(self, model: nn.Module, metric: Any = None) -> None:
        super().__init__()
        self.model, self.metric = model, metric
        self.loss_function = nn.CrossEntropyLoss()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        output = self.model(x)
        if self.metric is not None:
            self.metric.update(output.detach(), y)
            if batch_idx == 0:
                self.log("accuracy/train", self.metric, on_step=False, on_epoch=True)
        return self.loss_function(output, y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=experiment().LEARNING_RATE)


def lightning(variant: str, steps: int, timing_file: Path) -> dict[str, Any]:
    """A bare ``pl.Trainer`` (no logger, checkpoints, progress bar, summary) on the experiment, or
    with ``lightning_defaults`` one with its default ``ModelCheckpoint`` and a ``CSVLogger``."""
    main = experiment()
    pl.seed_everything(0, verbose=False)
    if variant in ("lightning_module", "lightning_defaults"):
        hparams = import_script_as_module(EXPERIMENT / "hparams.py").hparams
        module = main.train_config({**hparams, "config": {**hparams["config"], "steps": steps}})["module"]
    else:
        module = MinimalModule(main.mlp(), main.accuracy() if variant == "lightning_metric" else None)
    extra: dict[str, Any] = (
        {"logger": CSVLogger(timing_file.parent), "default_root_dir": timing_file.parent}
        if variant == "lightning_defaults" else {"logger": False, "enable_checkpointing": False})
    trainer = pl.Trainer(max_epochs=main.TIMED_EPOCH + 1, limit_val_batches=0, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1,
                         callbacks=[main.EpochTimer(str(timing_file))], **extra)
    trainer.fit(module, main.loader(steps))
    return json.loads(timing_file.read_text())


def train(metric: bool, steps: int, scratch: Path, src: Path | None = None) -> dict[str, Any]:
    """The real ``train --offline`` console script on the experiment, in its own process (with
    torch-lab from ``src`` when given)."""
    timing_file = scratch / "timing.json"
    overrides = {"config.steps": steps, "config.metric": metric, "config.timing_file": str(timing_file)}
    common.run_command([common.console_script("train"), EXPERIMENT / "hparams.py", "--offline",
                        *(part for key, value in overrides.items() for part in ("--set", f"{key}={value!r}"))],
                       env={**common.tracking_env(scratch), **({"PYTHONPATH": str(src)} if src else {})})
    return json.loads(timing_file.read_text())


def micros_per_step(timing: dict[str, Any], clock: str) -> float:
    return 1e6 * timing[clock] / timing["steps"]


def spread(values: list[float]) -> dict[str, float]:
    """Median, lowest and highest of ``values``."""
    return {"median": common.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = common.parser("step_overhead", __doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per epoch (default 2000)")
    parser.add_argument("--variants", help=f"comma-separated subset of {', '.join(VARIANTS)} "
                                           f"(default: all, train_before with --before-src; with --smoke: {','.join(SMOKE_VARIANTS)})")
    parser.add_argument("--before-src", type=Path, metavar="DIR",
                        help="another checkout's src folder, for the train_before variant")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--timing-file", type=Path, help=argparse.SUPPRESS)
    parser.set_defaults(repeats=5)
    args = parser.parse_args()
    steps = SMOKE_STEPS if args.smoke else args.steps
    if args.variant:  # the child side: one variant in this fresh process
        result = (hand_written(steps) if args.variant == "hand_written"
                  else lightning(args.variant, steps, args.timing_file))
        print(json.dumps(result))
        return
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by every variant's process
    everything = [v for v in VARIANTS if v != "train_before" or args.before_src]
    chosen = args.variants or ",".join(SMOKE_VARIANTS if args.smoke else everything)
    names = [name for name in chosen.split(",") if name]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    if "train_before" in names and not args.before_src:
        parser.error("the train_before variant needs --before-src DIR")
    timings: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        def run(name: str, index: int) -> dict[str, Any]:
            folder = Path(scratch) / f"{name}-{index}"
            folder.mkdir()
            if name.startswith("train"):
                return train(name == "train_metric", steps, folder,
                             args.before_src.resolve() if name == "train_before" else None)
            return common.in_fresh_process(__file__, name, "--steps", str(steps),
                                           "--timing-file", folder / "timing.json",
                                           *(["--smoke"] if args.smoke else []))

        for repeat in range(common.repeats(args)):
            shift = repeat % len(names)
            order = names[shift:] + names[:shift]
            print(f"round {repeat + 1}: {', '.join(order)} ...", flush=True)
            timings.append({name: run(name, repeat) for name in order})
    clocks = {clock: summarise(timings, names, clock) for clock in CLOCKS}
    for clock, label in CLOCKS.items():
        common.print_table(f"{label} microseconds per training step, {steps} steps, {len(timings)} rounds",
                           [{"variant": n, **v} for n, v in clocks[clock]["variants"].items()])
        if clocks[clock]["differences"]:
            common.print_table(f"paired differences, {label} microseconds per step",
                               [{"difference": k, **{s: d[s] for s in ("median", "min", "max")}}
                                for k, d in clocks[clock]["differences"].items()])
    threads = threads_per_step(timings, names)
    common.print_table("CPU microseconds per step by thread owner, median", [
        {"variant": name, **{owner: per_owner.get(owner, 0.0) for owner in sorted({o for v in threads.values() for o in v})}}
        for name, per_owner in threads.items()])
    common.write_json(args.out, {
        "benchmark": "step_overhead",
        "settings": {"steps": steps, "batch_size": experiment().BATCH_SIZE, "repeats": len(timings),
                     "torch_threads_per_variant": 1, "variants": names, "smoke": args.smoke,
                     "synthetic_data": True},
        "environment": common.environment(),
        "rounds": timings,
        **{f"{clock}_us_per_step": clocks[clock] for clock in CLOCKS},
        "thread_owner_cpu_us_per_step": threads,
    })


def threads_per_step(timings: list[dict[str, dict[str, Any]]], names: list[str]) -> dict[str, dict[str, float]]:
    """Per variant, the median over the rounds of each thread owner's CPU microseconds per step
    (the training thread, ClearML's threads, torch's native pool, ...)."""
    result = {}
    for name in names:
        rounds = [timing[name] for timing in timings if "threads" in timing[name]]
        owners = {owner for r in rounds for owner in r["threads"]}
        result[name] = {owner: common.median([1e6 * r["threads"].get(owner, 0.0) / r["steps"] for r in rounds])
                        for owner in sorted(owners)}
    return {name: owners for name, owners in result.items() if owners}


def summarise(timings: list[dict[str, dict[str, Any]]], names: list[str], clock: str) -> dict[str, Any]:
    """Per variant and per paired difference: median, min and max over the rounds of ``clock``."""
    rounds = [{name: micros_per_step(timing[name], clock) for name in names} for timing in timings]
    return {
        "variants": {name: spread([r[name] for r in rounds]) for name in names},
        "differences": {label: {"variant": a, "baseline": b, **spread([r[a] - r[b] for r in rounds])}
                        for label, a, b in DIFFERENCES if a in names and b in names},
    }


if __name__ == "__main__":
    main()
