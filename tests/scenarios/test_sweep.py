"""Sweeps: ``train HPARAMS.py --sweep SWEEP.py`` through the real console script (offline ClearML
sessions, real Optuna journal storage), the sweep file's validation, and the translation of the
space into ClearML's parameter ranges."""

from __future__ import annotations

import csv
import json
import signal
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, run_cli, sets
from torch_lab.errors import UserError
from torch_lab.experiment.hparams import validate
from torch_lab.sweep.space import clearml_ranges, optuna_distributions, resolved_sweep, read_sweep
from torch_lab.utils import import_script_as_module

REGRESSION = REPO / "src" / "example_project" / "experiments" / "01_regression" / "hparams.py"


def write_sweep(folder: Path, text: str, name: str = "sweep.py") -> Path:
    path = folder / name
    path.write_text(f"sweep = {text}\n")
    return path


def run_dirs(root: Path) -> list[dict]:
    """run.json of every run under the artifacts root, by trial number."""
    records = [json.loads(p.read_text()) for p in (root / "data" / "artifacts").glob("*/run.json")]
    return sorted(records, key=lambda r: r.get("sweep", {}).get("trial", -1))


def session(record: dict) -> dict:
    with zipfile.ZipFile(record["offline_session"]) as zipped:
        return json.loads(zipped.read("task.json"))


def toy_hparams(toy: Path) -> dict:
    return validate(import_script_as_module(toy).hparams, toy)


# The sweep file's mistakes: one line naming the sweep file and the key (read before __main__.py).
BAD_SWEEPS = [
    ('{"trials": 2, "spaces": {}}', "sweep.py: unknown key 'spaces' (did you mean 'space'?)"),
    ('{"trials": 2, "space": {"config.lrr": [0.1, 0.2]}}',
     "sweep.py: space: --set config.lrr: no key 'config.lrr' in experiments/01_toy/hparams.py "
     "(did you mean 'lr'?)"),
    ('{"trials": 2, "space": {"monitor.mode": ["min", "maximum"]}}',
     "sweep.py: space: experiments/01_toy/hparams.py: monitor.mode must be 'min' or 'max', got 'maximum'"),
    ('{"trials": 2, "space": {"config.lr": {"low": 0.1, "high": 0.01}}}',
     "sweep.py: space.config.lr: low must be below high, got low=0.1 high=0.01"),
    ('{"trials": 2, "space": {"config.lr": {"low": 0.0, "high": 1.0, "log": True}}}',
     "sweep.py: space.config.lr: a log range needs low > 0, got 0.0"),
    ('{"trials": 2, "space": {"config.lr": {"low": 0.1, "hi": 1.0}}}',
     "sweep.py: unknown key 'space.config.lr.hi' (did you mean 'high'?)"),
    ('{"trials": 2, "space": {"config.lr": []}}',
     "sweep.py: space.config.lr is an empty list; give at least one value"),
    ('{"trials": 2, "space": {"config.lr": 0.1}}',
     "sweep.py: space.config.lr must be a list of values or a dict with low and high, got float"),
    ('{"trials": 2, "space": {"config.lr": [0.1]}, "sampler": "cmaes"}',
     "sweep.py: sampler must be one of tpe, random, grid, got 'cmaes'"),
    ('{"trials": 2, "space": {"config.lr": [0.1]}, "pruner": "early"}',
     "sweep.py: pruner must be one of none, median, hyperband, got 'early'"),
    ('{"trials": 2, "space": {"config.lr": {"low": 0.1, "high": 1.0}}, "sampler": "grid"}',
     "sweep.py: space.config.lr: the grid sampler needs a list or a range with a step"),
    ('{"trials": 0, "space": {"config.lr": [0.1]}}', "sweep.py: trials must be an int >= 1"),
    ('{"trials": 2, "space": {"config.lr": [0.1]}, "direction": "down"}',
     "sweep.py: direction must be 'minimize' or 'maximize', got 'down'"),
]


