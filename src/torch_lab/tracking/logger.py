"""A Lightning logger that sends every logged scalar to a ClearML task."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from clearml import Task
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only


def plot_and_series(name: str) -> tuple[str, str]:
    """``"loss/val"`` -> ``("loss", "val")``: one ClearML plot per metric, one series per stage."""
    title, _, series = name.rpartition("/")
    return (title, series) if title else (name, name)


class ClearMLLogger(Logger):
    """Report Lightning's logged metrics to ``task`` (rank zero only), at the global step.

    ClearML's reporter queues events and sends them from its own thread, so ``log_metrics`` does
    not block training (torch-lab raises ClearML's flush threshold, see ``torch_lab.tracking.task``).
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        self._task = task

    @property
    def name(self) -> str:
        return "clearml"

    @property
    def version(self) -> str:
        return self._task.id

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Hparams are connected to the task by the launcher; nothing to do here."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        reporter = self._task.get_logger()
        for name, value in metrics.items():
            if name == "epoch":
                continue
            title, series = plot_and_series(name)
            reporter.report_scalar(title, series, value=float(value), iteration=step or 0)
