"""``runs du``, ``runs rm`` and ``runs prune`` through the real console script, on real runs of the
toy experiment (trained once by the real ``train``, offline: see conftest.py), each test on its
own copy of their artifacts root (issue 21, item 4)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.image import imread

from conftest import run_cli
from torch_lab.errors import display_path
from torch_lab.text import size_text

LOCKER = ("import sys, time\nfrom pathlib import Path\nfrom torch_lab.storage.run_dir import RunDirectory\n"
          "RunDirectory.open(Path(sys.argv[1])).lock()\nprint('locked', flush=True)\ntime.sleep(120)\n")


def runs(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return run_cli("runs", *args, timeout=60, stdin=stdin)


def files_bytes(path: Path) -> int:
    return sum(f.lstat().st_size for f in path.rglob("*") if not f.is_dir())


def snapshot(*folders: Path) -> dict[str, int | None]:
    """Every path under ``folders``: a file's modification time (a folder's is None: removing a
    run changes its parent's)."""
    return {str(p): None if p.is_dir() else p.lstat().st_mtime_ns for folder in folders
            for p in folder.rglob("*")}


def without(state: dict[str, int | None], folder: Path) -> dict[str, int | None]:
    return {path: mtime for path, mtime in state.items() if not Path(path).is_relative_to(folder)}


def test_du_what_each_run_holds(real: SimpleNamespace) -> None:
    result = runs("du", "--root", real.root)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    header, *rows, total = [re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()]
    assert header == ["task name", "task id", "status", "checkpoints", "offline session", "other", "total"]
    assert {row[1]: row[2] for row in rows} == {real.a: "completed", real.b: "failed"}
    assert total[0] == "total: 2 runs"
    listed = {run["task_id"]: run for run in json.loads(runs("--json", "--root", real.root).stdout)}
    for row in rows:
        path = real.dir_a if row[1] == real.a else real.dir_b
        session = Path(json.loads((path / "run.json").read_text())["offline_session"])
        assert session.is_file()  # the zip (and its folder) in ClearML's cache
        checkpoints, other = files_bytes(path / "checkpoints"), files_bytes(path) - files_bytes(path / "checkpoints")
        session_bytes = session.stat().st_size + files_bytes(session.with_suffix(""))
        expected = checkpoints + session_bytes + other
        assert listed[row[1]]["size_bytes"] == expected
        assert row[3:] == [size_text(checkpoints), size_text(session_bytes), size_text(other), size_text(expected)]
        assert checkpoints > 1000 and session_bytes > 1000
        shown = runs("show", row[1], "--root", real.root).stdout
        assert re.search(rf"\nsize +{re.escape(row[6])} \(checkpoints {re.escape(row[3])}, offline session "
                         rf"{re.escape(row[4])}, other {re.escape(row[5])}\)\n", shown)
    only = runs("du", "--status", "failed", "--root", real.root)
    assert [line.split()[1] for line in only.stdout.splitlines()[1:-1]] == [real.b]