@pytest.mark.parametrize("text, message", BAD_SWEEPS, ids=[m.split(": ", 1)[1][:40] for _, m in BAD_SWEEPS])
def test_bad_sweep_file(toy: Path, tmp_path: Path, text: str, message: str) -> None:
    path = write_sweep(tmp_path, text)
    with pytest.raises(UserError) as error:
        read_sweep(path, toy_hparams(toy), toy)
    assert str(error.value) == message


def test_bad_sweep_through_train_is_exit_2_before_anything(toy: Path, tmp_path: Path) -> None:
    write_sweep(tmp_path, '{"trials": 2, "space": {"config.lrr": [0.1, 0.2]}}')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("train: error: sweep.py: space: --set config.lrr: no key 'config.lrr' "
                                     "in experiments/01_toy/hparams.py (did you mean 'lr'?)")
    write_sweep(tmp_path, '{"space": {"config.lr": [0.1]}, "pruner": {"type": "median", "n_startup": 1}}')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("train: error: sweep.py: no 'trials'; give it there or with --trials N")
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline", "--trials", "2")
    assert result.returncode == 2
    assert "sweep.py: pruner {'type': 'median', 'n_startup': 1}: " in result.stderr
    assert "unexpected keyword argument 'n_startup'" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "clearml-cache" / "offline").exists()


def test_describe_fills_the_defaults_from_the_monitor(toy: Path, tmp_path: Path) -> None:
    path = write_sweep(tmp_path, '{"space": {"config.lr": {"low": 1e-3, "high": 1.0, "log": True}, '
                                 '"trainer.init.max_epochs": {"low": 1, "high": 3}, "config.schedule": '
                                 '["step", "warmup_cosine"]}, "pruner": "median"}')
    sweep = resolved_sweep(path, toy_hparams(toy), toy)
    assert json.loads(json.dumps(sweep)) == sweep  # plain data
    assert sweep["metric"] == "loss/val" and sweep["direction"] == "minimize"
    assert sweep["space"] == {
        "config.lr": {"type": "float", "low": 1e-3, "high": 1.0, "step": None, "log": True},
        "trainer.init.max_epochs": {"type": "int", "low": 1, "high": 3, "step": 1, "log": False},
        "config.schedule": {"type": "categorical", "choices": ["step", "warmup_cosine"]},
    }
    assert sweep["pruner"] == {"type": "median"} and sweep["sampler"] == "tpe" and sweep["trials"] is None


# Run in a child process: Task.init marks its process as a ClearML master (CLEARML_PROC_MASTER_ID),
# which the later tests' train processes would inherit and attach to.
TRANSLATE = """
import json, sys
from pathlib import Path
from torch_lab.tracking import task as tracking
from torch_lab.experiment.hparams import validate
from torch_lab.sweep.queue import build_optimizer
from torch_lab.sweep.space import read_sweep
from torch_lab.utils import import_script_as_module

base, sweep_path = Path(sys.argv[1]), Path(sys.argv[2])
hparams = validate(import_script_as_module(base).hparams, base)
tracking.configure(True)
task = tracking.start_task(hparams["task"], "base", "training", [], True)
tracking.connect_hparams(task, hparams)
optimizer = build_optimizer(read_sweep(sweep_path, hparams, base), hparams, 4, task.id, "gpu", 2)
print("RESULT", json.dumps({"parameters": sorted(task.get_parameters()),
                            "converted": optimizer.optimizer._convert_hyper_parameters_to_optuna(),
                            "queue": optimizer.execution_queue,
                            "concurrent": optimizer.max_number_of_concurrent_tasks}))
task.close()
"""


