"""Every row of the bad-input table (tests/bad_inputs.py) through the real console script: the
exact line, the exit code, no traceback, and nothing left behind by errors found before training.
The docs' error table (docs/reference/errors.md) lists exactly these rows."""

from __future__ import annotations

import json
import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bad_inputs import CASES, Case
from conftest import REPO, run_cli

CONCURRENT_TITLE = "two `train` runs of one experiment at once"


def run_dirs(root: Path) -> set[Path]:
    """The run directories under an artifacts root."""
    return {record.parent for record in root.glob("*/run.json")}


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id, marks=[pytest.mark.slow] if case.slow else [])
                                  for case in CASES])
def test_bad_input(case: Case, toy: Path, tmp_path: Path) -> None:
    env = case.prepare(toy)
    artifacts = tmp_path / "data" / "artifacts"
    before = run_dirs(artifacts)
    result = run_cli(*case.args, env=env, file_size_limit=case.file_size_limit, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == case.exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    if case.before_training:
        assert lines == [case.expected_line(env)], result.stderr
        assert run_dirs(artifacts) == before
        assert not (tmp_path / "clearml-cache" / "offline").exists()
        return
    [run] = run_dirs(artifacts) - before
    assert lines[-1] == case.expected_line(env, run), result.stderr
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] in lines[-1]
    assert not list(run.rglob("*.tmp")), "a half-written file was left behind"
    with zipfile.ZipFile(record["offline_session"]) as session:  # the task's record
        task = json.loads(session.read("task.json"))
    assert "failed" in task["tags"] and record["error"] in task["comment"]


def test_two_runs_of_one_experiment_at_once(toy: Path, tmp_path: Path) -> None:
    """Both succeed, each in its own task and run directory."""
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run_cli("train", toy, "--offline", timeout=180), range(2)))
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    runs = run_dirs(tmp_path / "data" / "artifacts")
    assert len(runs) == 2
    for run in runs:
        record = json.loads((run / "run.json").read_text())
        assert record["status"] == "completed" and (run / "checkpoints" / "last.ckpt").is_file()


def docs_rows() -> list[list[str]]:
    """The cells of the docs' "When something goes wrong" table."""
    section = (REPO / "docs" / "reference" / "errors.md").read_text()
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_docs_list_exactly_the_tested_cases() -> None:
    rows = {row[0]: row for row in docs_rows()}
    assert len(rows) == len(docs_rows())  # no title twice
    assert set(rows) == {case.title for case in CASES} | {CONCURRENT_TITLE}
    for case in CASES:
        _, line, code, _ = rows[case.title]
        assert line == f"`{case.expected}`" and code == str(case.exit_code), case.id
