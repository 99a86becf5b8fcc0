"""A sweep's wall-time budget (``budget`` in the sweep file, ``train --timeout``): no trial starts
after it, the running ones finish; through the real ``train`` on the toy experiment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, sets
from torch_lab.errors import UserError, display_path
from torch_lab.sweep.space import read_sweep

SPACE = '"space": {"config.lr": {"low": 0.01, "high": 0.5, "log": True}}'


@pytest.mark.parametrize("budget", ["-1", "0", "'1h'", "True", "float('inf')"])
def test_a_bad_budget_names_the_file_and_the_key(tmp_path: Path, budget: str) -> None:
    (tmp_path / "sweep.py").write_text(f'sweep = {{"trials": 2, "budget": {budget}, {SPACE}}}\n')
    with pytest.raises(UserError) as error:
        read_sweep(tmp_path / "sweep.py")
    assert str(error.value) == (f"{display_path(tmp_path / 'sweep.py')}: budget must be a number of seconds "
                                "> 0 (after it no new trial starts)")
    (tmp_path / "sweep.py").write_text(f'sweep = {{"trials": 2, "budget": 90.5, {SPACE}}}\n')
    assert read_sweep(tmp_path / "sweep.py").budget == 90.5


def test_timeout_needs_a_sweep(toy: Path) -> None:
    result = run_cli("train", toy, "--timeout", "5", timeout=60)
    assert result.returncode == 2 and result.stderr.splitlines()[-1] == "train: error: --timeout needs --sweep"


@pytest.mark.slow
def test_no_trial_starts_once_the_timeout_is_spent(toy: Path, tmp_path: Path) -> None:
    (tmp_path / "sweep.py").write_text(f'sweep = {{"trials": 3, "budget": 3600, "seed": 1, {SPACE}}}\n')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline", "--timeout", "1",
                     *sets("trainer.init.max_epochs=1"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    name = "01_toy-hparams-sweep"
    records = [json.loads(path.read_text()) for path in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    assert [(r["sweep"]["trial"], r["status"]) for r in records] == [(0, "completed")]  # the first, whole
    lines = result.stdout.splitlines()
    assert f"torch-lab: sweep {name}: its budget of 0:00:01 is spent: no new trials" in lines
    assert (tmp_path / "data" / "artifacts" / "sweeps" / name / "trials.csv").read_text().count("\n") == 2
