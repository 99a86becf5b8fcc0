"""The experiment's own Lightning loggers (``train_config``'s ``loggers``), beside ClearML's: built
in the run directory, given the resolved hparams, and continued by a resumed run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from torch_lab.experiment.config import logger_of
from torch_lab.launch.tracked import TrackedRun


def own_loggers(tracked: TrackedRun, config: dict[str, Any], resumed_from: Path | None) -> list[Logger]:
    """``config["loggers"]``, functions called with the run directory, each given the hparams.

    Resumed (from ``resumed_from``, a checkpoint at global step S), the resumed run logs the steps
    from S on again, so they are dropped as on the ClearML task (see torch_lab.tracking.sync): a
    CSVLogger keeps the rows of its metrics.csv before step S (Lightning's CSV writer deletes the
    file when it starts), a TensorBoardLogger's writer gets ``purge_step=S`` (TensorBoard then
    ignores the earlier files' events from step S on)."""
    loggers = [logger_of(tracked.experiment.main_path, index, item, tracked.run.path)
               for index, item in enumerate(config.get("loggers") or [])]
    if not tracked.rank_zero:
        return loggers
    step = None
    if resumed_from is not None and any(isinstance(item, (CSVLogger, TensorBoardLogger)) for item in loggers):
        step = torch.load(resumed_from, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    for logger in loggers:
        if step is not None and isinstance(logger, CSVLogger):
            _keep_csv_rows(logger, step)
        if step is not None and isinstance(logger, TensorBoardLogger):
            logger._kwargs.setdefault("purge_step", step)  # SummaryWriter's argument, for its next start
        logger.log_hyperparams(tracked.hparams)
    return loggers


def _keep_csv_rows(logger: CSVLogger, step: int) -> None:
    """Put the rows of ``logger``'s metrics.csv before ``step`` back into its writer."""
    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(float(row["step"])) < step]
    writer = logger.experiment  # deletes the file; its next save writes the kept rows first
    writer.metrics[:0] = rows