@pytest.mark.slow  # moved to the slow stage: the default suite stays under 10 minutes
def test_space_translates_to_clearml_ranges_on_the_hparams_section(tmp_path: Path) -> None:
    """ClearML's optimizer is built offline over a real offline task holding the regression
    hparams (no server can run here, so it is never started): every range names a parameter the
    task has, and ClearML's own conversion back to Optuna gives torch-lab's distributions."""
    from torch_lab.sweep.queue import objective

    hparams = validate(import_script_as_module(REGRESSION).hparams, REGRESSION)
    path = write_sweep(tmp_path, '{"space": {"config.learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}, '
                                 '"config.model.hidden": [16, 32, 64], "config.model.layers": {"low": 1, "high": 4}, '
                                 '"config.batch_size": {"low": 16, "high": 128, "step": 16}, '
                                 '"monitor.min_delta": {"low": 0.0, "high": 0.5, "step": 0.25}, '
                                 '"monitor.patience": {"low": 1, "high": 5}}, "direction": "minimize"}')
    sweep = read_sweep(path, hparams, REGRESSION)
    child = subprocess.run([sys.executable, "-c", TRANSLATE, str(REGRESSION), str(path)], capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(next(line for line in child.stdout.splitlines() if line.startswith("RESULT "))[7:])
    converted = result["converted"]
    assert set(converted) <= set(result["parameters"])
    assert set(converted) == {"hparams/config/learning_rate", "hparams/config/model/hidden",
                              "hparams/config/model/layers", "hparams/config/batch_size",
                              "hparams/monitor/min_delta", "hparams/monitor/patience"}
    for key, distribution in optuna_distributions(sweep).items():
        kind, kwargs = converted["hparams/" + key.replace(".", "/")]
        assert kind == {"FloatDistribution": "suggest_float", "IntDistribution": "suggest_int",
                        "CategoricalDistribution": "suggest_categorical"}[type(distribution).__name__]
        expected = {name: getattr(distribution, name) for name in kwargs}
        if kind == "suggest_categorical":
            expected["choices"] = list(distribution.choices)
        assert kwargs == pytest.approx(expected) if kind == "suggest_float" else kwargs == expected, key
    assert objective(sweep) == ("mse", "val", "min_global")
    assert (result["queue"], result["concurrent"]) == ("gpu", 2)
    absent = read_sweep(write_sweep(tmp_path, '{"space": {"trainer.init.gradient_clip_val": [0.5, 1.0]}}',
                                    "absent.py"), hparams, REGRESSION)
    with pytest.raises(UserError, match="space.trainer.init.gradient_clip_val: not in the base hparams"):
        clearml_ranges(absent, hparams)


def test_trials_left_running_by_a_killed_sweep_are_interrupted_and_not_counted(toy: Path, tmp_path: Path) -> None:
    """A real journal study with one finished trial and one left running by a sweep process that
    is gone (a pid that no longer exists): the next start records it as interrupted."""
    from torch_lab.sweep.study import counted, open_study

    sweep = read_sweep(write_sweep(tmp_path, '{"trials": 3, "space": {"config.lr": [0.1, 0.2]}}'),
                       toy_hparams(toy), toy)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = open_study(sweep, "s", tmp_path, False, toy)
    done = study.ask(optuna_distributions(sweep))
    done.set_user_attr("status", "completed")
    study.tell(done, 0.5)
    left = study.ask(optuna_distributions(sweep))
    left.set_user_attr("sweep_pid", dead.pid)
    again = open_study(sweep, "s", tmp_path, False, toy)
    [first, second] = again.get_trials()
    assert (first.state.name, second.state.name) == ("COMPLETE", "FAIL")
    assert second.user_attrs["status"] == "interrupted" and counted(again) == 1


def test_queue_base_task_is_left_as_a_draft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stands in for the ClearML server, which cannot run here: the task object records the
    documented ``execute_remotely`` call (against a server, queue_name=None leaves the task a draft
    and exits) and exits as it would."""
    from torch_lab.tracking import agent
    from torch_lab.tracking import task as tracking

    calls = []

    class RecordingTask:
        id = "base-task"

        def execute_remotely(self, **kwargs):
            calls.append(kwargs)
            raise SystemExit(0)

    record = tmp_path / "template.json"
    monkeypatch.setenv("TORCH_LAB_TEMPLATE_FILE", str(record))
    monkeypatch.setattr(tracking.Task, "running_locally", staticmethod(lambda: True))
    with pytest.raises(SystemExit):
        agent.enqueue(RecordingTask(), "gpu")
    assert calls == [{"queue_name": None, "exit_process": True}]
    assert json.loads(record.read_text()) == {"task_id": "base-task"}


def check_sweep_outputs(root: Path, name: str, trials: int) -> dict:
    """The sweep folder and the sweep's own task; returns best.json. Parameter importances are
    drawn from 5 completed trials on."""
    folder = root / "data" / "artifacts" / "sweeps" / name
    for picture in ("optimization_history", "parallel_coordinate"):
        assert (folder / f"{picture}.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "param_importances.png").is_file() == (trials >= 5)
    rows = list(csv.DictReader(open(folder / "trials.csv")))
    assert [int(row["trial"]) for row in rows] == list(range(trials))
    best = json.loads((folder / "best.json").read_text())
    assert Path(best["checkpoint"]).is_file() and best["task_id"] in best["checkpoint"]
    return best


@pytest.mark.slow  # half a minute or more: the slow stage keeps the default suite short
def test_two_trial_sweep_of_the_toy(toy: Path, tmp_path: Path) -> None:
    write_sweep(tmp_path, '{"trials": 2, "seed": 1, "space": {"config.lr": {"low": 0.01, "high": 0.5, '
                          '"log": True}, "config.schedule": ["step", "warmup_cosine"]}}')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline", "--parallel", "--set",
                     "trainer.init.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    name = "01_toy-hparams-sweep"
    records = run_dirs(tmp_path)
    assert [r["sweep"] for r in records] == [{"name": name, "trial": 0}, {"name": name, "trial": 1}]
    assert all(r["status"] == "completed" for r in records)
    sweep_zip = max((tmp_path / "clearml-cache" / "offline").glob("*.zip"), key=lambda p: p.stat().st_mtime)
    with zipfile.ZipFile(sweep_zip) as zipped:
        sweep_task = json.loads(zipped.read("task.json"))
        metrics = zipped.read("metrics.jsonl").decode()
        names = zipped.namelist()
    assert sweep_task["type"] == "optimizer" and sweep_task["name"] == name
    for record in records:
        task = session(record)
        assert task["parent"] == sweep_task["id"]
        assert {f"sweep:{name}", f"trial:{record['sweep']['trial']}"} <= set(task["tags"])
        hparams = json.loads((Path(record["checkpoints"]["best"]).parents[1] / "hparams.json").read_text())
        assert hparams["trainer"]["init"]["max_epochs"] == 1
    assert '"trials"' in metrics and '"summary"' in metrics  # the table, as a ClearML table plot
    assert sum("/metrics/sweep/" in n and n.endswith(".png") for n in names) == 2  # no importances of 2 trials
    assert ("torch-lab: no param_importances.png: param importances need at least 5 completed trials; have 2"
            in result.stdout.splitlines())
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["trial", "task", "id"])
    assert lines[header].split() == ["trial", "task", "id", "status", "values", "loss/val", "duration", "best"]
    table = lines[header + 1: header + 3]
    assert [line.split()[2] for line in table] == ["completed", "completed"]
    assert sum(line.rstrip().endswith("*") for line in table) == 1
    best = check_sweep_outputs(tmp_path, name, 2)
    assert best["task_id"] in next(line for line in table if line.rstrip().endswith("*"))


@pytest.mark.slow
def test_regression_sweep_of_six_trials_then_two_more(tmp_path: Path) -> None:
    """The docs' sweep (docs/how-to/sweeps.md): the regression example over its learning rate and
    hidden width (small data and two epochs), then the same command with --trials 8 adds exactly two trials."""
    command = ["train", REGRESSION, "--sweep", REGRESSION.parent / "sweep.py", "--offline", "--parallel",
               *sets("config.train_size=256", "config.val_size=64", "trainer.init.max_epochs=2")]
    began = time.perf_counter()
    first = run_cli(*command, timeout=900)
    print(f"6 trials: {time.perf_counter() - began:.0f} s")
    assert first.returncode == 0, first.stderr[-3000:]
    name = "01_regression-hparams-sweep"
    records = run_dirs(tmp_path)
    assert [r["sweep"]["trial"] for r in records] == list(range(6))
    assert all(r["status"] == "completed" and r["best"]["monitor"] == "mse/val" for r in records)
    best = check_sweep_outputs(tmp_path, name, 6)
    assert best["objective"] == min(r["best"]["value"] for r in records)
    assert set(best["values"]) == {"config.learning_rate", "config.model.hidden"}
    second = run_cli(*command, "--trials", "8", timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "6 of 8 trials done" in second.stdout
    records = run_dirs(tmp_path)
    assert [r["sweep"]["trial"] for r in records] == list(range(8))
    check_sweep_outputs(tmp_path, name, 8)


@pytest.mark.slow
def test_sweep_over_two_seeds_runs_each_trial_twice_and_reports_means(toy: Path, tmp_path: Path) -> None:
    """The Done-when line: ``"seeds": [0, 1]`` and ``--trials 3`` run 6 ordinary runs, two per
    trial, each with its seed and its trial's group; trials.csv and best.json hold the mean, std
    and n of the runs' own best values."""
    write_sweep(tmp_path, '{"seeds": [0, 1], "seed": 0, "space": {"config.lr": {"low": 0.01, "high": 0.5, '
                          '"log": True}}}')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--trials", "3", "--offline",
                     "--set", "trainer.init.max_epochs=1", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    name = "01_toy-hparams-sweep"
    records = run_dirs(tmp_path)
    assert len(records) == 6 and all(r["status"] == "completed" for r in records)
    values: dict[int, dict[int, float]] = {}
    for record in records:
        trial, seed = record["sweep"]["trial"], record["sweep"]["seed"]
        run_dir = tmp_path / "data" / "artifacts" / Path(record["checkpoints"]["best"]).parents[1].name
        assert json.loads((run_dir / "hparams.json").read_text())["seed"] == seed
        assert record["sweep"]["name"] == name and record["group"] == f"{name}-trial-{trial}"
        assert f"group:{name}-trial-{trial}" in session(record)["tags"]
        values.setdefault(trial, {})[seed] = record["best"]["value"]
    assert {trial: sorted(seeds) for trial, seeds in values.items()} == {0: [0, 1], 1: [0, 1], 2: [0, 1]}
    folder = tmp_path / "data" / "artifacts" / "sweeps" / name
    rows = list(csv.DictReader(open(folder / "trials.csv")))
    assert [int(row["trial"]) for row in rows] == [0, 1, 2]
    for row in rows:
        bests = [values[int(row["trial"])][seed] for seed in (0, 1)]
        assert float(row["mean"]) == float(row["objective"]) == statistics.mean(bests)
        assert float(row["std"]) == pytest.approx(statistics.stdev(bests)) and row["n"] == "2"
    best = json.loads((folder / "best.json").read_text())
    assert best["objective"] == best["mean"] == min(statistics.mean(v.values()) for v in values.values())
    assert [(run["seed"], run["value"]) for run in best["seeds"]] == sorted(values[best["trial"]].items())
    assert best["n"] == 2 and Path(best["checkpoint"]).is_file()
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.split()[:3] == ["trial", "task", "id"])
    assert "loss/val (mean ± std, 2 seeds)" in header
    assert sum(" ± " in line for line in lines[lines.index(header) + 1:][:3]) == 3
    assert "torch-lab: sweep 01_toy-hparams-sweep: trial 2: seed 1 (2 of 2)" in lines
    assert not (folder / "param_importances.png").exists()


