"""torch-lab: launch PyTorch Lightning experiments from hparams scripts, tracked in ClearML.

Importing this package is cheap: torch, Lightning and clearml load only in the submodules that
need them (``torch_lab.modules``, ``torch_lab.tracking.task``, ...).
"""

__version__ = "2.0.0"
