"""The experiment's own Lightning loggers (``train_config``'s ``loggers``), beside ClearML's: built
in the run directory, given the resolved hparams, and continued by a resumed run."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

from torch_lab.errors import UserError, display_path
from torch_lab.experiment.config import logger_items, logger_labels, logger_of
from torch_lab.launch.tracked import TrackedRun
from torch_lab.runs.records import flatten
from torch_lab.storage.board_links import link_board
from torch_lab.storage.atomic import write_atomic
from torch_lab.storage.run_dir import artifacts_root

log = logging.getLogger(__name__)


def own_loggers(tracked: TrackedRun, config: dict[str, Any], resumed_from: Path | None) -> list[Logger]:
    """``config["loggers"]``, functions called with the run directory, each given the hparams.

    Resumed (from ``resumed_from``, a checkpoint at global step S), the resumed run logs the steps
    from S on again, so they are dropped as on the ClearML task (see torch_lab.tracking.sync): a
    CSVLogger's metrics.csv is rewritten (atomically) with its rows before step S, a torn last row
    dropped, and its writer appends to it (Lightning's deletes the file when it starts, holding
    the rows in memory); a TensorBoardLogger's writer gets ``purge_step=S`` (TensorBoard then
    ignores the earlier files' events from step S on). A TensorBoardLogger's folder in the run
    directory gets a readable TensorBoard run name (``_name_boards``)."""
    labels = logger_labels(config.get("loggers"))
    loggers = [logger_of(tracked.experiment.main_path, label, item, tracked.run.path)
               for label, item in zip(labels, logger_items(config.get("loggers")))]
    if not tracked.rank_zero:
        return loggers
    check_folders(tracked.experiment.main_path, labels, loggers, resumed=resumed_from is not None)
    step = None
    if resumed_from is not None and any(isinstance(item, (CSVLogger, TensorBoardLogger)) for item in loggers):
        step = torch.load(resumed_from, map_location="cpu", weights_only=True, mmap=True)["global_step"]
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            _keep_csv_rows(logger, step)
        if isinstance(logger, TensorBoardLogger):
            if step is not None:
                logger._kwargs.setdefault("purge_step", step)  # SummaryWriter's argument, for its next start
            _tensorboard_hparams(logger, tracked.hparams)
        else:
            logger.log_hyperparams(tracked.hparams)
    _name_boards(tracked, loggers)
    return loggers


def best_tag(metric: str) -> str:
    """The scalar of a run's best value of its monitored ``metric``: the metric of TensorBoard's
    HParams tab (which shows a metric's last value; ``metric`` itself ends at the last epoch's)."""
    return f"best/{metric}"


def _tensorboard_hparams(logger: TensorBoardLogger, hparams: dict[str, Any]) -> None:
    """The hparams for TensorBoard's HParams tab, with dotted keys (``trainer.init.max_epochs``, as
    ``--set`` names them), against the ``best_tag`` scalar that ``log_best`` writes: not Lightning's
    placeholder scalar ``hp_metric`` (-1, once more at every resume)."""
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    logger._default_hp_metric = False
    logger.log_hyperparams(hparams)  # its hparams.yaml
    values = logger._sanitize_params(flatten(hparams))
    writer = logger.experiment._get_file_writer()
    for summary in hparams_summaries(values, {best_tag(hparams["monitor"]["metric"]): 0.0}):  # names the tag only
        writer.add_summary(summary)


def log_best(loggers: list[Logger], best: dict[str, Any], step: int) -> None:
    """The run's best value (run.json's ``best``) as each TensorBoardLogger's ``best_tag`` scalar
    at ``step`` (the end of fit), flushed: the HParams tab shows it beside the run's hparams."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger) and best.get("value") is not None:
            logger.log_metrics({best_tag(best["monitor"]): best["value"]}, step)
            logger.experiment.flush()


def _name_boards(tracked: TrackedRun, loggers: list[Logger]) -> None:
    """Link the TensorBoardLoggers' folders inside the run directory under a readable TensorBoard
    run name (see torch_lab.storage.board_links); loggers writing elsewhere have the user's names."""
    run = tracked.run.path.absolute()
    folders = [Path(folder) for logger in loggers if isinstance(logger, TensorBoardLogger)
               and (folder := _log_dir(logger)) is not None and Path(folder).is_relative_to(os.path.realpath(run))]
    if folders:
        link_board(artifacts_root().absolute(), Path(os.path.realpath(run)), tracked.run.record,
                   tracked.hparams.get("seed"), folders)


def check_folders(main_path: Path, labels: list[str], loggers: list[Any], resumed: bool) -> None:
    """Two loggers writing one folder, or a new run's CSVLogger in a folder whose metrics.csv holds
    another run's rows (Lightning would replace them): a ``UserError`` naming the loggers."""
    seen: dict[str, str] = {}
    for label, logger in zip(labels, loggers):
        folder = _log_dir(logger)
        if folder is None:
            continue
        if folder in seen:
            raise UserError(f"{display_path(main_path)}: train_config's '{seen[folder]}' and '{label}' both "
                            f"write {display_path(folder)}; give each logger its own folder")
        seen[folder] = label
        metrics = Path(folder) / ExperimentWriter.NAME_METRICS_FILE
        if isinstance(logger, CSVLogger) and not resumed and _rows(metrics)[1]:
            raise UserError(f"{display_path(main_path)}: train_config's '{label}' would replace "
                            f"{display_path(metrics)}, another run's log; give each run its own "
                            "version (e.g. version=run.name in a function of the run directory)")


def _log_dir(logger: Any) -> str | None:
    """Where a Logger writes, when it says (``log_dir``; None for most remote ones)."""
    try:
        folder = logger.log_dir if isinstance(logger, Logger) else None
    except Exception:  # a logger of the experiment's own whose property fails: not ours to check
        return None
    return os.path.realpath(folder) if isinstance(folder, (str, os.PathLike)) else None


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and whole rows of a metrics.csv (none when absent); a torn last row (a write cut
    short by a kill) is left out."""
    if not path.is_file():
        return [], []
    text = path.read_text()
    if text and not text.endswith("\n"):
        log.warning("dropping the torn last row of %s (a write cut short)", path)
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    return header, [row for row in reader if None not in row and None not in row.values()]


def _keep_csv_rows(logger: CSVLogger, step: int | None) -> None:
    """Give ``logger`` a writer that appends to its metrics.csv, first rewritten with its rows
    before ``step`` (a resumed run's checkpoint step; None: a new run, whose file holds no rows)."""
    writer = _AppendingWriter(logger.log_dir)
    header, rows = _rows(Path(writer.metrics_file_path))
    kept = [row for row in rows if step is not None and _step(row) < step]
    if header and kept:
        writer.metrics_keys = header
        write_atomic(Path(writer.metrics_file_path), _csv_text(header, kept))
    else:
        Path(writer.metrics_file_path).unlink(missing_ok=True)
    logger._experiment = writer


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")


def _csv_text(header: list[str], rows: list[dict[str, Any]]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, but the rows on disk stay there: it neither deletes metrics.csv when
    it starts nor rewrites it in place when a column is added (atomically instead), so a kill at
    any moment loses no row already written."""

    def _check_log_dir_exists(self) -> None:
        """Lightning's deletes the file here."""

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        path = Path(self.metrics_file_path)
        write_atomic(path, _csv_text(fieldnames, _rows(path)[1]))
