"""The MNIST demo's hparams for ``benchmarks/thread_cpu.py``: 2 epochs, the second timed; the
benchmark sets the data directory, the batches per epoch and the timing file with ``--set``."""

from pathlib import Path

from torch_lab.utils import import_script_as_module

_DEMO = Path(__file__).resolve().parents[2] / "src" / "example_project" / "experiments" / "00_mnist_demo"

hparams = import_script_as_module(_DEMO / "hparams.py").hparams
hparams["task"]["project_name"] = "benchmarks"
hparams["trainer"]["init"].update(max_epochs=2, enable_progress_bar=False, accelerator="cpu")
hparams["config"].update(debug_images=0, timing_file=None)
