"""torch-lab: launch PyTorch Lightning experiments from hparams scripts, tracked in ClearML.

Importing this package is cheap: torch, Lightning and clearml load only in the submodules that
need them (``torch_lab.modules``, ``torch_lab.tracking.task``, ...).
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``: the installed distribution's, i.e. pyproject.toml's (written once, there);
    read on demand, so importing torch_lab stays cheap."""
    if name != "__version__":
        raise AttributeError(f"module 'torch_lab' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch-lab")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"
