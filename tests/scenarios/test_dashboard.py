"""Optuna Dashboard on a real sweep's journal: the command the sweep prints, started on 127.0.0.1,
read over its HTTP API."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import run_cli

DASHBOARD = Path(sys.executable).parent / "optuna-dashboard"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str, deadline: float) -> dict:
    """GET ``url`` as JSON, retrying while the server starts (until ``deadline``)."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return json.loads(reply.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.skipif(not DASHBOARD.is_file(), reason="optuna-dashboard is not installed (extra 'dashboard')")
def test_optuna_dashboard_shows_the_sweep(toy: Path, tmp_path: Path) -> None:
    (tmp_path / "sweep.py").write_text('sweep = {"trials": 2, "seed": 1, "space": {"config.lr": [0.05, 0.2]}}\n')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline", "--set", "trainer.init.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    name = "01_toy-hparams-sweep"
    journal = Path("data/artifacts/sweeps") / name / "study.journal"
    watch = f"torch-lab: watch it: optuna-dashboard {journal}"
    assert result.stdout.count(watch) == 2  # when it starts and when it ends
    expected = {int(row["trial"]): float(row["objective"])
                for row in csv.DictReader(open(journal.parent / "trials.csv"))}

    port = free_port()
    server = subprocess.Popen([str(DASHBOARD), str(journal), "--host", "127.0.0.1", "--port", str(port),
                               "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        studies = get_json(f"{base}/api/studies", time.monotonic() + 60)["study_summaries"]
        [study] = [s for s in studies if s["study_name"] == name]
        detail = get_json(f"{base}/api/studies/{study['study_id']}", time.monotonic() + 30)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    trials = {t["number"]: t for t in detail["trials"]}
    assert sorted(trials) == [0, 1]
    assert all(t["state"] == "Complete" for t in trials.values())
    assert {n: t["values"][0] for n, t in trials.items()} == pytest.approx(expected)
    assert {n: float(t["params"][0]["param_external_value"]) for n, t in trials.items()} == {
        int(row["trial"]): float(row["config.lr"]) for row in csv.DictReader(open(journal.parent / "trials.csv"))}
