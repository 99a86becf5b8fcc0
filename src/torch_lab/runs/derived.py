"""What a run directory tells beyond run.json's fields: the kind of run (training or one of the
other commands' tasks) and, for a run that has not recorded its best yet, the best so far.
Standard library only."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

#: run.json's ``task_type`` -> the kind ``runs`` shows (``train`` for the rest).
KINDS = {"testing": "test", "inference": "infer", "custom": "export"}
#: Task name prefixes of the commands (for a run.json from before ``task_type``).
PREFIXES = {"lr_find_": "lr-find", "test_": "test", "infer_": "infer", "export_": "export"}


def kind(record: dict[str, Any]) -> str:
    """``train``, ``test`` (``--test-only``), ``infer``, ``export`` or ``lr-find`` (``--lr-find``:
    a training task of its own, named ``lr_find_<experiment>``)."""
    name, task_type = str(record.get("task_name", "")), record.get("task_type")
    if task_type in KINDS:
        return KINDS[task_type]
    by_name = next((found for prefix, found in PREFIXES.items() if name.startswith(prefix)), "train")
    return by_name if task_type is None or by_name == "lr-find" else "train"


def best_so_far(path: Path, monitor: Any) -> dict[str, Any] | None:
    """The best epoch in ``path``'s history.csv by ``monitor`` (hparams.json's block: metric and
    mode), as run.json records a best, when checkpoints/best.ckpt holds it; None when there is
    no best.ckpt, no such column or no finite value."""
    if not isinstance(monitor, dict) or not (path / "checkpoints" / "best.ckpt").is_file():
        return None
    metric, mode = monitor.get("metric"), monitor.get("mode", "min")
    try:
        with open(path / "history.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    scored = []
    for row in rows:
        try:
            value, epoch = float(row.get(metric) or "nan"), int(float(row.get("epoch") or "nan"))
        except (TypeError, ValueError, OverflowError):
            continue
        if math.isfinite(value):
            scored.append((value if mode == "min" else -value, epoch, value))
    if not scored:
        return None
    _, epoch, value = min(scored)  # the first epoch on ties, as ModelCheckpoint keeps it
    return {"monitor": metric, "mode": mode, "value": value, "epoch": epoch,
            "path": str(path / "checkpoints" / "best.ckpt")}
