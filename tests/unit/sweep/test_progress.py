"""The progress line a sweep prints after each trial (trials done, running, the best so far and
the estimated end): its values on an Optuna study of known trials, and a real sweep of the toy."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest

from conftest import run_cli, sets
from torch_lab.sweep.report import progress_line
from torch_lab.sweep.trial import open_storage
from torch_lab.text import duration_text

NOW = datetime(2026, 1, 2, 10, 0, 0)


def trial(number: int, state: str, started: int, seconds: int | None, value: float | None = None,
          status: str = "completed") -> optuna.trial.FrozenTrial:
    """A trial started ``started`` seconds before NOW, lasting ``seconds`` (None: running)."""
    start = NOW - timedelta(seconds=started)
    return optuna.trial.FrozenTrial(
        number=number, state=optuna.trial.TrialState[state], value=value, values=None, datetime_start=start,
        datetime_complete=None if seconds is None else start + timedelta(seconds=seconds),
        params={"x": 0.1}, distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        user_attrs={"status": status} if seconds is not None else {}, system_attrs={},
        intermediate_values={}, trial_id=number)


def test_the_end_is_estimated_from_the_finished_trials() -> None:
    study = optuna.create_study(direction="minimize")
    for frozen in (trial(0, "COMPLETE", 600, 100, 0.5), trial(1, "FAIL", 500, 60, status="failed"),
                   trial(2, "COMPLETE", 400, 140, 0.25), trial(3, "RUNNING", 30, None)):
        study.add_trial(frozen)
    # mean 100 s; trial 3 needs 70 s more, 10 - 3 done - 1 running = 6 trials of 100 s; 2 slots
    assert progress_line(study, "s", 10, 2, "loss/val", NOW) == (
        f"torch-lab: sweep s: 3 of 10 trials done, 1 running, best so far loss/val=0.25 (trial 2), "
        f"about {duration_text((70 + 600) / 2)} left")
    assert progress_line(study, "s", 3, 2, "loss/val", NOW) == (
        "torch-lab: sweep s: 3 of 3 trials done, 1 running, best so far loss/val=0.25 (trial 2)")
    assert progress_line(optuna.create_study(), "s", 4, 1, "acc", NOW) == (
        "torch-lab: sweep s: 0 of 4 trials done, 0 running, no best yet")


@pytest.mark.slow
def test_a_real_sweep_prints_it_after_each_trial(toy: Path, tmp_path: Path) -> None:
    (tmp_path / "sweep.py").write_text('sweep = {"trials": 2, "seed": 1, "space": {"config.lr": '
                                       '{"low": 0.01, "high": 0.5, "log": True}}}\n')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline", *sets("trainer.init.max_epochs=1"),
                     timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    name = "01_toy-hparams-sweep"
    journal = tmp_path / "data" / "artifacts" / "sweeps" / name / "study.journal"
    study = optuna.load_study(study_name=name, storage=open_storage(str(journal)))
    assert study.metric_names == ["loss/val"]  # what Optuna Dashboard names the objective
    assert (journal.parent / "parallel_coordinate.png").stat().st_size > 10_000  # torch-lab's own drawing
    first, second = study.get_trials()
    progress = re.compile(rf"torch-lab: sweep {name}: \d of 2 trials done,")  # not the start's "; study"
    lines = [line for line in result.stdout.splitlines() if progress.match(line)]
    best = min((first, second), key=lambda t: t.value)
    seconds = (first.datetime_complete - first.datetime_start).total_seconds()
    assert lines == [
        f"torch-lab: sweep {name}: 1 of 2 trials done, 0 running, best so far loss/val={first.value:.4g} "
        f"(trial 0), about {duration_text(seconds)} left",
        f"torch-lab: sweep {name}: 2 of 2 trials done, 0 running, best so far loss/val={best.value:.4g} "
        f"(trial {best.number})"]
