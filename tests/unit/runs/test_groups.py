"""Runs grouped over seeds (``runs --group``, ``compare --group``, ``plot --group``, ``load_groups``)
through the real console script, on run directories written here with fixed values, and on real
runs of the toy experiment started with ``train --seeds``."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest
from scipy import stats

from conftest import REPO, run_cli, sets
from torch_lab.runs import load_groups
from torch_lab.runs.groups import group_labels, group_runs, spread
from torch_lab.runs.records import read_runs
from unit.runs.test_report import hparams, runs, write_run

#: (task id, status, lr, seed, best, loss/test, extra hparams, train --seeds group)
RUNS = [("offline-a1", "completed", 0.1, 0, 0.5, 0.45, {}, "mlp-seeds-1"),
        ("offline-a2", "completed", 0.1, 1, 0.6, 0.55, {}, "mlp-seeds-1"),
        ("offline-b1", "completed", 0.01, 0, 0.8, 0.7, {}, None),
        ("offline-a3", "completed", 0.1, 2, 0.9, 0.85, {}, "mlp-seeds-1"),
        ("offline-b2", "completed", 0.01, 1, 1.0, 0.9, {}, None),
        ("offline-b3", "failed", 0.01, 2, None, None, {}, None),
        ("offline-c1", "completed", 0.01, 5, 0.7, 0.6, {"width": 2}, None)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two groups (lr 0.1 over three seeds, all completed, started with --seeds; lr 0.01 over
    three seeds, one failed without a best) and a lone run (lr 0.01, width 2)."""
    root = tmp_path / "artifacts"
    for minute, (task_id, status, lr, seed, best, test, extra, group) in enumerate(RUNS):
        metrics = {"loss/val": best, "loss/test": test} if best is not None else None
        write_run(root, "mlp-hparams", task_id, status, f"2026-01-02T10:0{minute}:00+00:00",
                  f"2026-01-02T10:0{minute}:30+00:00", hparams(lr, seed, **extra), 3 if best else 1, best=best,
                  metrics=metrics, **({"group": group} if group else {}))
    return root


LISTING = """\
task name    first run   n  statuses               seeds  best: mean ± std (min-max)          best: 95% interval          lr    width
mlp-hparams  offline-a1  3  3 completed            0,1,2  loss/val=0.6667 ± 0.2082 (0.5-0.9)  [0.1496, 1.184]             0.1   -
mlp-hparams  offline-b1  3  2 completed, 1 failed  0,1,2  loss/val=0.9 ± 0.1414 (0.8-1)       [-0.3706, 2.171]            0.01  -
mlp-hparams  offline-c1  1  1 completed            5      loss/val=0.7 ± - (0.7-0.7)          too few runs to tell (n=1)  0.01  2
"""


def test_listing(root: Path) -> None:
    assert runs(root, "--group") == LISTING
    assert runs(root, "--group", "--status", "completed").splitlines()[2].split()[2:7] == [
        "2", "2", "completed", "0,1", "loss/val=0.9"]  # the groups of the runs selected
    assert runs(root, "--group", "--columns", "lr").splitlines()[0].split()[-2:] == ["interval", "lr"]


def test_compare_gives_the_statistics_of_the_runs_bests(root: Path) -> None:
    text = runs(root, "compare", "--group", "a2", "b3")
    assert text == """\
                          mlp-hparams                  mlp-hparams
group                     mlp-seeds-1                  -
runs                      a1 a2 a3                     b1 b2 b3
n                         3                            3
statuses                  3 completed                  2 completed, 1 failed
seeds                     0,1,2                        0,1,2
hparams that differ
  config.lr               0.1                          0.01
mean ± std (min-max)
  best loss/val           0.6667 ± 0.2082 (0.5-0.9)    0.9 ± 0.1414 (0.8-1)
  loss/test               0.6167 ± 0.2082 (0.45-0.85)  0.8 ± 0.1414 (0.7-0.9)
  loss/val                0.6667 ± 0.2082 (0.5-0.9)    0.9 ± 0.1414 (0.8-1)
95% interval of the mean
  best loss/val           [0.1496, 1.184]              [-0.3706, 2.171]
  loss/test               [0.09955, 1.134]             [-0.4706, 2.071]
  loss/val                [0.1496, 1.184]              [-0.3706, 2.171]
minus the first (Welch)
  best loss/val                                        +0.2333 [-0.2716, 0.7382], p=0.235
  loss/test                                            +0.1833 [-0.3216, 0.6882], p=0.328
  loss/val                                             +0.2333 [-0.2716, 0.7382], p=0.235
"""
    records = [json.loads(path.read_text()) for path in sorted(root.glob("*-offline-a*/run.json"))]
    bests = [record["best"]["value"] for record in records]
    assert f"{statistics.mean(bests):.4g} ± {statistics.stdev(bests):.4g}" in text.splitlines()[9]


