"""The end of a run on the console: its outcome, best value, test metrics, duration, and where
everything is."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from torch_lab.console import streams as console
from torch_lab.text import duration_text


def summary(task_id: str, status: str, record: dict[str, Any], run_path: Path,
            session_zip: Path | None) -> None:
    """The end of a run: its outcome, best value, test metrics and duration, where everything
    is, and how to import an offline session. A failed run first shows the last warnings that
    went to console.log only."""
    active = console.current()
    if status == "failed" and active is not None and active.hidden:
        console.say(f"torch-lab: the last warnings in {run_path / console.LOG_NAME}:")
        for line in active.hidden:
            console.say(f"  {line}")
    parts = [f"torch-lab: {status}"]
    if active is not None:
        parts[0] += f" in {duration_text(time.monotonic() - active.started)}"
    best = record.get("best") or {}
    if isinstance(best.get("value"), (int, float)):
        parts.append(f"best {best['monitor']}={best['value']:.4g} (epoch {best.get('epoch')})")
    tests = {k: v for k, v in (record.get("metrics") or {}).items() if k.endswith("/test")}
    if tests:
        parts.append("test " + " ".join(f"{k}={v:.4g}" for k, v in sorted(tests.items())))
    console.say("; ".join(parts))
    console.say(f"torch-lab: task {task_id} {status}; run directory {run_path}")
    if session_zip:
        console.say(f"torch-lab: ClearML offline session {session_zip}; import it with: "
                    f"clearml-task --import-offline-session {session_zip}")