@pytest.mark.slow
def test_median_pruner_prunes_a_bad_trial(toy: Path, tmp_path: Path) -> None:
    """A space with a good and a useless learning rate: the median pruner, starting after one
    trial, prunes a useless one after its first epoch, which keeps its checkpoints."""
    write_sweep(tmp_path, '{"trials": 3, "seed": 0, "sampler": "random", "space": {"config.lr": [0.5, 1e-7]}, '
                          '"pruner": {"type": "median", "n_startup_trials": 1}}')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline", *sets("seed=0",
                                                                            "trainer.init.max_epochs=3"))
    assert result.returncode == 0, result.stderr[-3000:]
    records = run_dirs(tmp_path)
    statuses = {r["sweep"]["trial"]: r["status"] for r in records}
    assert "pruned" in statuses.values() and "failed" not in statuses.values(), statuses
    pruned = next(r for r in records if r["status"] == "pruned")
    assert json.loads((Path(pruned["checkpoints"]["last"]).parents[1] / "hparams.json").read_text())[
        "config"]["lr"] == 1e-7
    assert "pruned" in session(pruned)["tags"]
    rows = list(csv.DictReader(open(tmp_path / "data/artifacts/sweeps/01_toy-hparams-sweep/trials.csv")))
    assert {row["status"] for row in rows} >= {"completed", "pruned"}


