"""Layer 2, on hparams_wide.py: more epochs at a lower learning rate."""

from pathlib import Path

from torch_lab.utils import import_script_as_module

hparams = import_script_as_module(Path(__file__).parent / "hparams_wide.py").hparams
hparams["trainer"]["init"]["max_epochs"] = 16
hparams["config"]["learning_rate"] = 3e-3
