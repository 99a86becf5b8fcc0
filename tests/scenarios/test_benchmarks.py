"""Smoke runs of the benchmark scripts (``--smoke``: a few batches, one repetition): each exits 0
and writes its JSON results. Nothing here asserts on times; the one count that no load moves (Python
calls per training step) is held in the default suite, the seconds-long smoke runs are slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

BENCHMARKS = REPO / "benchmarks"
TOP_KEYS = {"benchmark", "settings", "environment"}
EXPECTED = {
    "training_parity": {"variants", "ratios", "loss_agreement"},
    "startup": {"wall_seconds", "extra_breakdown", "bare_lightning_phases", "imports_alone",
                "task_offline", "profiled_dev_run"},
    "tracking_cost": {"modes", "ratio_on_off", "max_step_stall_s_logging_on", "task_close_s", "curves_png"},
    "inference": {"variants", "ratio_infer/hand_written", "infer_wall_seconds", "identical_predictions"},
    "dataloading": {"loaders", "model_samples_per_s", "data_share_of_step_workers0"},
    "runs_listing": {"wall_seconds", "cpu_seconds", "bar_s", "under_bar"},
    "step_overhead": {"rounds", "cpu_seconds_us_per_step", "thread_cpu_seconds_us_per_step", "seconds_us_per_step",
                      "thread_owner_cpu_us_per_step"},
    "step_components": {"components_us_per_step"},
    "step_calls": {"variants", "ratio_train/lightning_defaults", "torch_lab_calls_per_step"},
    "export": {"export_wall_seconds", "samples_per_s", "ratio_onnx_runtime/torch_loop"},
    "thread_cpu": {"variants"},
}


def smoke(name: str, data_dir: Path, out: Path) -> dict:
    """Run ``benchmarks/<name>.py --smoke``; its JSON results."""
    command = [sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke", "--data-dir", str(data_dir),
               "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)  # a hang guard only
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("name", ["startup", "tracking_cost", "dataloading", "runs_listing",
                                  "step_components", "export"])
@pytest.mark.slow
def test_smoke_run_on_synthetic_data(name: str, tmp_path: Path) -> None:
    results = smoke(name, tmp_path / "no-mnist-here", tmp_path / f"{name}.json")
    assert TOP_KEYS | EXPECTED[name] <= results.keys()
    assert results["benchmark"] == name and results["settings"]["smoke"] is True
    assert results["settings"]["synthetic_data"] is True


@pytest.mark.slow
def test_training_parity_on_mnist_files(tiny_mnist: Path, tmp_path: Path) -> None:
    results = smoke("training_parity", tiny_mnist, tmp_path / "parity.json")
    assert TOP_KEYS | EXPECTED["training_parity"] <= results.keys()
    assert results["settings"]["synthetic_data"] is False
    assert results["variants"].keys() == {"hand_written", "lightning", "torch_lab"}
    assert set(results["ratios"]) == {"torch_lab/hand_written", "torch_lab/lightning"}
    assert all(len(v["train_losses_per_epoch"]) == 1 for v in results["variants"].values())


@pytest.mark.slow
def test_inference_on_mnist_files(tiny_mnist: Path, tmp_path: Path) -> None:
    results = smoke("inference", tiny_mnist, tmp_path / "inference.json")
    assert TOP_KEYS | EXPECTED["inference"] <= results.keys()
    assert results["settings"]["synthetic_data"] is False
    assert results["variants"].keys() == {"hand_written", "lightning_predict", "infer"}
    assert results["identical_predictions"] is True  # same weights, same batches: the same CSV


@pytest.mark.slow
def test_error_latency_smoke(tmp_path: Path) -> None:
    results = smoke("error_latency", tmp_path / "unused", tmp_path / "error_latency.json")
    assert TOP_KEYS | {"rows", "all_ok", "slower_than_target"} <= results.keys()
    assert results["settings"]["smoke"] is True and results["all_ok"] is True
    assert [row["row"] for row in results["rows"]] == ["path_missing", "path_is_directory", "path_not_py"]


@pytest.mark.slow
def test_step_overhead_smoke(tmp_path: Path) -> None:
    results = smoke("step_overhead", tmp_path / "unused", tmp_path / "step_overhead.json")
    assert TOP_KEYS | EXPECTED["step_overhead"] <= results.keys()
    assert results["settings"]["smoke"] is True
    cpu = results["cpu_seconds_us_per_step"]
    assert cpu["variants"].keys() == {"lightning", "train"}
    assert cpu["differences"]["train over bare Lightning, no metrics"]["baseline"] == "lightning"
    assert results["thread_owner_cpu_us_per_step"]["train"].keys() >= {"training"}


@pytest.mark.slow
def test_thread_cpu_smoke(tmp_path: Path) -> None:
    """Both variants run the real train on the MNIST demo; every thread's CPU is accounted for."""
    results = smoke("thread_cpu", tmp_path / "no-mnist-here", tmp_path / "thread_cpu.json")
    assert TOP_KEYS | EXPECTED["thread_cpu"] <= results.keys()
    for variant in results["variants"].values():
        [process], [thread] = variant["process_cpu_s"], variant["training_thread_cpu_s"]
        assert 0 < thread <= process and variant["owners_cpu_s"]["training"] == [pytest.approx(thread, abs=0.05)]


def test_step_calls_stay_within_the_recorded_count(tmp_path: Path) -> None:
    """Counted, not timed: torch-lab's own Python calls per training step may grow at most 10%
    past the recorded figure, and ``train``'s calls per step stay within 1.1x of Lightning with
    its defaults (ModelCheckpoint, CSVLogger)."""
    results = smoke("step_calls", tmp_path / "unused", tmp_path / "step_calls.json")
    assert TOP_KEYS | EXPECTED["step_calls"] <= results.keys()
    assert results["torch_lab_calls_per_step"] <= 1.1 * results["recorded_torch_lab_calls_per_step"]
    assert results["ratio_train/lightning_defaults"] <= 1.1