@pytest.mark.slow
def test_pruner_over_seeds_prunes_during_the_first_seed_and_skips_the_rest(toy: Path, tmp_path: Path) -> None:
    """Over seeds, the first seed reports to the pruner: a useless trial is pruned during its first
    seed's run and its second seed never runs; completed trials ran both."""
    write_sweep(tmp_path, '{"trials": 3, "seed": 0, "seeds": [0, 1], "sampler": "random", '
                          '"space": {"config.lr": [0.5, 1e-7]}, "pruner": {"type": "median", "n_startup_trials": 1}}')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline", "--set", "trainer.init.max_epochs=2",
                     timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    runs: dict[int, list[dict]] = {}
    for record in run_dirs(tmp_path):
        runs.setdefault(record["sweep"]["trial"], []).append(record)
    rows = {int(row["trial"]): row for row in csv.DictReader(
        open(tmp_path / "data/artifacts/sweeps/01_toy-hparams-sweep/trials.csv"))}
    assert "pruned" in {row["status"] for row in rows.values()}, rows
    for trial, row in rows.items():
        if row["status"] == "pruned":
            [record] = runs[trial]
            assert (record["status"], record["sweep"]["seed"], row["n"]) == ("pruned", 0, "0")
        else:
            assert row["status"] == "completed" and sorted(r["sweep"]["seed"] for r in runs[trial]) == [0, 1]


