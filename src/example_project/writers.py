"""Prediction writers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter


class CSVPredictionWriter(BasePredictionWriter):
    """Write ``index,prediction`` rows, sorted by index, to ``path`` when prediction ends
    (``index,prediction_0,prediction_1,...`` when each prediction is a vector).

    Expects ``predict_step`` outputs ``{"y_pred": class ids or values, "md": {"index": ...}}``
    (what ``LabModule`` returns with ``output_transform=argmax``).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.path = Path(path)
        self.rows: list[tuple[int, Any]] = []

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        indices = prediction["md"]["index"].tolist()
        self.rows += zip(indices, torch.as_tensor(prediction["y_pred"]).tolist())

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = sorted(self.rows)
        width = len(rows[0][1]) if rows and isinstance(rows[0][1], list) else None
        with open(self.path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["index", *([f"prediction_{i}" for i in range(width)] if width else ["prediction"])])
            writer.writerows([index, *value] if width else [index, value] for index, value in rows)
