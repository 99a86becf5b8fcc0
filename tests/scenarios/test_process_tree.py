"""A command that runs children (``--seeds``, several files, ``--sweep``) is the only parent in
its process tree (issue 30, item 1: ``train H --seed 3`` made each child the parent of a seed group
of its own, without end). Every process that imports the experiment's ``__main__.py`` writes its
pid, its parent's and its grandparent's (from /proc): each is the command itself or its child."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import run_cli

RECORD = '''
import json as _json, os as _os
with open(_os.environ["TREE_LOG"], "a") as _log:
    _stat = open(f"/proc/{_os.getppid()}/stat").read()
    _log.write(_json.dumps({"pid": _os.getpid(), "parent": _os.getppid(),
                            "grandparent": int(_stat.rsplit(")", 1)[1].split()[1])}) + "\\n")
'''


@pytest.mark.slow
@pytest.mark.parametrize("extra, runs", [
    (["--seeds", "0,1"], 2),
    (["experiments/01_toy/hparams.py"], 2),
    (["--sweep", "experiments/01_toy/sweep.py", "--trials", "2"], 2),
])
def test_no_child_starts_children(toy: Path, tmp_path: Path, extra: list[str], runs: int) -> None:
    main = toy.parent / "__main__.py"
    main.write_text(main.read_text() + RECORD)
    (toy.parent / "sweep.py").write_text('sweep = {"trials": 2, "space": {"config.lr": [0.05, 0.1]}}\n')
    log = tmp_path / "tree.jsonl"
    result = run_cli("train", "experiments/01_toy/hparams.py", "--offline", "--dev-run", "1", *extra,
                     env={"TREE_LOG": str(log)}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    me = os.getpid()
    children = [r for r in records if r["parent"] != me]
    assert all(r["grandparent"] == me for r in children), records  # none deeper than a child
    assert len({r["pid"] for r in children}) == runs and len({r["parent"] for r in children}) == 1
    assert len(list((tmp_path / "data" / "artifacts").glob("*/run.json"))) == runs
