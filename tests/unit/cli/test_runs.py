"""The ``runs`` console script, run in a subprocess as a user would: on real runs of the toy
experiment (trained once for the module by the real ``train``, offline) and, for exact output, on
run directories written here with fixed values."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.image import imread

from conftest import ASSETS, run_cli, sets

HEAVY = ("torch", "clearml", "pytorch_lightning", "lightning", "lightning_fabric", "matplotlib")


# ---------------------------------------------------------------- real runs of the toy experiment


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Three offline runs of the toy experiment: A (2 epochs), B (3 epochs, lr 0.05, started from
    A's weights) and C (a dev run)."""
    base = tmp_path_factory.mktemp("real-runs")
    shutil.copytree(ASSETS / "toy", base / "experiments" / "01_toy")
    hparams = base / "experiments" / "01_toy" / "hparams.py"
    root = base / "artifacts"
    with pytest.MonkeyPatch.context() as patch:
        for name in ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY",
                     "CLEARML_OFFLINE_MODE", "CLEARML_CONFIG_FILE"):
            patch.delenv(name, raising=False)
        patch.setenv("TORCH_LAB_ARTIFACTS", str(root))
        patch.setenv("CLEARML_CACHE_DIR", str(base / "clearml-cache"))
        patch.setenv("HOME", str(base / "home"))
        patch.setenv("PYTHONWARNINGS", "ignore")
        patch.setenv("MPLCONFIGDIR", str(base / "matplotlib"))

        def start(*args: str) -> subprocess.Popen:
            command = [str(Path(sys.executable).parent / "train"), str(hparams), "--offline", *args]
            return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def task_id(process: subprocess.Popen) -> str:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr[-3000:]
            return re.search(r"task (offline-\w+) completed", stdout).group(1)

        dev_run = start("--dev-run", "2")  # alongside A: the fixture's time is mostly imports
        a = task_id(start("--set", "trainer.init.max_epochs=2"))
        b = task_id(start(*sets("trainer.init.max_epochs=3", "config.lr=0.05",
                                f"checkpoint.checkpoint_task_id='{a}'", "checkpoint.weights_only=True")))
        c = task_id(dev_run)
    return SimpleNamespace(root=root, a=a, b=b, c=c)


def runs(*args: str | Path) -> subprocess.CompletedProcess:
    return run_cli("runs", *args, timeout=60)


def record(root: Path, task_id: str) -> dict:
    return json.loads(next(root.glob(f"*-{task_id}/run.json")).read_text())


def test_listing_real_runs(real: SimpleNamespace) -> None:
    result = runs("--root", real.root)
    assert result.returncode == 0 and result.stderr == ""
    header, *rows = [re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()]
    assert header == ["task name", "task id", "status", "started", "duration", "epochs", "best",
                      "max_epochs", "limit_train_batches", "limit_val_batches", "limit_test_batches",
                      "lr", "checkpoint_task_id", "weights_only", "seed"]  # in hparams order
    # newest last (the dev run ran alongside A: either may have started first)
    order = sorted((real.a, real.b, real.c),
                   key=lambda i: (record(real.root, i)["started"], next(real.root.glob(f"*-{i}")).name))
    assert [row[1] for row in rows] == order
    by_id = {row[1]: row for row in rows}
    a, b, c = by_id[real.a], by_id[real.b], by_id[real.c]
    assert [row[0] for row in (a, b, c)] == ["01_toy-hparams", "01_toy-hparams", "dev_01_toy-hparams"]
    assert {row[2] for row in rows} == {"completed"}
    assert [row[5] for row in (a, b, c)] == ["2", "3", "1"]  # epochs: history.csv's rows
    for row in rows:
        best = record(real.root, row[1])["best"]
        assert row[6] == f"loss/val={best['value']:.4g}"
    assert [row[11:13] for row in (a, b, c)] == [["0.1", "None"], ["0.05", real.a], ["0.1", "None"]]
    assert c[8:11] == ["2", "2", "2"] and a[8:11] == b[8:11] == ["-", "-", "-"]
    assert len({row[-1] for row in rows}) == 3  # each run drew its own seed
    only_b = runs("--root", real.root, "--json", "--last", "1", "--status", "completed", "01_toy-*")
    assert [run["task_id"] for run in json.loads(only_b.stdout)] == [real.b]


def test_show_real_run(real: SimpleNamespace) -> None:
    result = runs("show", real.b.removeprefix("offline-")[:6], "--root", real.root)
    assert result.returncode == 0, result.stderr
    session = record(real.root, real.b)["offline_session"]
    text = result.stdout
    assert f"task id       {real.b}\n" in text and "status        completed\n" in text
    assert "  config.lr                         0.05\n" in text
    assert f"lineage:\n  <- {real.a} (01_toy-hparams, completed): checkpoint 'last', weights only\n" in text
    files = text.split("files:\n")[1].split("\n\n")[0]
    assert [line.split()[0] for line in files.splitlines()] == [
        "console.log", "curves.png", "history.csv", "hparams.json", "model_summary.txt", "run.json", "source.zip",
        "checkpoints/best.ckpt", "checkpoints/last.ckpt"]
    assert text.endswith(f"offline session:\n  {session}\n"
                         f"  import it with: clearml-task --import-offline-session {session}\n")
    assert Path(session).is_file()


