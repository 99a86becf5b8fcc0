"""``export-model`` through the real console script: both examples in every format, loaded back
and compared with the checkpoint's model (a batch of another size with ``--dynamic-batch``),
export.json, the run record and the file on the task. Checkpoints are the examples' own modules
as ``train_config`` builds them, saved the way torch-lab saves weights; one test exports a
task trained by ``train``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import DEMO, REPO, run_cli, sets
from torch_lab.experiment import load_experiment

REGRESSION = REPO / "src" / "example_project" / "experiments" / "01_regression" / "hparams.py"
EXAMPLES = {"regression": (REGRESSION, []), "mnist": (DEMO / "hparams.py", ["config.val_size=64"])}
SUFFIX = {"torchscript": ".pt", "exported": ".pt2", "onnx": ".onnx"}


def example_checkpoint(hparams: Path, overrides: list[str], path: Path) -> Path:
    module = load_experiment(hparams, overrides).train_config()["module"]
    torch.save({"state_dict": module.model.state_dict()}, path)
    return path


def exported(tmp_path: Path) -> tuple[dict, dict]:
    [record_path] = (tmp_path / "data" / "artifacts").glob("export_*/run.json")
    return json.loads(record_path.read_text()), json.loads((record_path.parent / "export.json").read_text())


@pytest.mark.parametrize("fmt", [pytest.param("torchscript"), pytest.param("exported", marks=pytest.mark.slow),
                                 pytest.param("onnx", marks=pytest.mark.slow)])
@pytest.mark.parametrize("example", [pytest.param("regression"), pytest.param("mnist", marks=pytest.mark.slow)])
def test_an_example_exports_and_computes_what_its_checkpoint_does(example: str, fmt: str, tmp_path: Path,
                                                                  tiny_mnist: Path) -> None:
    hparams, overrides = EXAMPLES[example]
    checkpoint = example_checkpoint(hparams, overrides, tmp_path / "model.ckpt")
    result = run_cli("export-model", hparams, checkpoint, "--format", fmt, "--dynamic-batch", "--offline",
                     *sets(*overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    record, report = exported(tmp_path)
    target = Path(record["export"]["path"])
    assert record["status"] == "completed" and target.suffix == SUFFIX[fmt] and target.is_file()
    assert report["ok"] and report["checkpoint"] == str(checkpoint) and report["dynamic_axes"] == {"x": [0]}
    batch = report["input"]["shape"][0]
    assert [c["input_shape"][0] for c in report["checks"]] == [batch, 2 * batch]
    assert all(c["max_abs"] <= 1e-4 for c in report["checks"])
    assert f"torch-lab: exported {target}" in result.stdout
    with zipfile.ZipFile(record["offline_session"]) as session:  # the file is on the task
        assert any(f"export-{fmt}" in name for name in session.namelist())


@pytest.mark.slow
def test_a_trained_task_exports_its_best_checkpoint(toy: Path, tmp_path: Path) -> None:
    assert run_cli("train", toy, "--offline", "--set", "trainer.init.max_epochs=1").returncode == 0
    [trained] = (tmp_path / "data" / "artifacts").glob("*/run.json")
    task = json.loads(trained.read_text())
    out = tmp_path / "deploy" / "toy.pt"
    result = run_cli("export-model", toy, task["task_id"], "--offline", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    record, report = exported(tmp_path)
    assert out.is_file() and report["checkpoint"] == task["best"]["path"] and report["ok"]
    assert record["started_from"]["task_id"] == task["task_id"]
    assert torch.equal(torch.jit.load(out)(torch.ones(3, 4)),
                       torch.nn.functional.linear(torch.ones(3, 4), *torch.load(
                           task["best"]["path"], weights_only=True)["state_dict"].values()))


@pytest.mark.slow
def test_outputs_past_the_tolerance_fail_the_export(tmp_path: Path) -> None:
    checkpoint = example_checkpoint(REGRESSION, [], tmp_path / "model.ckpt")
    result = run_cli("export-model", REGRESSION, checkpoint, "--format", "onnx", "--offline",
                     "--atol", "0", "--rtol", "0")
    record, report = exported(tmp_path)
    if report["checks"][0]["max_abs"] == 0:
        pytest.skip("ONNX Runtime matched torch exactly on this machine")
    assert result.returncode == 1 and "differs from the checkpoint's model" in result.stderr
    assert record["status"] == "failed" and not report["ok"]
