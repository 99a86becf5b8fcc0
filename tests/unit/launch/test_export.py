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


def toy_checkpoint(path: Path) -> Path:
    """A checkpoint of the toy's model, as torch-lab stores weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": torch.nn.Linear(4, 2).state_dict()}, path)
    return path


def fake_run(folder: Path) -> Path:
    """A run directory (run.json, history.csv, checkpoints/best.ckpt) at ``folder``."""
    toy_checkpoint(folder / "checkpoints" / "best.ckpt")
    (folder / "run.json").write_text(json.dumps({"task_id": "offline-r", "status": "completed"}))
    (folder / "history.csv").write_text("epoch,loss/val\n0,0.5\n")
    return folder


OUT_CASES = {  # --out (and --force), the line, slow
    "existing": (["deploy/model.pt"], "--out deploy/model.pt: exists; add --force to replace it", False),
    "own_checkpoint": (["data/artifacts/r-offline-r/checkpoints/best.ckpt", "--force"],
                       "--out data/artifacts/r-offline-r/checkpoints/best.ckpt: inside the artifacts root "
                       "data/artifacts, which torch-lab keeps; give a path outside it", False),
    "moved_run": (["moved/history.csv", "--force"],
                  "--out moved/history.csv: inside the run directory moved; give a path outside it", True),
    "cache": (["clearml-cache/model.pt"], "--out clearml-cache/model.pt: inside the ClearML cache clearml-cache, "
              "which torch-lab keeps; give a path outside it", True),
    "folder": (["newdir/"], "--out newdir/: is a directory; give a file name, e.g. newdir/model.pt", True),
    "proc": (["/proc/model.pt"], "--out /proc/model.pt: /proc cannot be written (", True),
}


@pytest.mark.parametrize("case", [pytest.param(name, marks=[pytest.mark.slow] if slow else [])
                                  for name, (_, _, slow) in OUT_CASES.items()])
def test_out_never_replaces_what_it_should_not(case: str, toy: Path, tmp_path: Path) -> None:
    """``--out`` replaced any file, a run's own best.ckpt or another run's history.csv included;
    ``newdir/`` became a file named newdir; /proc passed the check (issue 30, items 3 and 21)."""
    checkpoint = toy_checkpoint(tmp_path / "model.ckpt")
    fake_run(tmp_path / "data" / "artifacts" / "r-offline-r")
    fake_run(tmp_path / "moved")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "model.pt").write_text("keep me\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    args, line, _ = OUT_CASES[case]
    result = run_cli("export-model", toy, checkpoint, "--offline", "--out", *args)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"export-model: error: {line}")
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "newdir").exists()


def test_out_with_force_replaces_an_existing_file(toy: Path, tmp_path: Path) -> None:
    checkpoint = toy_checkpoint(tmp_path / "model.ckpt")
    out = tmp_path / "model.pt"
    out.write_text("an older export\n")
    result = run_cli("export-model", toy, checkpoint, "--offline", "--out", out, "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    assert torch.jit.load(out)(torch.ones(1, 4)).shape == (1, 2)


def test_an_empty_task_id_is_refused(toy: Path, tmp_path: Path) -> None:
    """``export-model H ''`` (an unset ``$ID``) exported the first best.ckpt of the offline cache
    (issue 30, item 4)."""
    toy_checkpoint(tmp_path / "clearml-cache" / "offline" / "offline-x" / "artifacts" / "checkpoint-best" / "best.ckpt")
    for blank in ("", "  "):
        result = run_cli("export-model", toy, blank, "--offline")
        assert result.returncode == 2, result.stderr[-3000:]
        assert result.stderr.strip().splitlines() == [
            f"export-model: error: TASK_ID|CKPT {blank!r}: an empty task id (an unset variable?); give a task id, "
            "the start of one, or a .ckpt path"]
    assert not (tmp_path / "data" / "artifacts").exists()


@pytest.mark.slow
def test_a_stop_during_export_exits_130_and_writes_nothing(toy: Path, tmp_path: Path) -> None:
    """Ctrl-C during ``export-model`` printed "stopping after this batch", went on and exited 0
    (issue 30, item 10): it stops with 130, leaving neither the file nor a part of it, and an
    existing ``--out`` as it was."""
    import signal
    import subprocess
    import sys
    import time

    main = toy.parent / "__main__.py"
    main.write_text(main.read_text().replace(  # a model that takes 1.5 s a call: time to signal
        "def train_config(hparams):", "class SlowLinear(nn.Linear):\n    def forward(self, x):\n        time.sleep(1.5)\n"
        "        return super().forward(x)\n\n\ndef train_config(hparams):").replace(
        "module = (SignalledModule if at else TrainLabModule)(\n        nn.Linear(4, 2),",
        "module = (SignalledModule if at else TrainLabModule)(\n        SlowLinear(4, 2),"))
    checkpoint = toy_checkpoint(tmp_path / "model.ckpt")
    out = tmp_path / "deploy" / "model.pt"
    out.parent.mkdir()
    out.write_text("an older export\n")
    command = [str(Path(sys.executable).parent / "export-model"), str(toy), str(checkpoint), "--offline",
               "--out", str(out), "--force"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # the task exists and its stop handler is in place
        if "started; run directory" in line:
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert out.read_text() == "an older export\n" and sorted(p.name for p in out.parent.iterdir()) == ["model.pt"]
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "data" / "artifacts").glob("export_*/run.json")]
    assert record["status"] == "interrupted"
    assert not list((tmp_path / "data" / "artifacts").rglob("model.pt"))


@pytest.mark.slow
def test_a_run_trained_with_set_exports_and_infers_from_its_recorded_hparams(toy: Path, tmp_path: Path) -> None:
    """A sweep's trial, or any run trained with ``--set``, could not be exported or inferred: the
    model was built from the hparams file (``does not fit the model``) (issue 30, item 14)."""
    toy.write_text(toy.read_text().replace('"schedule": "step"}', '"schedule": "step", "width": 2}'))
    main = toy.parent / "__main__.py"  # the width of a hidden layer is an hparam
    main.write_text(main.read_text().replace(
        "nn.Linear(4, 2)", "nn.Sequential(nn.Linear(4, hparams['config']['width']), nn.ReLU(), "
        "nn.Linear(hparams['config']['width'], 2))"))
    assert run_cli("train", toy, "--offline", *sets("trainer.init.max_epochs=1", "config.width=8")).returncode == 0
    [trained] = (tmp_path / "data" / "artifacts").glob("*/run.json")
    task = json.loads(trained.read_text())["task_id"]
    line = f"torch-lab: building the model from the hparams task {task} recorded ({trained.parent.relative_to(tmp_path)}/hparams.json)"
    result = run_cli("export-model", toy, task, "--offline")
    assert result.returncode == 0, result.stderr[-3000:]
    assert line in result.stdout
    result = run_cli("infer", toy, "5", "--offline", *sets(f"checkpoint.checkpoint_task_id='{task}'"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{line} with --set checkpoint.checkpoint_task_id='{task}'" in result.stdout