def test_rm_refused_while_the_run_is_in_use(real: SimpleNamespace) -> None:
    """A run whose lock a live process holds (as ``train`` holds it) is refused, naming it;
    nothing anywhere is removed, the other run neither."""
    owner = subprocess.Popen([sys.executable, "-c", LOCKER, str(real.dir_b)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "locked"
        before = snapshot(real.root, real.cache)  # the owner wrote its pid into the lock file
        result = runs("rm", real.a, real.b, "--yes", "--root", real.root)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (f"runs: error: {real.b} is in use by another torch-lab process (pid "
                                 f"{owner.pid}, holding {real.dir_b}/.lock); nothing removed\n")
        pruned = runs("prune", "--yes", "--root", real.root)  # prune leaves it alone, with a note
        assert pruned.returncode == 0 and f"runs: {real.b} left as it is: in use by" in pruned.stderr
        assert (real.dir_b / "checkpoints" / "last.ckpt").is_file()
    finally:
        owner.kill()
        owner.wait()
    assert without(snapshot(real.root, real.cache), real.dir_a) == without(before, real.dir_a)


def test_rm_without_a_terminal_needs_yes(real: SimpleNamespace) -> None:
    before = snapshot(real.root, real.cache)
    result = runs("rm", real.a, "--root", real.root)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"runs: error: remove 1 run ({size_text(files_bytes(real.dir_a))}): no terminal "
                             "to ask on, so nothing removed; add --yes to remove them\n")
    assert snapshot(real.root, real.cache) == before


def test_rm_removes_the_chosen_runs_and_nothing_else(real: SimpleNamespace) -> None:
    before = snapshot(real.root, real.cache)
    size = size_text(files_bytes(real.dir_a))
    result = runs("rm", real.a.removeprefix("offline-")[:8], "--yes", "--root", real.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"{display_path(real.dir_a)}  {size}\nruns: removed 1 run ({size}); their "
                             "offline sessions, if any, stay in ClearML's cache\n")
    assert not real.dir_a.exists() and real.dir_b.is_dir()
    assert snapshot(real.root, real.cache) == without(before, real.dir_a)
    assert [run["task_id"] for run in json.loads(runs("--json", "--root", real.root).stdout)] == [real.b]


def test_rm_asks_on_a_terminal(real: SimpleNamespace) -> None:
    """On a terminal ``rm`` asks; anything but y keeps the runs."""
    def answer(text: str) -> str:
        primary, secondary = os.openpty()
        command = [str(Path(sys.executable).parent / "runs"), "rm", real.a, real.b, "--root", str(real.root)]
        process = subprocess.Popen(command, stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        os.close(secondary)
        os.write(primary, text.encode())
        out, err = process.communicate(timeout=60)
        os.close(primary)
        assert process.returncode == 0, err
        return out

    before = snapshot(real.root, real.cache)
    out = answer("\n")
    assert re.search(r"\nremove 2 runs \([\d.]+ kB\)\? \[y/N\] runs: nothing removed\n$", out), out
    assert [line.split() for line in out.splitlines()[:2]] == [
        [display_path(folder), *size_text(files_bytes(folder)).split()] for folder in (real.dir_a, real.dir_b)]
    assert snapshot(real.root, real.cache) == before
    assert "runs: removed 2 runs" in answer("y\n") and not real.dir_a.exists() and not real.dir_b.exists()


def test_prune_dry_run_then_prune(real: SimpleNamespace, tmp_path: Path) -> None:
    """``--dry-run`` prints what prune removes and changes nothing; prune removes it (each run's
    last.ckpt, keeping best.ckpt) and frees that space; the pruned runs still list, show, compare
    and plot, and the failed one no longer resumes: one line naming the missing file."""
    before = snapshot(real.root, real.cache)
    last = [real.dir_a / "checkpoints" / "last.ckpt", real.dir_b / "checkpoints" / "last.ckpt"]
    sizes = [path.stat().st_size for path in last]
    dry = runs("prune", "--dry-run", "--root", real.root)
    assert dry.returncode == 0 and dry.stderr == "", dry.stderr
    # prune goes through the runs newest last; these two started together (the same second)
    plan = sorted([display_path(path), *size_text(size).split()] for path, size in zip(last, sizes))
    assert sorted(line.split() for line in dry.stdout.splitlines()[:-1]) == plan
    assert dry.stdout.splitlines()[-1] == (f"runs: would remove 2 checkpoint files of 2 runs "
                                           f"({size_text(sum(sizes))}); a dry run: nothing removed")
    assert snapshot(real.root, real.cache) == before

    du_before = runs("du", "--root", real.root).stdout
    result = runs("prune", "--keep", "best", "--yes", "--root", real.root)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert sorted(line.split() for line in result.stdout.splitlines()[:-1]) == plan
    assert result.stdout.splitlines()[-1] == f"runs: freed {size_text(sum(sizes))}"
    assert not any(path.exists() for path in last)
    assert all((d / "checkpoints" / "best.ckpt").is_file() for d in (real.dir_a, real.dir_b))
    assert du_before != runs("du", "--root", real.root).stdout
    again = runs("prune", "--yes", "--root", real.root)
    assert again.stdout == "runs: no checkpoints to prune (keeping best.ckpt)\n"

    listed = runs("--root", real.root)
    assert listed.returncode == 0 and real.a in listed.stdout and real.b in listed.stdout
    shown = runs("show", real.a, "--root", real.root)
    assert shown.returncode == 0 and "checkpoints/best.ckpt" in shown.stdout and "last.ckpt" not in shown.stdout
    compared = runs("compare", real.a, real.b, "--root", real.root)
    assert compared.returncode == 0 and "loss/val" in compared.stdout
    out = tmp_path / "pruned.png"
    plotted = runs("plot", real.a, real.b, "--out", out, "--root", real.root)
    assert plotted.returncode == 0, plotted.stderr
    assert imread(out).shape[0] > 0

    resumed = run_cli("train", "experiments/01_toy/hparams.py", "--offline", "--resume", real.b, timeout=300,
                      env={"TORCH_LAB_ARTIFACTS": str(real.root)})
    assert resumed.returncode == 2 and resumed.stdout == ""
    assert resumed.stderr == (f"train: error: --resume {real.b}: artifacts/{real.dir_b.name}/checkpoints/last.ckpt "
                              "is missing, nothing to resume from (runs prune --keep best removes it); to "
                              "train on from another checkpoint of the run, set checkpoint.checkpoint_task_id "
                              "in a new run\n")


def test_prune_keep_last_and_runs_it_leaves(real: SimpleNamespace) -> None:
    """``--keep last`` removes best.ckpt; a run that may still resume (here: recorded running, its
    process gone) is left as it is, with a note; so is a run without the checkpoint to keep."""
    record = json.loads((real.dir_b / "run.json").read_text())
    (real.dir_b / "run.json").write_text(json.dumps({**record, "status": "running"}))
    result = runs("prune", "--keep", "last", "--yes", "--root", real.root)
    assert result.returncode == 0
    assert result.stderr == f"runs: {real.b} left as it is: dead, it may still resume\n"
    assert not (real.dir_a / "checkpoints" / "best.ckpt").exists()
    assert (real.dir_a / "checkpoints" / "last.ckpt").is_file() and (real.dir_b / "checkpoints" / "best.ckpt").is_file()
    (real.dir_a / "checkpoints" / "last.ckpt").rename(real.dir_a / "checkpoints" / "other.ckpt")
    kept = runs("prune", "--keep", "last", "--yes", real.a, "--root", real.root)
    assert kept.stderr == f"runs: {real.a} left as it is: it has no checkpoints/last.ckpt to keep\n"
    assert (real.dir_a / "checkpoints" / "other.ckpt").is_file()
