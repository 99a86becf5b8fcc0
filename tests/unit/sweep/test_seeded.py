"""A sweep over seeds, fast parts: the sweep file's ``seeds`` (validation), a trial's seed runs and
their outcomes combined, the seeds in the study's identity (a real journal study), and the
parameter-importances threshold of the report (pictures drawn from a real journal study)."""

from __future__ import annotations

from pathlib import Path

import pytest

from torch_lab.errors import UserError
from torch_lab.experiment.hparams import validate
from torch_lab.sweep.report import MIN_IMPORTANCE_TRIALS, pictures
from torch_lab.sweep.seeded import combine, trial_env, trial_runs
from torch_lab.sweep.space import optuna_distributions, read_sweep
from torch_lab.utils import import_script_as_module


def sweep_file(folder: Path, text: str) -> Path:
    path = folder / "sweep.py"
    path.write_text(f"sweep = {text}\n")
    return path


def read(toy: Path, tmp_path: Path, seeds: str) -> object:
    hparams = validate(import_script_as_module(toy).hparams, toy)
    return read_sweep(sweep_file(tmp_path, '{"trials": 2, "space": {"config.lr": [0.1, 0.2]}, ' + seeds + "}"),
                      hparams, toy)


BAD_SEEDS = [
    ('"seeds": "0,1"', "sweep.py: seeds must be a non-empty list of distinct ints, e.g. [0, 1, 2], got '0,1'"),
    ('"seeds": []', "sweep.py: seeds must be a non-empty list of distinct ints, e.g. [0, 1, 2], got []"),
    ('"seeds": [0, 1.5]', "sweep.py: seeds must be a non-empty list of distinct ints, e.g. [0, 1, 2], got [0, 1.5]"),
    ('"seeds": [0, True]', "sweep.py: seeds must be a non-empty list of distinct ints, e.g. [0, 1, 2], got [0, True]"),
    ('"seeds": [3, 1, 3]', "sweep.py: seeds lists 3 twice; each seed runs once per trial"),
    ('"seeds": [0, -1]', "sweep.py: seeds: experiments/01_toy/hparams.py: seed must be an int in [0, 2**32) "
                         "(NumPy's range) or None (None: a random seed, recorded)"),
    ('"seeds": [0], "space": {"seed": [1, 2]}',
     "sweep.py: space.seed: a sweep over seeds sets the seed itself; drop space.seed or seeds"),
]


@pytest.mark.parametrize("seeds, message", BAD_SEEDS, ids=[s for s, _ in BAD_SEEDS])
def test_bad_seeds_are_one_line_naming_the_file_and_key(toy: Path, tmp_path: Path, seeds: str, message: str) -> None:
    text = '{"trials": 2, ' + seeds + ("" if "space" in seeds else ', "space": {"config.lr": [0.1]}') + "}"
    with pytest.raises(UserError) as error:
        read_sweep(sweep_file(tmp_path, text), validate(import_script_as_module(toy).hparams, toy), toy)
    assert str(error.value) == message


def test_seeds_are_read_and_each_trial_runs_once_per_seed(toy: Path, tmp_path: Path) -> None:
    sweep = read(toy, tmp_path, '"seeds": [2, 0]')
    assert sweep.seeds == [2, 0] and read(toy, tmp_path, '"seed": 1').seeds is None
    assert trial_runs(["h.py", "--offline"], sweep.seeds) == [
        (2, ["h.py", "--offline", "--set", "seed=2"]), (0, ["h.py", "--offline", "--set", "seed=0"])]
    assert trial_runs(["h.py"], None) == [(None, ["h.py"])]
    env = {"trial": 3, "pruner": {"type": "median"}}
    assert trial_env(env, None, True) == env
    assert trial_env(env, 2, True) == {**env, "seed": 2}  # the first seed reports to the pruner
    assert trial_env(env, 0, False) == {"trial": 3, "seed": 0, "pruner": {"type": "none"}}  # later ones do not


