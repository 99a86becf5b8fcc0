"""The MNIST demo with the step-overhead experiment's ``EpochTimer``: every thread's CPU seconds
over the second epoch (training and validation), by owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch_lab.utils import import_script_as_module

_HERE = Path(__file__).resolve().parent
_DEMO = _HERE.parents[1] / "src" / "example_project" / "experiments" / "00_mnist_demo"
_demo = import_script_as_module(_DEMO / "__main__.py")
_timer = import_script_as_module(_HERE.parent / "step_overhead_experiment" / "__main__.py").EpochTimer


def train_config(hparams: dict[str, Any]) -> dict[str, Any]:
    config = _demo.train_config(hparams)
    config["callbacks"] = [*config["callbacks"], _timer(hparams["config"]["timing_file"])]
    return config
