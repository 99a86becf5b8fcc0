"""``runs`` on many runs and on run directories a user (or a crash) broke, through the real
console script (issue 20 items 12-14, 22, 23, 28; issue 19 item 5; issue 30 items 22-25, 39)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from conftest import run_cli
from torch_lab.text import display_width
from unit.runs.test_report import write_run


def runs(*args: str | Path, env: dict[str, str] | None = None):
    return run_cli("runs", *args, timeout=60, env=env)


def many(root: Path, count: int) -> list[str]:
    """``count`` completed runs of two projects, with hparams that mostly differ; their ids."""
    ids = []
    for i in range(count):
        project = ("alpha", "beta")[i % 2]
        hparams = {"config": {"lr": 0.1 / (i + 1), "hidden": 32 + i, "optimizer": ("sgd", "adamw")[i % 3 > 0],
                              "schedule": {"warmup": i, "decay": 0.9 ** i}},
                   "trainer": {"init": {"max_epochs": 3 + i % 4}}, "seed": i, project: {"width": 1.0 / 3}}
        task_id = f"offline-{i:04x}{i * 7919:028x}"
        write_run(root, f"{project}_exp", task_id, "completed", f"2026-01-01T00:{i:02d}:00+00:00",
                  f"2026-01-01T01:{i:02d}:00+00:00", hparams, 3, best=0.123456789 * (i + 1), project_name=project)
        ids.append(task_id)
    return ids


def test_fifty_runs_of_two_projects_fit_120_columns(tmp_path: Path) -> None:
    many(tmp_path, 50)
    result = runs("--root", tmp_path, env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 51 and max(display_width(line) for line in lines) <= 120
    assert lines[0].split()[:9] == ["task", "name", "task", "id", "status", "started", "duration", "epochs", "best"]
    assert "lr" in lines[0].split() and "0.03333" in lines[3]  # 4 significant digits
    assert "loss/val=0.3704" in lines[3]
    [note] = result.stderr.splitlines()
    assert note.startswith("runs: ") and "left out to fit the terminal" in note and "--columns" in note
    picked = runs("--root", tmp_path, "--columns", "decay,init.max_epochs", env={"COLUMNS": "120"})
    assert picked.returncode == 0 and picked.stderr == ""
    assert picked.stdout.splitlines()[0].split()[-2:] == ["decay", "max_epochs"]
    unknown = runs("--root", tmp_path, "--columns", "nope")
    assert unknown.returncode == 2 and unknown.stderr == "runs: error: --columns nope: is no hparams key of these runs\n"


def test_bad_records_are_left_out_with_a_warning(tmp_path: Path) -> None:
    """One bad field costs that field, never the listing (issue 20, item 12)."""
    good = write_run(tmp_path, "good", "offline-good", "completed", "2026-01-01T00:00:00", None, {"x": 1}, 2, 0.5)
    best = write_run(tmp_path, "best", "offline-best", "completed", "2026-01-01T00:01:00", None, {"x": 2}, 2,
                     metrics=["loss", 1], sweep="s", started_from="offline-good")
    (best / "run.json").write_text(json.dumps({**json.loads((best / "run.json").read_text()), "best": "x"}))
    bad_value = write_run(tmp_path, "value", "offline-value", "failed", "2026-01-01T00:02:00", None, {"x": 3}, 1)
    record = json.loads((bad_value / "run.json").read_text())
    (bad_value / "run.json").write_text(json.dumps({**record, "best": {"monitor": "loss/val", "value": "abc"},
                                                    "metrics": {"loss/val": float("nan")}}))
    os.symlink(tmp_path / "gone", tmp_path / "dangling")  # a run folder that is no more
    os.symlink(tmp_path / "gone.csv", good / "extra.csv")  # a file of a run that is no more
    listing = runs("--root", tmp_path)
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 4, listing.stderr
    warnings = listing.stderr.splitlines()
    assert all(line.startswith("runs: warning: ") and line.endswith("; left out") for line in warnings)
    assert any("offline-best" in line and "best is str" in line for line in warnings)
    assert any("metrics is list" in line for line in warnings) and any("sweep is str" in line for line in warnings)
    assert any("best is dict" in line for line in warnings)
    for args in (["show", "best"], ["show", "value"], ["show", "good"], ["compare", "good", "best", "value"],
                 ["--sweep", "s"], ["--json"], ["--csv"], ["plot", "good", "best", "--out", str(tmp_path / "p.png")]):
        result = runs(*args, "--root", tmp_path)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stderr)
    assert "  extra.csv              (a link to nothing)\n" in runs("show", "good", "--root", tmp_path).stdout
    assert "NaN" not in runs("--json", "--root", tmp_path).stdout


def test_control_characters_are_printed_escaped(tmp_path: Path) -> None:
    """A task name cannot clear, retitle or ring the terminal (issue 20, item 14)."""
    name = "evil\x1b[2J\x1b]0;owned\x07\nname"
    write_run(tmp_path, "evil", "offline-evil", "completed", "2026-01-01T00:00:00", None, {"x": 1}, 1, 0.5)
    record_path = tmp_path / "evil-offline-evil" / "run.json"
    record_path.write_text(json.dumps({**json.loads(record_path.read_text()), "task_name": name}))
    for args in ([], ["show", "evil"], ["compare", "evil"], ["--csv"], ["--csv", "--group"]):  # csv: issue 30, 22
        result = runs(*args, "--root", tmp_path)
        assert result.returncode == 0, result.stderr
        assert not any(char in result.stdout for char in "\x1b\x07"), args
        assert "evil\\x1b[2J\\x1b]0;owned\\x07\\nname" in result.stdout, args


def test_symlinked_folders_once_and_wide_names_aligned(tmp_path: Path) -> None:
    """Issue 20, item 28: a symlink to a folder of the root (or to the root) lists nothing twice;
    CJK and emoji names take two columns each."""
    write_run(tmp_path, "ascii", "offline-aaaa", "completed", "2026-01-01T00:00:00", None, {"x": 1}, 1, 0.5)
    write_run(tmp_path, "実験名", "offline-bbbb", "completed", "2026-01-01T00:01:00", None, {"x": 2}, 1, 0.5)
    os.symlink(tmp_path / "ascii-offline-aaaa", tmp_path / "alias")
    os.symlink(tmp_path, tmp_path / "root-again")
    result = runs("--root", tmp_path)
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 3, result.stdout
    columns = [display_width(line.split("offline-")[0]) for line in lines[1:]]
    assert columns[0] == columns[1], lines  # the task id column starts at the same place


@pytest.mark.parametrize("last", ["0", "-1"])
def test_last_must_be_positive(tmp_path: Path, last: str) -> None:
    result = runs("--root", tmp_path, "--last", last)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"runs: error: argument --last: must be at least 1, got {last}"


@pytest.mark.parametrize("history, message", [
    ("epoch,loss/val\n0,0.5\n1,abc\n", "history.csv: line 3: loss/val is 'abc', not a number"),
    ("epoch,loss/val\n0,0.5\n1,0.4,9\n", "history.csv: line 3 has 3 values for 2 columns"),
    ("step,loss/val\n0,0.5\n", "history.csv: no 'epoch' column (it has step, loss/val)"),
], ids=["not_a_number", "ragged", "no_epoch"])
def test_plot_of_a_history_it_cannot_read(tmp_path: Path, history: str, message: str) -> None:
    run = write_run(tmp_path, "r", "offline-r", "completed", "2026-01-01T00:00:00", None, {"x": 1}, 1, 0.5)
    (run / "history.csv").write_text(history)
    result = runs("plot", "r", "--root", tmp_path, "--out", tmp_path / "p.png")
    assert result.returncode == 2 and result.stderr == f"runs: error: {run}/{message}\n"


def test_plot_steps_and_out(tmp_path: Path) -> None:
    """``--steps`` with an unexpected line; ``--out`` a directory, unwritable, or of a suffix:
    one line, exit 2; ``.jpg`` writes JPEG (issue 20, item 13)."""
    session = tmp_path / "session"
    session.mkdir()
    (session / "metrics.jsonl").write_text('[{"type": "training_stats_scalar", "metric": "loss", '
                                           '"variant": "val", "iter": 0, "value": 0.5}]\n{"not": "a list"}\n')
    write_run(tmp_path, "r", "offline-r", "completed", "2026-01-01T00:00:00", None, {"x": 1}, 2, 0.5,
              offline_session=str(session) + ".zip")
    steps = runs("plot", "r", "--steps", "--root", tmp_path, "--out", tmp_path / "s.png")
    assert steps.returncode == 2
    assert steps.stderr == f"runs: error: {session}/metrics.jsonl: line 2 is not a list of ClearML events\n"
    for out, message in [(tmp_path, f"is a directory; give a file, e.g. {tmp_path}/runs.png"),
                         (Path("/proc/runs.png"), "cannot write it (No such file or directory)"),
                         (tmp_path / "a.foo", "matplotlib cannot write foo; give one of .")]:
        result = runs("plot", "r", "--root", tmp_path, "--out", out)
        assert result.returncode == 2 and result.stderr.startswith(f"runs: error: --out {out}: {message}")
        assert len(result.stderr.splitlines()) == 1
    assert runs("plot", "r", "--root", tmp_path, "--out", tmp_path / "x.jpg").returncode == 0
    assert (tmp_path / "x.jpg").read_bytes()[:2] == b"\xff\xd8"  # JPEG, not PNG


def test_one_legend_outside_every_panel_for_twelve_runs(tmp_path: Path) -> None:
    """Issue 19, item 5: one legend for the figure, overlapping no panel; a colour per run."""
    from torch_lab.runs.plot import runs_figure
    from torch_lab.runs.records import read_runs

    many(tmp_path, 12)
    fig = runs_figure(read_runs(tmp_path))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    [legend] = fig.legends
    box = legend.get_window_extent(renderer)
    assert all(not axes.get_tightbbox(renderer).overlaps(box) for axes in fig.axes) and len(fig.axes) == 2
    assert all(not axes.get_legend() for axes in fig.axes)
    labels = [text.get_text() for text in legend.get_texts()]
    assert len(labels) == 12 and labels[2] == "00020000 alpha_exp lr=0.03333 hidden=34 optimizer=adamw"
    colours = {tuple(line.get_color()) for line in fig.axes[0].get_lines()}
    assert len(colours) == 12


def test_a_task_id_that_is_no_string_is_left_out(tmp_path: Path) -> None:
    """An int task_id is warned about and left out whole, not listed without an id (issue 30, 23)."""
    write_run(tmp_path, "good", "offline-good", "completed", "2026-01-01T00:00:00", None, {"x": 1}, 1, 0.5)
    bad = write_run(tmp_path, "int", "offline-int", "completed", "2026-01-01T00:01:00", None, {"x": 2}, 1, 0.5)
    (bad / "run.json").write_text(json.dumps({**json.loads((bad / "run.json").read_text()), "task_id": 5}))
    warning = (f"runs: warning: {bad}/run.json: unreadable (task_id is int 5, expected a task id (a non-empty "
               "string)); left out")
    for args in ([], ["--json"], ["--csv"], ["du"]):
        result = runs(*args, "--root", tmp_path)
        assert result.returncode == 0 and result.stderr.splitlines() == [warning], (args, result.stderr)
        assert "offline-int" not in result.stdout and "offline-good" in result.stdout
    assert len(json.loads(runs("--json", "--root", tmp_path).stdout)) == 1


@pytest.mark.parametrize("args, shown", [(["--status", "bogus"], "bogus: no such status;"),
                                         (["--status", "completed,faild"], "faild: no such status (did you mean 'failed'?);"),
                                         (["du", "--status", "complete"], "complete: no such status (did you mean 'completed'?);"),
                                         (["prune", "--status", "x"], "x: no such status;")])
def test_an_unknown_status_is_refused(tmp_path: Path, args: list[str], shown: str) -> None:
    """Issue 30, item 24: one line, exit 2 (it was taken as a status no run has)."""
    write_run(tmp_path, "a", "offline-a", "completed", "2026-01-01T00:00:00", None, {"x": 1}, 1, 0.5)
    result = runs(*args, "--root", tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"runs: error: --status {shown} one of running, completed, failed, interrupted, "
                             "pruned, dead\n")


def test_load_runs_root_and_statuses(tmp_path: Path) -> None:
    """Issue 30, item 25: a missing root is an error naming it; a comma list of statuses is taken
    as ``runs --status`` takes it; an unknown status is an error."""
    from torch_lab.errors import UserError
    from torch_lab.runs import load_groups, load_runs

    write_run(tmp_path, "a", "offline-a", "completed", "2026-01-01T00:00:00", None, {"x": 1}, 1, 0.5)
    write_run(tmp_path, "b", "offline-b", "failed", "2026-01-01T00:01:00", None, {"x": 2}, 1)
    write_run(tmp_path, "c", "offline-c", "interrupted", "2026-01-01T00:02:00", None, {"x": 3}, 1)
    for load in (load_runs, load_groups):
        with pytest.raises(FileNotFoundError, match="^no artifacts root /nonexistent \\(give root=DIR, or set "
                           "TORCH_LAB_ARTIFACTS\\)$"):
            load("/nonexistent")
        with pytest.raises(UserError, match="^status bogus: no such status"):
            load(tmp_path, status="bogus")
    assert [run["task_id"] for run in load_runs(tmp_path, status="completed,failed")] == ["offline-a", "offline-b"]
    assert [run["task_id"] for run in load_runs(tmp_path, status=["interrupted", "failed"])] == ["offline-b", "offline-c"]


def test_kind_column_and_the_csv_sweep_trial_and_group(tmp_path: Path) -> None:
    """Issue 30, item 39: the listing has a kind column when not all runs are training runs;
    ``--csv`` has kind, sweep, trial and group columns."""
    for task_name, task_id, task_type, extra in [
            ("exp", "offline-t1", "training", {"group": "exp-seeds-1"}),
            ("exp", "offline-t2", "training", {"sweep": {"name": "lr", "trial": 4}}),
            ("infer_exp", "offline-i1", "inference", {}), ("export_exp", "offline-e1", "custom", {}),
            ("lr_find_exp", "offline-l1", "training", {}), ("test_exp", "offline-s1", "testing", {})]:
        write_run(tmp_path, task_name, task_id, "completed", f"2026-01-01T00:0{len(task_id)}:00", None, {"x": 1}, 1,
                  task_type=task_type, **extra)
    lines = runs("--root", tmp_path).stdout.splitlines()
    assert lines[0].split()[:6] == ["task", "name", "task", "id", "status", "kind"]
    assert {line.split()[1]: line.split()[3] for line in lines[1:]} == {
        "offline-t1": "train", "offline-t2": "train", "offline-i1": "infer", "offline-e1": "export",
        "offline-l1": "lr-find", "offline-s1": "test"}
    assert "kind" not in runs("exp-*", "--root", tmp_path).stdout.splitlines()[0]  # training runs only
    rows = {row["task_id"]: row for row in csv.DictReader(io.StringIO(runs("--csv", "--root", tmp_path).stdout))}
    assert [key for key in rows["offline-t1"]][:8] == ["task_id", "task_name", "project", "kind", "status",
                                                       "sweep", "trial", "group"]
    assert (rows["offline-t2"]["sweep"], rows["offline-t2"]["trial"], rows["offline-t1"]["group"]) == ("lr", "4", "exp-seeds-1")
    assert rows["offline-l1"]["kind"] == "lr-find" and rows["offline-i1"]["sweep"] == ""