def result(status: str, value: float | None = None, task: str = "t") -> dict:
    return {"status": status, "task_id": task, "best": {"monitor": "loss/val", "value": value, "path": f"{task}.ckpt"}}


def test_combined_outcome_of_a_trial_over_seeds() -> None:
    done = combine([(0, result("completed", 0.5, "a")), (1, result("completed", 0.25, "b"))], [0, 1], "minimize")
    assert done["status"] == "completed" and done["best"] == {"monitor": "loss/val", "value": 0.375, "path": "b.ckpt"}
    assert done["task_id"] == "b" and [run["value"] for run in done["seeds"]] == [0.5, 0.25]
    assert combine([(0, result("completed", 0.5, "a")), (1, result("completed", 0.25, "b"))], [0, 1],
                   "maximize")["task_id"] == "a"
    failed = combine([(0, result("completed", 0.5)), (1, {**result("failed"), "error": "boom"})], [0, 1], "minimize")
    assert (failed["status"], failed["error"]) == ("failed", "seed 1: boom")
    assert combine([(0, result("pruned", 0.9))], [0, 1], "minimize")["status"] == "pruned"
    stopped = combine([(0, result("completed", 0.5))], [0, 1], "minimize")
    assert (stopped["status"], stopped["error"]) == ("interrupted", "the sweep stopped before seed 1")
    silent = combine([(0, result("completed", None))], [0], "minimize")
    assert (silent["status"], silent["error"]) == ("failed", "seed 0: the run logged no loss/val")


def test_changed_seeds_are_refused_like_a_changed_space(toy: Path, tmp_path: Path) -> None:
    from torch_lab.sweep.study import open_study

    sweep = read(toy, tmp_path, '"seeds": [0, 1]')
    open_study(sweep, "s", tmp_path, False, toy)
    open_study(sweep, "s", tmp_path, False, toy)  # the same seeds continue it
    sweep.seeds = [0, 1, 2]
    with pytest.raises(UserError) as error:
        open_study(sweep, "s", tmp_path, False, toy)
    assert str(error.value) == ("sweep.py: seeds is [0, 1, 2], but the study in . has "
                                "[0, 1]; the seeds of a study cannot change; rename sweep.py or remove . to start afresh")


def study_of(toy: Path, tmp_path: Path, count: int) -> object:
    """A real journal study with ``count`` completed trials over two parameters."""
    from torch_lab.sweep.study import open_study

    hparams = validate(import_script_as_module(toy).hparams, toy)
    sweep = read_sweep(sweep_file(tmp_path, '{"space": {"config.lr": {"low": 0.01, "high": 0.5}, '
                                            '"config.schedule": ["step", "warmup_cosine"]}, "seed": 0}'), hparams, toy)
    study = open_study(sweep, "s", tmp_path, False, toy)
    for index in range(count):
        trial = study.ask(optuna_distributions(sweep))
        trial.set_user_attr("status", "completed")
        study.tell(trial, trial.params["config.lr"] + 0.01 * index)
    return study


def test_importances_need_enough_completed_trials(toy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    two = tmp_path / "two"
    two.mkdir()
    drawn = pictures(study_of(toy, two, 2), two, "loss/val")
    assert sorted(p.name for p in drawn) == ["optimization_history.png", "parallel_coordinate.png"]
    assert not (two / "param_importances.png").exists()
    assert capsys.readouterr().out == (f"torch-lab: no param_importances.png: param importances need at least "
                                       f"{MIN_IMPORTANCE_TRIALS} completed trials; have 2\n")
    enough = tmp_path / "enough"
    enough.mkdir()
    drawn = pictures(study_of(toy, enough, MIN_IMPORTANCE_TRIALS), enough, "loss/val")
    assert (enough / "param_importances.png").read_bytes()[:4] == b"\x89PNG" and len(drawn) == 3
    assert capsys.readouterr().out == ""
