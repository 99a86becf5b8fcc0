"""Measurements that need a fresh Python process, run by ``startup.py`` (not a benchmark itself).
Only the standard library is imported at the top, so import times are the modules' own.

    python benchmarks/_probes.py import MODULE [MODULE ...]   # seconds per import, in order
    python benchmarks/_probes.py task torch-lab|defaults      # offline Task.init and close
    python benchmarks/_probes.py bare-dev-run HPARAMS DATA_DIR VAL_SIZE  # Lightning, 1 batch each

Each prints one JSON object of seconds on its last line.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any, Callable


def _timed(seconds: dict[str, float], name: str, function: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = function()
    seconds[name] = time.perf_counter() - start
    return result


def imports(modules: list[str]) -> dict[str, float]:
    """Seconds to import each of ``modules``, one after the other in this process."""
    seconds: dict[str, float] = {}
    for module in modules:
        start = time.perf_counter()
        importlib.import_module(module)
        seconds[module] = time.perf_counter() - start
    return seconds


def task(settings: str) -> dict[str, float]:
    """Seconds of an offline ``Task.init`` and ``close``: with torch-lab's settings
    (``tracking.configure`` + ``tracking.start_task``) or with ClearML's defaults."""
    seconds = imports(["torch", "pytorch_lightning", "clearml"])  # Lightning first, as torch-lab
    from clearml import Task

    if settings == "torch-lab":
        from torch_lab.tracking import task as tracking

        _timed(seconds, "configure", lambda: tracking.configure(offline=True))
        started = _timed(seconds, "task_init", lambda: tracking.start_task(
            {"project_name": "benchmarks"}, "startup", "training", [], offline=True))
    else:
        Task.set_offline(True)
        started = _timed(seconds, "task_init",
                         lambda: Task.init(project_name="benchmarks", task_name="startup"))
    _timed(seconds, "close", started.close)
    return seconds


def bare_dev_run(hparams_path: str, data_dir: str, val_size: str) -> dict[str, float]:
    """What ``train --dev-run 1`` trains, in a bare Lightning script: the demo's ``train_config``,
    one training, one validation and one test batch; no logger, checkpoints or ClearML."""
    seconds = imports(["pytorch_lightning"])
    import pytorch_lightning as pl
    from pathlib import Path

    from torch_lab.utils import import_script_as_module

    hparams = import_script_as_module(hparams_path).hparams
    hparams["config"].update(data_dir=data_dir, val_size=int(val_size))
    hparams["trainer"]["init"].update(max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                                      limit_test_batches=1)
    main = import_script_as_module(Path(hparams_path).parent / "__main__.py")
    pl.seed_everything(0, workers=True, verbose=False)
    config = _timed(seconds, "train_config", lambda: main.train_config(hparams))
    trainer = pl.Trainer(**hparams["trainer"]["init"], logger=False, enable_checkpointing=False)
    _timed(seconds, "fit", lambda: trainer.fit(config["module"], config["train_dataloaders"],
                                               config["val_dataloaders"]))
    _timed(seconds, "test", lambda: trainer.test(config["module"], config["test_dataloaders"]))
    return seconds


def main(argv: list[str]) -> None:
    probes: dict[str, Callable[..., dict[str, float]]] = {
        "import": lambda *modules: imports(list(modules)), "task": task, "bare-dev-run": bare_dev_run}
    print(json.dumps(probes[argv[0]](*argv[1:])))


if __name__ == "__main__":
    main(sys.argv[1:])