def test_json_csv_and_load_groups(root: Path) -> None:
    groups = load_groups(root)
    assert [(g["task_ids"], g["n"], g["statuses"], g["seeds"], g["group"]) for g in groups] == [
        (["offline-a1", "offline-a2", "offline-a3"], 3, {"completed": 3}, [0, 1, 2], "mlp-seeds-1"),
        (["offline-b1", "offline-b2", "offline-b3"], 3, {"completed": 2, "failed": 1}, [0, 1, 2], None),
        (["offline-c1"], 1, {"completed": 1}, [5], None)]
    assert groups[0]["best"] == {"monitor": "loss/val", "n": 3, "mean": statistics.mean([0.5, 0.6, 0.9]),
                                 "std": statistics.stdev([0.5, 0.6, 0.9]), "min": 0.5, "max": 0.9,
                                 **t_interval([0.5, 0.6, 0.9])}
    assert groups[1]["metrics"]["loss/test"] == {"n": 2, "mean": statistics.mean([0.7, 0.9]),
                                                 "std": statistics.stdev([0.7, 0.9]), "min": 0.7, "max": 0.9,
                                                 **t_interval([0.7, 0.9])}
    assert groups[0]["best"]["ci95_low"] == pytest.approx(0.14955216541244, abs=1e-12)  # as printed: [0.1496, 1.184]
    assert groups[0]["best"]["ci95_high"] == pytest.approx(1.18378116792089, abs=1e-12)
    assert groups[2]["best"]["std"] is None and groups[2]["best"]["ci95_low"] is None  # n = 1: no interval
    assert "seed" not in groups[2]["hparams"]
    assert groups[2]["hparams_dotted"]["config.width"] == 2
    assert [g["task_ids"] for g in load_groups(root, status="completed")][1] == ["offline-b1", "offline-b2"]
    assert json.loads(runs(root, "--group", "--json")) == json.loads(json.dumps(groups))
    rows = list(csv.DictReader(io.StringIO(runs(root, "--group", "--csv"))))
    assert float(rows[0]["best.ci95_low"]) == groups[0]["best"]["ci95_low"]
    assert [(row["first_run"], row["n"], row["best.mean"], row["loss/test.std"]) for row in rows] == [
        ("offline-a1", "3", str(statistics.mean([0.5, 0.6, 0.9])), str(statistics.stdev([0.45, 0.55, 0.85]))),
        ("offline-b1", "3", str(statistics.mean([0.8, 1.0])), str(statistics.stdev([0.7, 0.9]))),
        ("offline-c1", "1", "0.7", "")]


def t_interval(values: list[float]) -> dict[str, float]:
    """scipy.stats' 95% Student's t interval of the mean of ``values``."""
    low, high = stats.t.interval(0.95, len(values) - 1, statistics.fmean(values),
                                 statistics.stdev(values) / len(values) ** 0.5)
    return {"ci95_low": pytest.approx(low, rel=1e-12), "ci95_high": pytest.approx(high, rel=1e-12)}