def test_compare_real_runs(real: SimpleNamespace) -> None:
    result = runs("compare", real.a, real.b, "--root", real.root)
    assert result.returncode == 0, result.stderr
    rows = {cells[0]: cells[1:] for cells in
            (re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines())}
    assert rows["config.lr"] == ["0.1", "0.05"] and rows["trainer.init.max_epochs"] == ["2", "3"]
    assert rows["epochs"] == ["2", "3"]
    for index, task_id in enumerate((real.a, real.b)):
        assert rows["loss/test"][index] == f"{record(real.root, task_id)['metrics']['loss/test']:.6g}"


def test_plot_real_runs(real: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "plots" / "all.png"
    result = runs("plot", real.a, real.b, real.c, "--out", out, "--root", real.root)
    assert result.returncode == 0 and result.stdout == f"runs: wrote {out}\n", result.stderr
    # 5 metrics (accuracy and loss of train and val, lr-SGD): 2 rows of 3 panels, 4.2 x 3 in at 100
    # dpi, and the legend at their right
    assert imread(out).shape[0] == 600 and imread(out).shape[1] > 1260
    steps = runs("plot", real.a, real.b, "--steps", "--metric", "loss", "--out", tmp_path / "s.png",
                 "--root", real.root)
    assert steps.returncode == 0, steps.stderr
    assert imread(tmp_path / "s.png").shape[0] == 300  # loss/train, loss/val, loss/test: one row
    unknown = runs("plot", real.a, "--metric", "los", "--root", real.root)
    assert unknown.returncode == 2 and unknown.stderr.startswith("runs: error: --metric los: no run has it;")


def test_training_writes_curves_png(real: SimpleNamespace) -> None:
    for task_id in (real.a, real.b):
        image = imread(next(real.root.glob(f"*-{task_id}/curves.png")))
        assert image.shape[:2] == (224, 864)  # accuracy, loss, lr-SGD: 3 panels of 3.6 x 2.8 in at 80 dpi
        assert image[..., :3].std() > 0.05  # something is drawn
    assert not list(real.root.glob(f"*-{real.c}/curves.png"))  # dev runs draw none


def test_runs_imports_no_torch_clearml_lightning(real: SimpleNamespace) -> None:
    code = ("import sys; from torch_lab.cli.runs import main\n"
            f"for argv in ([], ['show', {real.a!r}], ['compare', {real.a!r}, {real.b!r}], ['--json']):\n"
            f"    assert main([*argv, '--root', {str(real.root)!r}]) == 0\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_unknown_and_ambiguous_ids(real: SimpleNamespace) -> None:
    unknown = runs("show", "nope", "--root", real.root)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == f"runs: error: no run with task id 'nope' under {real.root}\n"
    ambiguous = runs("compare", real.a, "offline-", "--root", real.root)
    assert ambiguous.returncode == 2 and len(ambiguous.stderr.splitlines()) == 1
    assert ambiguous.stderr.startswith("runs: error: task id 'offline-' is ambiguous under ")
    assert "3 runs match" in ambiguous.stderr and "give more characters" in ambiguous.stderr


def test_load_runs_and_csv_of_real_runs(real: SimpleNamespace) -> None:
    """``load_runs`` and ``runs --csv`` give the recorded values exactly (issue 19, item 3)."""
    import csv
    import io

    from torch_lab.runs import load_runs

    loaded = {run["task_id"]: run for run in load_runs(real.root)}
    assert set(loaded) == {real.a, real.b, real.c}
    b, recorded = loaded[real.b], record(real.root, real.b)
    assert (b["task_name"], b["status"], b["epochs"]) == ("01_toy-hparams", "completed", 3)
    assert (b["started"], b["finished"]) == (recorded["started"], recorded["finished"])
    assert b["best"] == recorded["best"] and b["metrics"] == recorded["metrics"]
    assert b["hparams"]["config"]["lr"] == 0.05 and b["hparams_dotted"]["config.lr"] == 0.05
    assert b["hparams_dotted"]["checkpoint.checkpoint_task_id"] == real.a
    assert [row["epoch"] for row in b["history"]] == [0.0, 1.0, 2.0]
    with open(b["path"] / "history.csv", newline="") as handle:
        assert [float(r["loss/val"]) for r in csv.DictReader(handle)] == [r["loss/val"] for r in b["history"]]
    assert b["row"]["best.value"] == recorded["best"]["value"] and b["row"]["loss/test"] == recorded["metrics"]["loss/test"]
    assert [run["task_id"] for run in load_runs(real.root, pattern="dev_*")] == [real.c]
    assert load_runs(real.root, status="failed") == []

    result = runs("--csv", "--root", real.root)
    assert result.returncode == 0 and result.stderr == ""
    rows = {row["task_id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert set(rows) == {real.a, real.b, real.c}
    assert rows[real.b]["config.lr"] == "0.05" and rows[real.a]["trainer.init.max_epochs"] == "2"
    assert float(rows[real.b]["best.value"]) == recorded["best"]["value"]
    assert float(rows[real.b]["loss/test"]) == recorded["metrics"]["loss/test"]


def test_the_docs_notebook_example_runs(real: SimpleNamespace) -> None:
    """The docs' pandas example (docs/how-to/runs-as-data.md) on real runs, all of it: the dev
    extra installs pandas."""
    from conftest import REPO

    text = (REPO / "docs" / "how-to" / "runs-as-data.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0].replace('"data/artifacts"', repr(str(real.root)))
    namespace: dict = {}
    exec(compile(code, "runs-as-data.md", "exec"), namespace)
    assert {run["task_id"] for run in namespace["runs"]} == {real.a, real.b, real.c}
    assert set(namespace["table"].index) == {real.a, real.b, real.c}


# ---------------------------------------------------------------- the reading helpers


def test_flatten_differing_and_short_names() -> None:
    from torch_lab.runs.records import Run, differing, flatten
    from torch_lab.text import short_names

    flat = flatten({"config": {"lr": 0.1, "model": {"lr": 1}, "empty": {}}, "seed": None})
    assert flat == {"config.lr": 0.1, "config.model.lr": 1, "config.empty": {}, "seed": None}
    tree = {"config": {"lr": 0.1, "model": {"hidden": 32}}, "seed": 1}
    first = Run(Path("a"), {}, tree)
    second = Run(Path("b"), {}, {"config": {"lr": 0.2, "model": None}, "seed": 1, "x": [1]})
    assert differing([first, second]) == [("config", "lr"), ("config", "model"),
                                          ("config", "model", "hidden"), ("x",)]
    assert set(differing([first, second])) == {tuple(k.split(".")) for k in first.hparams.keys()
                                                ^ second.hparams.keys() | {"config.lr"}}
    assert differing([first, first]) == [] and differing([first]) == []
    assert first.hparam(("config", "model", "hidden")) == 32 and second.hparam(("x",)) == [1]
    assert repr(first.hparam(("x",))) == "-" and repr(first.hparam(("config", "model"))) == "-"
    assert short_names(["config.lr", "config.model.lr", "seed", "trainer.init.seed"]) == [
        "config.lr", "model.lr", "seed", "init.seed"]


def test_epochs_duration_and_lineage(tmp_path: Path) -> None:
    from torch_lab.runs.records import Run, count_rows, lineage

    (tmp_path / "h.csv").write_bytes(b"epoch,loss\n0,1\n1,0.5")  # no final newline
    assert count_rows(tmp_path / "h.csv") == 2 and count_rows(tmp_path / "none.csv") == 0
    running = Run(tmp_path, {"status": "running", "started": "2026-01-01T00:00:00+00:00"})
    assert running.duration is not None and running.duration > 0  # until now (no lock: an old run)
    assert Run(tmp_path, {"status": "failed", "started": "2026-01-01T00:00:00"}).duration is None
    a = Run(tmp_path, {"task_id": "a", "started_from": {"task_id": "b"}})
    b = Run(tmp_path, {"task_id": "b", "started_from": {"task_id": "a"}})  # a loop ends the chain
    c = Run(tmp_path, {"task_id": "c", "started_from": {"task_id": "a"}})
    assert [(i, r.task_id if r else None) for i, r in lineage(c, [a, b, c])] == [("a", "a"), ("b", "b")]
    assert [(i, r) for i, r in lineage(Run(tmp_path, {"started_from": {"task_id": "z"}}), [a])] == [("z", None)]


def test_a_running_run_whose_process_died_is_dead(tmp_path: Path) -> None:
    """``running`` in run.json while its owner holds the run's lock; ``dead`` once the owner is
    gone (here it exits: the kernel releases a flock whatever ends the process)."""
    import subprocess
    import sys

    from torch_lab.runs.records import Run

    (tmp_path / ".lock").write_text("")
    owner = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; "
                              "fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); "
                              "print('locked', flush=True); time.sleep(60)", str(tmp_path / ".lock")],
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout.readline().strip() == "locked"
    run = Run(tmp_path, {"status": "running", "started": "2026-01-01T00:00:00+00:00"})
    assert run.status == "running"
    owner.kill()
    owner.wait()
    assert run.status == "dead" and run.duration is None