@pytest.mark.slow
def test_ctrl_c_interrupts_the_trial_and_the_next_start_replaces_it(toy: Path, tmp_path: Path) -> None:
    write_sweep(tmp_path, '{"trials": 1, "space": {"config.lr": [0.1]}}')
    command = [str(Path(sys.executable).parent / "train"), str(toy), "--sweep", "sweep.py", "--offline",
               *sets("config.batch_sleep=0.5", "trainer.init.max_epochs=30")]  # 2 s an epoch
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "data" / "artifacts").glob("*/history.csv")) and time.monotonic() < deadline:
        time.sleep(0.5)  # the trial has trained its first epoch
    sweep.send_signal(signal.SIGINT)
    out, err = sweep.communicate(timeout=240)
    assert sweep.returncode == 130, err[-3000:]
    [record] = run_dirs(tmp_path)
    assert record["status"] == "interrupted" and "last" in record["checkpoints"]
    assert [line.split()[:3] for line in out.splitlines() if line.startswith("0  ")] == [
        ["0", record["task_id"], "interrupted"]]  # the summary's row
    again = run_cli("train", toy, "--sweep", "sweep.py", "--offline", "--set", "trainer.init.max_epochs=1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 of 1 trials done" in again.stdout
    assert [r["status"] for r in run_dirs(tmp_path)] == ["interrupted", "completed"]


def offline_task(root: Path, name: str) -> dict:
    """task.json of the sweep task ``name`` (its offline session zip)."""
    for path in (root / "clearml-cache" / "offline").glob("*.zip"):
        with zipfile.ZipFile(path) as zipped:
            task = json.loads(zipped.read("task.json"))
        if task["name"] == name and task["type"] == "optimizer":
            return task
    raise AssertionError(f"no sweep task {name}")


@pytest.mark.slow
def test_grid_sweep_runs_its_last_point_then_has_nothing_to_run(toy: Path, tmp_path: Path) -> None:
    """A grid of two points asked for 5 trials runs both (no ``Study.stop`` crash at the last
    one), writes its table, trials.csv and best.json and closes its task; ``--trials 1`` after
    two done says so and runs nothing."""
    write_sweep(tmp_path, '{"trials": 5, "sampler": "grid", "space": {"config.lr": [0.1, 0.2]}}')
    command = ["train", toy, "--sweep", "sweep.py", "--offline", "--set", "trainer.init.max_epochs=1"]
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the grid has 2 points; running 2 trials, not 5" in result.stdout
    name = "01_toy-hparams-sweep"
    best = check_sweep_outputs(tmp_path, name, 2)
    assert best["values"]["config.lr"] in (0.1, 0.2) and "Traceback" not in result.stderr
    assert sorted(r["sweep"]["trial"] for r in run_dirs(tmp_path)) == [0, 1]
    assert "completed" in offline_task(tmp_path, name)["tags"]  # the sweep task was closed
    again = run_cli(*command, "--trials", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 trials done, more than the 1 asked: none to run" in again.stdout
    assert len(run_dirs(tmp_path)) == 2 and "WARNING" not in again.stderr


@pytest.mark.slow
def test_dev_run_sweep_is_a_study_of_its_own(toy: Path, tmp_path: Path) -> None:
    write_sweep(tmp_path, '{"trials": 1, "space": {"config.lr": [0.1]}}')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline", "--dev-run", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = tmp_path / "data" / "artifacts" / "sweeps"
    assert [p.name for p in sweeps.iterdir()] == ["01_toy-hparams-sweep-dev"]
    [record] = run_dirs(tmp_path)
    assert record["sweep"] == {"name": "01_toy-hparams-sweep-dev", "trial": 0}


@pytest.mark.slow
def test_two_sweep_processes_of_one_study_run_exactly_n_trials(toy: Path, tmp_path: Path) -> None:
    """Two sweep processes on one journal at once (as a job array on a shared filesystem would
    start them) run 3 trials in all, not 3 each: each new trial is counted and asked under the
    study's lock, running ones included."""
    write_sweep(tmp_path, '{"trials": 3, "sampler": "random", "seed": 0, "space": {"config.lr": '
                          '{"low": 0.01, "high": 0.5}}}')
    command = [str(Path(sys.executable).parent / "train"), str(toy), "--sweep", "sweep.py", "--offline",
               *sets("trainer.init.max_epochs=2", "config.batch_sleep=0.2")]
    sweeps = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    outputs = [sweep.communicate(timeout=600) for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], [err[-2000:] for _, err in outputs]
    assert sorted(r["sweep"]["trial"] for r in run_dirs(tmp_path)) == [0, 1, 2]
    assert all(r["status"] == "completed" for r in run_dirs(tmp_path))
    started = [out.count("torch-lab: sweep 01_toy-hparams-sweep: trial ") for out, _ in outputs]
    assert sum(started) == 3, started


def orphan_report(marker: str, output: Path) -> str:
    """What a trial still recorded ``running`` is doing: its processes (state, kernel wait channel,
    parent) and the end of its output, so that a failure says which of "trains on as an orphan",
    "hangs while stopping" and "died without recording" it was."""
    lines = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_text().replace("\0", " "):
                status = dict(line.split(":\t", 1) for line in (proc / "status").read_text().splitlines()
                              if ":\t" in line)
                lines.append(f"pid {proc.name}: state {status.get('State')}, parent {status.get('PPid')}, "
                             f"wchan {(proc / 'wchan').read_text()!r}")
        except OSError:
            continue
    tail = output.read_text(errors="replace")[-3000:] if output.exists() else "(no output)"
    return "trial still running 180 s after its sweep was killed\n" + "\n".join(
        lines or ["no process of the trial is left: it died without recording"]) + "\n--- output:\n" + tail


@pytest.mark.slow
def test_killed_sweep_takes_its_trial_along_and_the_next_start_shows_its_task(toy: Path, tmp_path: Path) -> None:
    """SIGKILL of the sweep: its trial gets SIGTERM from Linux (PR_SET_PDEATHSIG), stops cleanly
    and records itself interrupted with its checkpoints; the next start shows the trial's task id.
    Its result files were under the artifacts root. (Linux sends that SIGTERM once per sweep
    thread the trial is attached to as each exits: up to 7 here. Until they counted as one
    stop, the second stopped the trial at once, and 2 runs in 5 ended without a checkpoint.)"""
    write_sweep(tmp_path, '{"trials": 1, "space": {"config.lr": [0.1]}}')
    command = [str(Path(sys.executable).parent / "train"), str(toy), "--sweep", "sweep.py", "--offline",
               *sets("config.batch_sleep=0.5", "trainer.init.max_epochs=30")]
    output = tmp_path / "sweep-output.txt"  # the trial inherits it: its last words on a failure
    with open(output, "w") as sink:
        sweep = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "data" / "artifacts").glob("*/history.csv")):
        assert time.monotonic() < deadline and sweep.poll() is None
        time.sleep(0.5)
    sweep.kill()
    sweep.wait()
    deadline = time.monotonic() + 180  # the trial stops after its current batch, then records itself
    while run_dirs(tmp_path)[0]["status"] == "running":
        assert time.monotonic() < deadline, orphan_report(str(toy), output)
        time.sleep(0.5)
    [record] = run_dirs(tmp_path)
    assert record["status"] == "interrupted" and "last" in record["checkpoints"]
    again = run_cli("train", toy, "--sweep", "sweep.py", "--offline", "--set", "trainer.init.max_epochs=1")
    assert again.returncode == 0, again.stderr[-3000:]
    rows = [line.split() for line in again.stdout.splitlines() if line[:3] in ("0  ", "1  ")]
    assert rows[0][:3] == ["0", record["task_id"], "interrupted"] and rows[1][2] == "completed"
    # The killed sweep's result files were in its folder under the artifacts root, not in /tmp.
    assert len(list((tmp_path / "data" / "artifacts" / "sweeps").glob("*/.results-*"))) == 1