def test_compare_json_has_the_intervals_and_welch(root: Path) -> None:
    found = json.loads(runs(root, "compare", "--group", "a2", "b3", "c1", "--json"))
    assert [(g["task_ids"][0], g["n"], g["seeds"]) for g in found] == [
        ("offline-a1", 3, [0, 1, 2]), ("offline-b1", 3, [0, 1, 2]), ("offline-c1", 1, [5])]
    assert found[0]["best"] == load_groups(root)[0]["best"] and "minus_first" not in found[0]
    welch = stats.ttest_ind([0.8, 1.0], [0.5, 0.6, 0.9], equal_var=False)
    best = found[1]["minus_first"]["best"]
    assert best["diff"] == pytest.approx(0.9 - statistics.mean([0.5, 0.6, 0.9]), rel=1e-12)
    assert best["p"] == pytest.approx(welch.pvalue, rel=1e-9) and best["df"] == pytest.approx(welch.df, rel=1e-9)
    low, high = welch.confidence_interval(0.95)
    assert (best["low"], best["high"]) == (pytest.approx(low, rel=1e-9), pytest.approx(high, rel=1e-9))
    assert found[2]["minus_first"] == {"best": None, "metrics": {"loss/test": None, "loss/val": None}}  # n = 1
    plain = json.loads(runs(root, "compare", "a1", "b1", "--json"))  # without --group: the runs
    assert [run["task_id"] for run in plain] == ["offline-a1", "offline-b1"]


def test_the_docs_load_groups_example(root: Path, capsys: pytest.CaptureFixture) -> None:
    text = (REPO / "docs" / "how-to" / "runs-as-data.md").read_text()
    code = text.split("```python\n")[2].split("```", 1)[0].replace('"data/artifacts"', repr(str(root)))
    namespace: dict = {}
    exec(compile(code, "runs-as-data.md", "exec"), namespace)
    assert namespace["groups"] == load_groups(root)
    assert capsys.readouterr().out.splitlines()[2] == "None 1 0.7 None"


def test_spread_averages_the_runs_that_have_each_epoch() -> None:
    assert spread([([0, 1, 2], [1.0, 2.0, 3.0]), ([0, 1], [3.0, 4.0])]) == (
        [0, 1, 2], [2.0, 3.0, 3.0], [1.0, 2.0, 3.0], [3.0, 4.0, 3.0])


def test_plot(root: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    result = run_cli("runs", "plot", "--group", "a1", "b1", "c1", "--metric", "loss/val",
                     "--out", tmp_path / "groups.png", "--root", root, timeout=120)
    assert result.returncode == 0 and result.stdout == f"runs: wrote {tmp_path / 'groups.png'}\n", result.stderr
    labels = group_labels(group_runs(read_runs(root)))
    assert labels == ["lr=0.1 width=- (n=3)", "lr=0.01 width=- (n=3)", "lr=0.01 width=2 (n=1)"]
    height, width, _ = imread(tmp_path / "groups.png").shape  # one panel, 4.2 x 3 inches at 100 dpi,
    assert (height, width) == (300, int(420 + 60 + 5.5 * 21))  # and the legend beside it


@pytest.mark.slow
def test_real_runs_of_train_seeds_are_one_group(toy: Path, tmp_path: Path) -> None:
    result = run_cli("train", toy, "--seeds", "0,1", "--offline", *sets("trainer.init.max_epochs=1"),
                     timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    listed = run_cli("runs", "--group", "--root", tmp_path / "data" / "artifacts", timeout=60)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    header, line = listed.stdout.splitlines()
    assert line.split()[2:6] == ["2", "2", "completed", "0,1"]
    bests = [json.loads(path.read_text())["best"]["value"]
             for path in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    assert f"loss/val={statistics.fmean(bests):.4g} ± {statistics.stdev(bests):.4g}" in line
    low, high = stats.t.interval(0.95, 1, statistics.fmean(bests), statistics.stdev(bests) / 2 ** 0.5)
    assert f"[{low:.4g}, {high:.4g}]" in line  # the best value's 95% interval, from run.json's bests
    plotted = run_cli("runs", "plot", "--group", line.split()[1], "--steps", "--metric", "loss",
                      "--out", tmp_path / "steps.png", "--root", tmp_path / "data" / "artifacts", timeout=120)
    assert plotted.returncode == 0 and plotted.stderr == "", plotted.stderr
    assert (tmp_path / "steps.png").stat().st_size > 0
