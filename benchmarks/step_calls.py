"""Python function calls per training step, counted (``sys.setprofile``), not timed: exact and
independent of the machine's load. On ``step_overhead_experiment/`` (an MLP, batch 32, its
``TrainLabModule``), over 100 steps of the second epoch, in the training thread:

    lightning           a bare ``pl.Trainer``: no logger, checkpoints, progress bar or summary
    lightning_defaults  ``pl.Trainer`` with its defaults: ``ModelCheckpoint`` and a ``CSVLogger``
    train               the real ``train --offline`` command

and the functions torch-lab's own modules run per step, with their counts.

    python benchmarks/step_calls.py [--steps 300] [--smoke]
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger

import common
from torch_lab.utils import import_script_as_module

EXPERIMENT = Path(__file__).parent / "step_overhead_experiment"
VARIANTS = ("lightning", "lightning_defaults", "train")
#: Calls per step in torch-lab's own modules during ``train``, as measured when this benchmark was
#: written (torch-lab 2.0.0, Lightning 2.6); tests fail past it plus 10%.
RECORDED_TORCH_LAB_CALLS = 20.0
#: Where a code object's file lies: the group its calls count in.
GROUPS = (("torch_lab", "/torch_lab/"), ("step_overhead_experiment", "step_overhead_experiment"),
          ("clearml", "/clearml/"), ("lightning", "/pytorch_lightning/"), ("lightning", "/lightning_fabric/"),
          ("torchmetrics", "/torchmetrics/"), ("torch", "/torch/"))


def group_of(path: str) -> str:
    return next((name for name, part in GROUPS if part in path), "other")


def counts(variant: str, steps: int, scratch: Path) -> dict[str, Any]:
    """The call counts of one variant (in a fresh process for ``train``)."""
    calls_file = scratch / f"{variant}.json"
    if variant == "train":
        overrides = {"config.steps": steps, "config.calls_file": str(calls_file)}
        common.run_command([common.console_script("train"), EXPERIMENT / "hparams.py", "--offline",
                            *(part for key, value in overrides.items() for part in ("--set", f"{key}={value!r}"))],
                           env=common.tracking_env(scratch / "train"))
        return json.loads(calls_file.read_text())
    main = import_script_as_module(EXPERIMENT / "__main__.py")
    hparams = import_script_as_module(EXPERIMENT / "hparams.py").hparams
    pl.seed_everything(0, verbose=False)
    config = main.train_config({**hparams, "config": {**hparams["config"], "steps": steps,
                                                      "calls_file": str(calls_file)}})
    extra: dict[str, Any] = (
        {"logger": False, "enable_checkpointing": False} if variant == "lightning"
        else {"logger": CSVLogger(scratch / variant), "default_root_dir": scratch / variant})
    trainer = pl.Trainer(max_epochs=main.TIMED_EPOCH + 1, limit_val_batches=0, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1,
                         callbacks=config["callbacks"], **extra)
    trainer.fit(config["module"], config["train_dataloaders"])
    return json.loads(calls_file.read_text())


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Calls per step: in all, by group, and torch-lab's functions."""
    steps = result["steps"]
    groups: collections.Counter = collections.Counter()
    own = []
    for row in result["calls"]:
        group = group_of(row["file"])
        groups[group] += row["calls"]
        if group == "torch_lab":
            module = row["file"].split("/torch_lab/", 1)[1].removesuffix(".py").replace("/", ".")
            own.append({"function": f"{module}.{row['function']}", "per_step": row["calls"] / steps})
    return {"per_step": sum(groups.values()) / steps,
            "by_group": {name: n / steps for name, n in groups.most_common()},
            "torch_lab_functions": own}


def main() -> None:
    parser = common.parser("step_calls", __doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="steps per epoch (default 300)")
    args = parser.parse_args()
    steps = 120 if args.smoke else max(args.steps, 120)
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        results = {variant: summary(counts(variant, steps, Path(scratch))) for variant in VARIANTS}
    base = results["lightning_defaults"]["per_step"]
    own = results["train"]["by_group"].get("torch_lab", 0.0)
    common.print_table("Python calls per training step (training thread)",
                       [{"variant": name, "calls/step": r["per_step"], "x lightning_defaults": r["per_step"] / base,
                         **{f"{g}": r["by_group"].get(g, 0.0) for g in ("torch_lab", "lightning", "torch", "clearml")}}
                        for name, r in results.items()])
    common.print_table("torch-lab's own functions per step in train",
                       [{"function": f["function"], "calls/step": f["per_step"]}
                        for f in results["train"]["torch_lab_functions"]])
    print(f"torch-lab's own calls per step: {own:.1f} (recorded {RECORDED_TORCH_LAB_CALLS}); train / "
          f"lightning_defaults: {results['train']['per_step'] / base:.3f}")
    common.write_json(args.out, {
        "benchmark": "step_calls",
        "settings": {"steps": steps, "window": 100, "smoke": args.smoke, "synthetic_data": True},
        "environment": common.environment(),
        "variants": results,
        "ratio_train/lightning_defaults": results["train"]["per_step"] / base,
        "torch_lab_calls_per_step": own,
        "recorded_torch_lab_calls_per_step": RECORDED_TORCH_LAB_CALLS,
    })


if __name__ == "__main__":
    sys.exit(main())
