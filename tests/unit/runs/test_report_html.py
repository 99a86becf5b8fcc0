"""``runs report``: one self-contained HTML page, written by the real console script from the real
runs of the toy experiment and from run directories written with fixed values (a sweep, seed
groups), and loaded in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import run_cli
from unit.runs.test_groups import root as groups_root  # noqa: F401 (the fixture)
from unit.runs.test_report import hparams, root, write_run  # noqa: F401 (root: the fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Tables(HTMLParser):
    """The text of each table's rows, by table id; and every tag's name."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: set[str] = set()
        self.links: list[str] = []
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]
        if tag == "table":
            self._table = dict(attrs).get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])

    def handle_data(self, data: str) -> None:
        if self._table and self.tables[self._table] and self.lasttag in ("td", "th"):
            self.tables[self._table][-1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None


def report(root: Path, out: Path, *args: str) -> Tables:
    result = run_cli("runs", "report", *args, "--out", out, "--root", root, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert re.fullmatch(rf"runs: wrote {re.escape(str(out))} \(\d+ runs?\)\n", result.stdout)
    parsed = Tables()
    parsed.feed(out.read_text())
    assert "script" not in parsed.tags and parsed.links == []  # self-contained: nothing to fetch or run
    return parsed


def test_real_runs_in_a_headless_browser(real: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    parsed = report(real.root, out)
    rows = parsed.tables["runs"]
    assert rows[0][:7] == ["task name", "task id", "status", "started", "duration", "epochs", "best"]
    assert sorted((row[1], row[2]) for row in rows[1:]) == sorted([(real.a, "completed"), (real.b, "failed")])
    assert "<svg" in out.read_text() and "groups" not in parsed.tables  # curves; no group of two
    if CHROMIUM is None:
        pytest.skip("no chromium to load the page in")
    loaded = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                             "--v=0", "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert '<table id="runs">' in loaded.stdout and real.a in loaded.stdout and "<svg" in loaded.stdout
    assert not re.search(r"CONSOLE|Uncaught|Failed to load", loaded.stderr), loaded.stderr[-2000:]


def test_sweeps_trials_with_the_best_in_bold(root: Path, tmp_path: Path) -> None:  # noqa: F811
    write_run(root / "sweeps" / "lr-search", "mlp-hparams", "offline-ee55", "completed",
              "2026-01-02T14:00:00+00:00", "2026-01-02T14:01:00+00:00", hparams(0.03, 3, width=2), 2, best=1.2,
              sweep={"name": "lr-search", "trial": 5})
    out = tmp_path / "report.html"
    parsed = report(root, out)
    assert parsed.tables["sweep-lr-search"] == [["trial", "task id", "status", "best", "config.lr"],
                                                ["4", "offline-cc33", "pruned", "loss/val=1", "0.003"],
                                                ["5", "offline-ee55", "completed", "loss/val=1.2", "0.03"]]
    assert "Sweep lr-search (2 trials)" in out.read_text()  # the best completed trial in bold, not the pruned:
    assert out.read_text().count('<tr class="best"><td>5</td>') == 1 and out.read_text().count('class="best"') == 1


def test_seed_groups_with_their_intervals(groups_root: Path, tmp_path: Path) -> None:  # noqa: F811
    parsed = report(groups_root, tmp_path / "report.html", "--status", "completed,failed")
    assert parsed.tables["groups"][1:] == [
        ["mlp-hparams", "offline-a1", "3", "3 completed", "0,1,2", "loss/val=0.6667 ± 0.2082 (0.5-0.9)",
         "[0.1496, 1.184]", "0.1"],
        ["mlp-hparams", "offline-b1", "3", "2 completed, 1 failed", "0,1,2", "loss/val=0.9 ± 0.1414 (0.8-1)",
         "[-0.3706, 2.171]", "0.01"]]


def test_out_a_directory_is_one_line(root: Path, tmp_path: Path) -> None:  # noqa: F811
    result = run_cli("runs", "report", "--out", tmp_path, "--root", root, timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"runs: error: --out {tmp_path}: is a directory; give a file, "
                             f"e.g. {tmp_path / 'report.html'}\n")
