"""A resume from a checkpoint rewinds the offline session's metrics: through the real ``train``."""

from __future__ import annotations

import pytest

import json
from pathlib import Path

from conftest import run_cli, session_scalars


@pytest.mark.slow  # several real runs: the slow stage keeps the default suite short
def test_resume_drops_a_torn_last_metrics_line(toy: Path, tmp_path: Path) -> None:
    """A kill mid-write leaves half a line at the end of metrics.jsonl: every ``--resume`` failed
    with JSONDecodeError (issue 20, item 18). The torn tail is dropped; each scalar stays once."""
    crashed = run_cli("train", toy, "--offline", "--set", "trainer.init.max_epochs=3",
                      "--set", "config.crash_at_epoch=1")
    assert crashed.returncode == 1, crashed.stderr
    [record] = (tmp_path / "data" / "artifacts").glob("*/run.json")
    folder = Path(json.loads(record.read_text())["offline_session"]).with_suffix("")
    with open(folder / "metrics.jsonl", "a") as metrics:
        metrics.write('[{"type": "training_stats_scalar", "metric": "loss", "vari')
    resumed = run_cli("train", toy, "--resume", "--set", "config.crash_at_epoch=None")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(record.read_text())["status"] == "completed"
    counts = session_scalars(Path(json.loads(record.read_text())["offline_session"]))
    assert counts and set(counts.values()) == {1}
