"""torch-lab online: the real console scripts and the real clearml SDK against the stand-in ClearML
server (tests/clearml_server), the path a team uses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli, sets

pytestmark = pytest.mark.slow  # each test trains the toy model online (~20 s)


def trained(clearml_server, toy: Path, *extra: str) -> tuple[dict, Path]:
    """Train ``toy`` online; the server's task and the run directory."""
    result = run_cli("train", toy, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    (task,) = clearml_server.api.tasks.values()
    run_dir = next(Path("data/artifacts").glob(f"*{task['id']}"))
    return task, run_dir


def test_train_online_records_the_task_on_the_server(clearml_server, toy: Path) -> None:
    task, run_dir = trained(clearml_server, toy)
    assert task["status"] == "completed" and "completed" in task["tags"]
    assert task["hyperparams"]["hparams"]["config/lr"]["value"] == "0.1"
    scalars = clearml_server.api.scalars(task["id"])
    assert {("loss", "train"), ("loss", "val"), ("accuracy", "val")} <= set(scalars)
    assert len(scalars[("loss", "val")]) == 3  # one a validation, 3 epochs
    models = {m["name"]: clearml_server.api.models[m["model"]] for m in task["models"]["output"]}
    assert set(models) == {"best", "last"}
    for name, model in models.items():
        stored = clearml_server.files.files[model["uri"].split(clearml_server.files_http.url, 1)[1]]
        assert stored == (run_dir / "checkpoints" / f"{name}.ckpt").read_bytes()
    assert json.loads((run_dir / "run.json").read_text())["task_id"] == task["id"]
    assert not [r for r in clearml_server.api_http.log if r.status != 200]