@pytest.mark.slow
def test_sigterm_after_the_summary_is_130_without_a_traceback(toy: Path, tmp_path: Path) -> None:
    write_sweep(tmp_path, '{"trials": 1, "space": {"config.lr": [0.1]}}')
    command = [str(Path(sys.executable).parent / "train"), str(toy), "--sweep", "sweep.py", "--offline",
               "--set", "trainer.init.max_epochs=1"]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in sweep.stdout:
        if line.split()[:3] == ["trial", "task", "id"]:  # the summary's header
            break
    assert sweep.poll() is None  # pictures, trials.csv and the task are still to come
    sweep.send_signal(signal.SIGTERM)
    out, err = sweep.communicate(timeout=240)
    assert sweep.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    folder = tmp_path / "data" / "artifacts" / "sweeps" / "01_toy-hparams-sweep"
    assert (folder / "trials.csv").is_file() and (folder / "best.json").is_file()


@pytest.mark.slow
def test_sweep_without_a_completed_trial_ends_with_its_own_line(toy: Path, tmp_path: Path) -> None:
    """Every trial fails: exit 1, no pictures, and the last line is the sweep's, not Optuna's."""
    write_sweep(tmp_path, '{"trials": 1, "space": {"config.lr": [0.1]}}')
    result = run_cli("train", toy, "--sweep", "sweep.py", "--offline",
                     *sets("config.crash_at_epoch=0", "trainer.init.max_epochs=1"))
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "train: sweep 01_toy-hparams-sweep: no trial completed"
    folder = tmp_path / "data" / "artifacts" / "sweeps" / "01_toy-hparams-sweep"
    assert (folder / "trials.csv").is_file() and not list(folder.glob("*.png"))
