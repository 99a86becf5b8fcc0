"""Hard kills at random moments: run.json always parses, the last checkpoint always loads, and
--resume always finishes the run."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_cli, session_scalars, sets


@pytest.mark.slow
def test_ten_random_sigkills(toy: Path, tmp_path: Path) -> None:
    rng = random.Random(0)
    outcomes = []
    settings = sets("trainer.init.max_epochs=10", "checkpoint.every_n_train_steps=1",
                    "config.batch_sleep=0.1")  # 40 steps, about 4 s of training
    for attempt in range(10):
        root = tmp_path / f"attempt{attempt}"
        env = {"TORCH_LAB_ARTIFACTS": str(root)}
        command = [str(Path(sys.executable).parent / "train"), str(toy), "--offline", *settings]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**__import__("os").environ, **env})
        deadline = time.monotonic() + 120
        while not list(root.glob("*/run.json")) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        [run] = root.glob("*")
        record = json.loads((run / "run.json").read_text())  # never torn
        last = run / "checkpoints" / "last.ckpt"
        resumed = run_cli("train", toy, "--resume", env=env)
        if record["status"] == "completed":  # the kill came after the end
            assert resumed.returncode == 2, resumed.stderr
            outcomes.append("after the end")
            continue
        if not last.is_file():  # killed before the first checkpoint
            assert resumed.returncode == 2 and "no checkpoints/last.ckpt" in resumed.stderr
            outcomes.append("before the first checkpoint")
            continue
        torch.load(last, weights_only=True)  # never torn
        assert resumed.returncode == 0, (attempt, resumed.stderr)
        assert json.loads((run / "run.json").read_text())["status"] == "completed"
        assert torch.load(last, weights_only=True)["global_step"] == 40
        assert not list(run.rglob("*.tmp")), attempt  # a killed writer's temp file is removed
        stored = session_scalars(Path(record["offline_session"]))  # every checkpointed epoch once
        assert max(stored.values()) == 1, attempt
        validated = sorted(i for m, s, i in stored if (m, s) == ("loss", "val"))
        # Known gap (docs/how-to/resume.md): killed in a validation after the step checkpoint of the epoch's last
        # batch, the resumed run starts after that batch and Lightning skips that validation.
        assert set(validated) <= set(range(3, 40, 4)) and len(validated) >= 9, (attempt, validated)
        outcomes.append("resumed")
    assert outcomes.count("resumed") >= 6, outcomes  # most kills must land mid-training
