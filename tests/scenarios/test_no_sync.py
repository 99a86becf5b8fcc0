"""No host-device synchronisation in a training step: a real ``train`` run counts the calls that
wait on a device made by torch-lab's code (its module, metrics, NaN guard, learning-rate log,
callbacks) during training steps (tests/assets/sync_probe). On a CPU nothing waits, but the same
calls would block a GPU at every step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import ASSETS, run_cli


def test_torch_lab_makes_no_device_sync_during_training_steps(tmp_path: Path) -> None:
    folder = tmp_path / "experiments" / "sync_probe"
    shutil.copytree(ASSETS / "sync_probe", folder)
    report = tmp_path / "syncs.json"
    result = run_cli("train", folder / "hparams.py", "--offline", "--set", f"config.report={str(report)!r}")
    assert result.returncode == 0, result.stderr[-3000:]
    counted = json.loads(report.read_text())
    assert counted["steps"] == 12  # 2 epochs x 6 batches: a metric, a per-step schedule, the progress bar
    # The one planted call (scalar_metrics on a tensor) shows that the counting sees torch-lab's calls.
    assert counted["calls"] == ["__float__ in torch_lab.callbacks.history.<dictcomp>"]
