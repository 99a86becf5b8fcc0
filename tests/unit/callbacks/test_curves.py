"""CurvesPlot draws a run's history into curves.png; a drawing that fails never fails the run.
(A whole training run writing curves.png is in tests/test_runs.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from matplotlib.image import imread

from torch_lab.callbacks.history import RunHistory
from torch_lab.callbacks.curves import CurvesPlot
from torch_lab.storage.run_dir import RunDirectory

MONITOR = {"metric": "loss/val", "mode": "min", "patience": None}


def history_of(rows: list[dict]) -> RunHistory:
    history = RunHistory(RunDirectory.create("exp", "id-1"), MONITOR)
    history.rows = rows
    return history


def test_draw_groups_stages_into_panels(tmp_path: Path) -> None:
    # as a resumed run holds them: the rows read back from history.csv are strings
    rows = [{"epoch": str(e), "loss/train": str(1 / (e + 1)), "loss/val": "", "mae/val": "0.5",
             "mse/val": "0.25", "lr-Adam": "0.001", "train_seconds": "1.0", "val_seconds": "0.1"}
            for e in range(4)]
    plot = CurvesPlot(history_of(rows))
    plot.draw()
    # loss (train; val has no value), mae, mse, lr-Adam: 4 panels, 2 rows of 3.6 x 2.8 in at 80 dpi
    assert imread(plot.path).shape[:2] == (448, 864)
    assert len(plot.seconds) == 1 and not plot.failed


def test_a_failed_drawing_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    plot = CurvesPlot(history_of([{"epoch": 0, "loss/train": 1.0}]))
    plot.path.mkdir()  # curves.png cannot be replaced
    with caplog.at_level(logging.WARNING, logger="torch_lab.callbacks.curves"):
        plot._try_draw()
    assert plot.failed and plot.path.is_dir()
    [message] = caplog.messages
    assert message.startswith(f"could not draw {plot.path} ([Errno 21] Is a directory: ")
    assert message.endswith("); it stays as it was")
    assert not list(plot.path.parent.glob(".curves.png.*"))  # no temporary file left behind
