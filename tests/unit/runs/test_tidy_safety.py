"""What ``runs`` never does to real runs of the toy experiment (see conftest.py), through the real
console script: follow a link out of a run, trust a path run.json names, choose one of two run
directories of one task id or a run by an empty id, crash on a run.json nested too deep; and
what it shows of runs not finished and of a sweep's removed best trial (issue 30, items 2, 4, 9,
26, 27, 34, 35)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import run_cli
from unit.runs.test_tidy import runs, snapshot

DEEP = '{"task_id": "offline-deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"


def edit(run_dir: Path, **fields: object) -> None:
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, **fields}))


def test_prune_and_du_follow_no_symlinked_checkpoints(real: SimpleNamespace, tmp_path: Path) -> None:
    """A checkpoints/ that is a link to a user's folder: prune leaves it (the folder's files all
    stay), du counts the link only (item 2)."""
    folder = tmp_path / "users-folder"
    folder.mkdir()
    for name in ("best.ckpt", "last.ckpt", "notes.txt"):
        (folder / name).write_text(f"the user's {name}\n")
    shutil.rmtree(real.dir_a / "checkpoints")
    (real.dir_a / "checkpoints").symlink_to(folder)
    before = snapshot(folder)
    pruned = runs("prune", "--yes", "--root", real.root)
    assert snapshot(folder) == before and len(before) == 3
    assert pruned.returncode == 0
    assert f"runs: {real.a} left as it is: checkpoints/ is a symbolic link (to {folder})\n" in pruned.stderr
    assert not (real.dir_b / "checkpoints" / "last.ckpt").exists()  # the other run is pruned
    used = runs("du", "--root", real.root)
    row = next(line.split() for line in used.stdout.splitlines() if real.a in line)
    assert row[3:5] == [str(len(str(folder))), "B"]  # the link's own bytes


def test_prune_du_and_rm_of_a_symlinked_run_directory(real: SimpleNamespace, tmp_path: Path) -> None:
    """A run directory that is a link (here to a copy elsewhere) is neither pruned, counted nor
    removed, and the folder it points to keeps every file (item 2)."""
    elsewhere = tmp_path / "elsewhere"
    real.dir_a.rename(elsewhere)
    real.dir_a.symlink_to(elsewhere)
    before = snapshot(elsewhere)
    why = f"{real.dir_a} is a symbolic link (to {elsewhere})"
    pruned = runs("prune", "--yes", "--root", real.root)
    assert pruned.returncode == 0 and f"runs: {real.a} left as it is: {why}\n" in pruned.stderr
    used = runs("du", "--root", real.root)
    assert used.returncode == 0 and f"runs: {real.a}: {why}; not counted\n" in used.stderr
    assert next(line.split() for line in used.stdout.splitlines() if real.a in line)[3:] == ["0", "B"] * 4
    removed = runs("rm", real.a, "--yes", "--root", real.root)
    assert removed.returncode == 2 and removed.stderr == f"runs: error: {real.a}: {why}; nothing removed\n"
    assert snapshot(elsewhere) == before and real.dir_a.is_symlink()


def test_du_trusts_no_offline_session_path(real: SimpleNamespace) -> None:
    """run.json's offline_session naming "/usr.zip" made du walk /usr; a session that is not
    ClearML's offline/<task id>.zip is not counted, with a note (item 2)."""
    edit(real.dir_a, offline_session="/usr.zip")
    started = time.monotonic()
    used = runs("du", "--root", real.root)
    assert used.returncode == 0 and time.monotonic() - started < 10
    assert used.stderr == (f"runs: {real.a}: offline_session /usr.zip is not ClearML's offline/{real.a}.zip; "
                           "not counted\n")
    assert next(line.split() for line in used.stdout.splitlines() if real.a in line)[5:7] == ["0", "B"]
    listed = {run["task_id"]: run for run in json.loads(runs("--json", "--root", real.root).stdout)}
    assert listed[real.a]["size_bytes"] < 100_000  # its own files only


