"""ClearML decisions that need no task; the task itself is exercised by the real runs in
test_launch.py."""

import pytest
from clearml.backend_config.defs import get_active_config_file

from torch_lab.tracking import task as tracking
from torch_lab.tracking.logger import plot_and_series


def test_configured_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    if get_active_config_file():
        pytest.skip("this machine has a clearml.conf")
    assert not tracking.is_configured()
    monkeypatch.setenv("CLEARML_API_HOST", "http://127.0.0.1:8008")
    assert tracking.is_configured()


def test_configured_by_file(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(tmp_path / "clearml.conf"))
    (tmp_path / "clearml.conf").write_text("api { api_server: http://127.0.0.1:8008 }\n")
    assert tracking.is_configured()


@pytest.mark.parametrize("name, expected", [("loss/val", ("loss", "val")),
                                            ("lr-AdamW", ("lr-AdamW", "lr-AdamW")),
                                            ("a/b/test", ("a/b", "test"))])
def test_one_plot_per_metric_one_series_per_stage(name, expected) -> None:
    assert plot_and_series(name) == expected


def test_configure_removes_stalls_and_slow_close() -> None:
    """ClearML's defaults block the caller every 100 scalars and take 6-12 s to close offline."""
    from clearml import Task
    from clearml.config import config

    tracking.configure(offline=True)
    assert config.get("development.worker.report_event_flush_threshold") == 10000
    assert config.get("development.report_use_subprocess") is False
    assert Task.is_offline()


@pytest.mark.slow  # moved to the slow stage: the default suite stays under 10 minutes
def test_starting_a_task_leaves_the_random_generators_alone(tmp_path) -> None:
    """ClearML's Task.init reseeds torch (with 1337) by default, which would silently replace the
    run's own seed for shuffling and dropout."""
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from torch_lab.tracking import task as tracking\n"
        "torch.manual_seed(5); expected = torch.rand(3)\n"
        "torch.manual_seed(5)\n"
        "tracking.configure(offline=True)\n"
        "task = tracking.start_task({'project_name': 'p'}, 'seed', 'training', [], offline=True)\n"
        "assert torch.equal(torch.rand(3), expected), 'Task.init reseeded torch'\n"
        "task.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("value, offline", [("1", True), ("true", True), ("0", False), ("", False)])
def test_clearml_offline_mode_means_offline(monkeypatch: pytest.MonkeyPatch, value: str, offline: bool) -> None:
    monkeypatch.setenv("CLEARML_API_HOST", "http://127.0.0.1:8008")  # configured
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", value)
    monkeypatch.delenv("TRAINS_OFFLINE_MODE", raising=False)  # Task.set_offline sets both
    assert tracking.select_offline(False) is offline


@pytest.mark.slow  # several real runs: the slow stage keeps the default suite short
def test_train_with_clearml_offline_mode_runs_offline_beside_a_configured_server(toy, tmp_path) -> None:
    """A configured server nobody answers is not even tried: the run is offline."""
    import json
    import socket

    from conftest import run_cli

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"CLEARML_API_HOST": f"http://127.0.0.1:{port}", "CLEARML_API_ACCESS_KEY": "k",
           "CLEARML_API_SECRET_KEY": "s", "CLEARML_OFFLINE_MODE": "1"}
    result = run_cli("train", toy, "--set", "trainer.init.max_epochs=1", env=env)
    assert result.returncode == 0, result.stderr
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    assert record["offline"] is True and record["task_id"].startswith("offline-")


@pytest.mark.parametrize("command", ["train", pytest.param("export-model", marks=pytest.mark.slow)])
def test_a_run_writes_nothing_in_home(command, toy, tmp_path, monkeypatch) -> None:
    """ClearML kept its session cache in ~/.clearml/.session.json whatever CLEARML_CACHE_DIR said
    (issue 20, item 5); ``export-model --format onnx`` left ONNX Runtime's device id in
    ~/.cache/Microsoft/DeveloperTools (issue 30, item 7). HOME here is read-only (mode 555; root
    may still write, so the check is that nothing was written at all): the command works and the
    session cache is in the chosen cache. ONNX Runtime keeps quiet on CI by itself: the CI
    variables are unset here."""
    import os

    import torch

    from conftest import run_cli

    for name in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD", "JENKINS_URL", "BUILDKITE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "readonly-home"
    home.mkdir()
    home.chmod(0o555)
    if command == "train":
        result = run_cli("train", toy, "--offline", env={"HOME": str(home)})
    else:
        torch.save({"state_dict": torch.nn.Linear(4, 2).state_dict()}, tmp_path / "model.ckpt")
        result = run_cli("export-model", toy, tmp_path / "model.ckpt", "--format", "onnx", "--offline",
                         env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.listdir(home) == []
    assert (tmp_path / "clearml-cache" / ".session.json").is_file()
