"""The ``CurvesPlot`` callback: each training run keeps ``curves.png`` in its run directory, its
metrics by epoch (a panel per metric, a line per stage), redrawn from the run's history rows."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pytorch_lightning as pl

from torch_lab.callbacks.history import RunHistory
from torch_lab.figures import draw, figure, figure_bytes, history_curves
from torch_lab.storage.atomic import atomic_file

log = logging.getLogger(__name__)

#: The largest share of the training time spent drawing: an epoch end is skipped when the last
#: drawing took more than this share of the time since (the end of training always draws).
MAX_SHARE = 0.05


class CurvesPlot(pl.Callback):
    """Draw ``curves.png`` from ``history``'s rows at each train epoch end (after ``RunHistory``
    has added the epoch's row), at the end of training, and when the run fails; rank zero only.
    Very short epochs are drawn less often, so that drawing stays under ``MAX_SHARE`` of the run.
    A drawing that fails is logged and not retried; it never fails the run."""

    def __init__(self, history: RunHistory) -> None:
        self.history = history
        self.path = history.run.path / "curves.png"
        self.seconds: list[float] = []  # each drawing's cost, for the benchmarks
        self._drawn_at = 0.0
        self._drawn_row: dict[str, Any] | None = None
        self.failed = False  # a drawing failed: no more for this run

    def draw(self) -> None:
        """Render the history rows into curves.png (atomically: readers never see a torn file)."""
        began = time.perf_counter()
        panels: dict[str, list[tuple[str, list[float], list[float]]]] = {}
        for name, (epochs, values) in history_curves(self.history.rows).items():
            metric, _, stage = name.rpartition("/")
            panels.setdefault(metric or name, []).append((stage or name, epochs, values))
        fig = figure(len(panels), width=3.6, height=2.8, dpi=80, constrained=False)  # no pyplot: freed
        draw(fig, panels, "epoch")
        rows = math.ceil(len(panels) / 3)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.16 / rows, top=1 - 0.1 / rows, wspace=0.3,
                            hspace=0.5)
        with atomic_file(self.path) as handle:
            handle.write(figure_bytes(fig))
        self._drawn_at = time.perf_counter()
        self._drawn_row = self.history.rows[-1]
        self.seconds.append(self._drawn_at - began)

    def _due(self, trainer: pl.Trainer) -> bool:
        """Whether this process writes the run directory and has a row not drawn yet."""
        rows = self.history.rows
        return (not self.failed and trainer.is_global_zero and self.history.run.writable and bool(rows)
                and rows[-1] is not self._drawn_row)

    def _try_draw(self) -> None:
        """Draw; a failure (e.g. a full disk) is a warning, and the last drawing stays: the run
        goes on, and reports its own errors (a checkpoint that cannot be written, ...)."""
        try:
            self.draw()
        except Exception as error:
            self.failed = True
            log.warning("could not draw %s (%s); it stays as it was", self.path, error)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self._due(trainer):
            return
        if self.seconds and time.perf_counter() - self._drawn_at < self.seconds[-1] / MAX_SHARE:
            return
        self._try_draw()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._due(trainer):
            self._try_draw()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                     exception: BaseException) -> None:
        if self._due(trainer):
            self._try_draw()
