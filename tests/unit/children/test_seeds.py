"""``train --seeds`` through the real console script: one run per seed, one group, and a summary
whose statistics are those of the runs' own records."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from scipy import stats

from conftest import REPO, run_cli, sets
from torch_lab.children.seeds import More, grown, jobs, summary
from torch_lab.cli.parsers import seeds_value
from torch_lab.errors import UserError
from torch_lab.experiment import load_hparams
from torch_lab.runs import load_groups
from torch_lab.text import stats_text
from unit.runs.test_report import write_run

REGRESSION = REPO / "src" / "example_project" / "experiments" / "01_regression" / "hparams.py"
SMALL = sets("trainer.init.max_epochs=1", "config.train_size=256", "config.val_size=64")


def test_seeds_values_and_jobs() -> None:
    assert seeds_value("0,1,2") == [0, 1, 2] and seeds_value("7,") == [7] and seeds_value("5") == 5
    assert seeds_value("+3") == More(3)
    for bad in ("0,0", "-1,2", "0", "a", "+0", "+1,2", "+x", "+101", "++1"):
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


def test_plus_n_grows_the_group_of_the_same_hparams(toy: Path, tmp_path: Path) -> None:
    """``--seeds +N``: the runs of the same task name and hparams but the seed, whichever
    command started them; the smallest seeds none of them has; the group name of the latest."""
    root = tmp_path / "artifacts"
    tree = load_hparams(toy)[1]
    for hour, (task_id, seed, lr, group) in enumerate([("offline-a", 0, 0.1, "old"), ("offline-b", 4, 0.1, "new"),
                                                        ("offline-c", 1, 0.2, "other"), ("offline-d", 2, 0.1, None)]):
        write_run(root, "01_toy-hparams", task_id, "completed", f"2026-01-02T1{hour}:00:00+00:00", None,
                  {**tree, "config": {**tree["config"], "lr": lr}, "seed": seed}, 1, best=0.5,
                  **({"group": group} if group else {}))
    assert grown(str(toy), [], More(3), root=root) == ([1, 3, 5], "new", [0, 4, 2])
    assert grown(str(toy), ["config.lr=0.2"], More(2), root=root) == ([0, 2], "other", [1])
    with pytest.raises(UserError, match=r"^--seeds \+1: no runs of .*hparams.py with these hparams under"):
        grown(str(toy), ["config.lr=0.3"], More(1), root=root)


@pytest.mark.slow
def test_seeds_plus_three_adds_three_runs_to_the_group(toy: Path, tmp_path: Path) -> None:
    """``train --seeds 0,1`` then ``--seeds +3`` through the real script: seeds 2, 3, 4 (3 is
    taken only by a run of other hparams), one group of five in ``runs compare --group``, with the
    95% interval of the five run.json bests."""
    one_epoch = sets("trainer.init.max_epochs=1")
    first = run_cli("train", toy, "--offline", "--seeds", "0,1", *one_epoch, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    other = run_cli("train", toy, "--offline", "--seeds", "3,", *one_epoch, *sets("config.lr=0.2"), timeout=300)
    assert other.returncode == 0, other.stderr[-3000:]
    grow = run_cli("train", toy, "--offline", "--seeds", "+3", *one_epoch, timeout=600)
    assert grow.returncode == 0, grow.stderr[-3000:]
    group = first.stdout.splitlines()[0].split()[2].rstrip(":")
    assert grow.stdout.splitlines()[0] == f"torch-lab: group {group}: 2 runs, seeds 0, 1; adding seeds 2, 3, 4"
    root = tmp_path / "data" / "artifacts"
    records = {json.loads((path / "hparams.json").read_text())["seed"]: json.loads((path / "run.json").read_text())
               for path in root.iterdir() if (path / "run.json").is_file()
               and json.loads((path / "hparams.json").read_text())["config"]["lr"] == 0.1}
    assert sorted(records) == [0, 1, 2, 3, 4] and {record["group"] for record in records.values()} == {group}
    compared = run_cli("runs", "compare", "--group", records[4]["task_id"], "--json", "--root", root, timeout=60)
    assert compared.returncode == 0, compared.stderr
    [found] = json.loads(compared.stdout)
    assert (found["n"], found["seeds"], found["group"]) == (5, [0, 1, 2, 3, 4], group)
    bests = [records[seed]["best"]["value"] for seed in range(5)]
    low, high = stats.t.interval(0.95, 4, statistics.fmean(bests), statistics.stdev(bests) / 5 ** 0.5)
    assert found["best"]["n"] == 5 and found["best"]["mean"] == pytest.approx(statistics.fmean(bests), rel=1e-12)
    assert (found["best"]["ci95_low"], found["best"]["ci95_high"]) == (pytest.approx(low, rel=1e-9),
                                                                       pytest.approx(high, rel=1e-9))
    assert [group_data for group_data in load_groups(root) if group_data["n"] == 5] == [found]