def test_prune_of_an_immutable_run_directory_says_so(real: SimpleNamespace) -> None:
    """A run directory that cannot be written (here immutable; its .lock gone, as in a run from
    before the lock): the note says so, not "remove it" of a lock file that is not there (item 26)."""
    (real.dir_a / ".lock").unlink()
    if subprocess.run(["chattr", "+i", str(real.dir_a)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i needs root and a file system with attributes")
    try:
        pruned = runs("prune", "--yes", "--root", real.root)
    finally:
        subprocess.run(["chattr", "-i", str(real.dir_a)], check=True)
    assert pruned.returncode == 0
    note = next(line for line in pruned.stderr.splitlines() if real.a in line)
    assert note == (f"runs: {real.a} left as it is: artifacts/{real.dir_a.name}: cannot create its lock file "
                    ".lock (Operation not permitted): the run directory is read-only or immutable (see ls -ld "
                    "and lsattr -d); make it writable to change the run")
    assert (real.dir_a / "checkpoints" / "last.ckpt").is_file()


def test_an_empty_id_is_refused(real: SimpleNamespace) -> None:
    """``runs rm '' --yes`` removed the run whose task id could not be read (item 4)."""
    (real.root / "no-id").mkdir()
    (real.root / "no-id" / "run.json").write_text('{"task_name": "x", "status": "completed"}')
    before = snapshot(real.root)
    for command in (["rm", "", "--yes"], ["rm", " ", "--yes"], ["show", ""], ["compare", real.a, ""],
                    ["plot", ""], ["sync", ""]):
        result = runs(*command, "--root", real.root)
        assert result.returncode == 2, command
        blank = next(ident for ident in command[1:] if not ident.strip())
        assert result.stderr.splitlines()[-1] == (f"runs: error: task id {blank!r}: empty; give a task id or the "
                                                  "start of one (runs lists them)")
    assert snapshot(real.root) == before


def test_two_run_directories_of_one_task_id(real: SimpleNamespace) -> None:
    """A copied run directory: the listing says so; rm and show refuse the id (item 27)."""
    copy = real.root / "copy-of-a"
    shutil.copytree(real.dir_a, copy)
    listed = runs("--root", real.root)
    assert listed.returncode == 0 and listed.stdout.count(real.a) == 2
    warning = (f"runs: warning: task id {real.a} is recorded in 2 run directories (artifacts/{real.dir_a.name}, "
               "artifacts/copy-of-a); each is listed, none can be chosen by its id")
    assert listed.stderr.splitlines() == [warning]
    before = snapshot(real.root)
    for command in (["rm", real.a, "--yes"], ["show", real.a[:12]]):
        result = runs(*command, "--root", real.root)
        assert result.returncode == 2 and result.stderr.splitlines()[-1] == (
            f"runs: error: task id {real.a} is recorded in 2 run directories (artifacts/{real.dir_a.name}, "
            "artifacts/copy-of-a); remove or move all but one by hand, nothing done")
    assert snapshot(real.root) == before


def test_a_run_json_nested_too_deep_is_skipped(real: SimpleNamespace) -> None:
    """Every ``runs`` command and the id lookup of ``train --test-only`` skip it with a warning
    line; none crashes with RecursionError (item 9)."""
    (real.root / "deep").mkdir()
    (real.root / "deep" / "run.json").write_text(DEEP)
    warning = f"runs: warning: {real.root}/deep/run.json: unreadable (nested more than 100 levels deep); left out"
    for command in ([], ["--json"], ["--csv"], ["--group"], ["show", real.a], ["compare", real.a, real.b],
                    ["du"], ["prune", "--dry-run"]):
        result = runs(*command, "--root", real.root)
        assert result.returncode == 0 and result.stderr.splitlines()[0] == warning, (command, result.stderr[-500:])
    tested = run_cli("train", "experiments/01_toy/hparams.py", "--offline", "--test-only", real.a[8:16],
                     timeout=300, env={"TORCH_LAB_ARTIFACTS": str(real.root)})
    assert tested.returncode == 0, tested.stderr[-2000:]
    assert ("torch-lab: warning: artifacts/deep/run.json: unreadable (nested more than 100 levels deep); "
            "skipped\n") in tested.stderr and "Traceback" not in tested.stderr


@pytest.mark.parametrize("status", ["interrupted", "running"])
def test_best_so_far_of_a_run_not_finished(real: SimpleNamespace, status: str) -> None:
    """A run that has not recorded its best (B failed at epoch 1; here recorded interrupted, or
    running with its process gone: dead) shows the best of its history.csv, which its best.ckpt
    holds (item 34)."""
    edit(real.dir_b, status=status)
    assert "best" not in json.loads((real.dir_b / "run.json").read_text())
    history = (real.dir_b / "history.csv").read_text().splitlines()
    column = history[0].split(",").index("loss/val")
    best = min(float(line.split(",")[column]) for line in history[1:])
    listed = runs("--root", real.root)
    row = next(line for line in listed.stdout.splitlines() if real.b in line)
    assert f"loss/val={best:.4g}" in row.split()
    loaded = {run["task_id"]: run for run in json.loads(runs("--json", "--root", real.root).stdout)}
    assert loaded[real.b]["best"]["value"] == best and loaded[real.b]["best"]["epoch"] == 0


def test_rm_of_a_sweeps_best_trial(real: SimpleNamespace) -> None:
    """best.json of a sweep naming a run ``runs rm`` removes (written here as a sweep writes it)
    records it removed, keeping the trial's values; rm says so (item 35)."""
    folder = real.root / "sweeps" / "lr"
    folder.mkdir(parents=True)
    best = {"trial": 3, "values": {"config.lr": 0.1}, "objective": 0.6, "metric": "loss/val",
            "direction": "minimize", "task_id": real.a, "checkpoint": str(real.dir_a / "checkpoints" / "best.ckpt"),
            "run_dir": str(real.dir_a)}
    (folder / "best.json").write_text(json.dumps(best))
    removed = runs("rm", real.a, "--yes", "--root", real.root)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines()[-1] == (f"runs: artifacts/sweeps/lr/best.json: sweep lr's best trial was "
                                               f"{real.a}; best.json now records it removed")
    after = json.loads((folder / "best.json").read_text())
    assert after.pop("removed").startswith(f"{real.a} removed by runs rm at ")
    assert after == {**best, "run_dir": None, "checkpoint": None}
