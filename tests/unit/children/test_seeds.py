"""``train --seeds`` through the real console script: one run per seed, one group, and a summary
whose statistics are those of the runs' own records."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from conftest import REPO, run_cli, sets
from torch_lab.children.seeds import jobs, summary
from torch_lab.cli.parsers import seeds_value
from torch_lab.text import stats_text

REGRESSION = REPO / "src" / "example_project" / "experiments" / "01_regression" / "hparams.py"
SMALL = sets("trainer.init.max_epochs=1", "config.train_size=256", "config.val_size=64")


def test_seeds_values_and_jobs() -> None:
    assert seeds_value("0,1,2") == [0, 1, 2] and seeds_value("7,") == [7] and seeds_value("5") == 5
    for bad in ("0,0", "-1,2", "0", "a"):
        with pytest.raises(Exception):
            seeds_value(bad)
    assert jobs(["a.py"], [3, 4], ["--offline"]) == [
        ("a.py seed=3", ["a.py", "--offline", "--set", "seed=3"]),
        ("a.py seed=4", ["a.py", "--offline", "--set", "seed=4"])]


def test_summary_statistics() -> None:
    runs = [(f"a.py seed={s}", {"status": "completed", "task_id": f"t{s}",
                                "best": {"monitor": "loss/val", "value": v}, "metrics": {"loss/val": v}})
            for s, v in ((0, 1.0), (1, 2.0), (2, 4.0))]
    text = summary([*runs, ("a.py seed=3", {"status": "failed", "task_id": "t3"})])
    assert "a.py: n=3 of 4 completed" in text
    assert f"best loss/val  {stats_text([1.0, 2.0, 4.0])}" in text
    assert stats_text([1.0, 2.0, 4.0]) == f"2.333 ± {statistics.stdev([1.0, 2.0, 4.0]):.4g} (1-4)"


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [False, True])
def test_three_seeds_are_three_runs_of_one_group(tmp_path: Path, parallel: bool) -> None:
    result = run_cli("train", REGRESSION, "--offline", "--seeds", "0,1,2", *SMALL,
                     *(["--parallel"] if parallel else []), timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    assert len(records) == 3 and len({r["group"] for r in records}) == 1
    seeds = sorted(json.loads((Path(r["checkpoints"]["last"]).parents[1] / "hparams.json").read_text())["seed"]
                   for r in records)
    assert seeds == [0, 1, 2]
    bests = [r["best"]["value"] for r in records]
    line = next(line for line in result.stdout.splitlines() if line.startswith("best mse/val"))
    assert line.split(None, 2)[2] == stats_text(bests)
    assert f"n=3 of 3 completed" in result.stdout


def test_an_interrupted_seed_is_named_without_a_reason(toy: Path) -> None:
    """An interrupted run has no error: its line said ``interrupted: None`` (issue 30, item 31)."""
    env = {"TOY_SIGNAL_AT": "epoch=0,batch=1,moment=batch_end,signal=15"}
    result = run_cli("train", toy, "--offline", "--seeds", "7,", env=env, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == f"train: {toy} seed=7 interrupted", result.stderr[-3000:]
