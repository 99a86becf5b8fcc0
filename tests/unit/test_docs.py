"""The docs site and the README: the site builds strictly, the command reference lists every
flag of every parser, every command or Python example is run by a named test or marked as not run,
and the README's minimal experiment trains."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO, run_cli

from torch_lab.cli.reference import parsers, reference_markdown

CHECKED = {"bash", "console", "sh", "python"}
RUN_BY = re.compile(r"<!-- run by: (\S+?)::(\w+) -->")
NOT_RUN = re.compile(r"<!-- not run: \S.* -->")


def pages() -> list[Path]:
    """README.md and every page of the docs site."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def fenced_blocks(path: Path) -> list[tuple[int, str, str, list[str]]]:
    """Each fenced block of ``path``: (line number, language, the line before it, its lines)."""
    lines = path.read_text().splitlines()
    blocks, start = [], None
    for number, line in enumerate(lines):
        if not line.strip().startswith("```"):
            continue
        if start is None:
            start = number
        else:
            before = next((text.strip() for text in reversed(lines[:start]) if text.strip()), "")
            blocks.append((start + 1, lines[start].strip()[3:], before, lines[start + 1:number]))
            start = None
    assert start is None, f"{path}: a fenced block is never closed"
    return blocks


def test_mkdocs_builds_strictly(tmp_path: Path) -> None:
    """The documented build command: no broken link, no missing page or reference."""
    result = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict",
                             "--site-dir", str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    commands = (tmp_path / "site" / "reference" / "commands" / "index.html").read_text()
    assert "--print-completion" in commands and "runs prune" in commands
    # a list item whose code block or second paragraph is indented too little ends the list: its
    # later items come out as text lines starting with "- "
    for page in (tmp_path / "site").rglob("*.html"):
        text = re.sub(r"<pre.*?</pre>", "", page.read_text(), flags=re.S)
        assert not re.search(r"^- ", text, re.M), f"{page}: a list rendered as text"


def test_command_reference_lists_every_option_of_every_parser() -> None:
    reference = reference_markdown()
    names = [name for name, _ in parsers()]
    assert {"train", "infer", "export-model", "runs", "runs show", "runs prune", "runs sync"} <= set(names)
    for name, parser in parsers():
        section = reference.split(f"### `{name}`\n", 1)[1].split("\n### `", 1)[0]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(f"`{choice}`" in section for choice in action.choices), name
            for option in action.option_strings or [action.metavar or action.dest]:
                assert f"`{option}" in section, (name, option)


def test_every_example_is_run_by_a_test_or_marked() -> None:
    problems = []
    for path in pages():
        where = path.relative_to(REPO)
        for line, language, before, _ in fenced_blocks(path):
            if not language:
                problems.append(f"{where}:{line}: a fenced block without a language (text for output)")
            if language not in CHECKED:
                continue
            run_by = RUN_BY.fullmatch(before)
            if run_by:
                test_file, test_name = REPO / run_by.group(1), run_by.group(2)
                if not test_file.is_file() or not re.search(rf"^def {test_name}\(", test_file.read_text(), re.M):
                    problems.append(f"{where}:{line}: {run_by.group(1)} has no test {test_name}")
            elif not NOT_RUN.fullmatch(before):
                problems.append(f"{where}:{line}: a {language} block neither run by a test nor marked not run")
    assert not problems, "\n".join(problems)


def test_docs_speak_to_users() -> None:
    """No lab notes: issues, rounds, bars or commit hashes."""
    words = re.compile(r"\bissues?\b|\bthis round\b|\bbefore and after\b|\bits [0-9.]+ bar\b|\bcommit `?[0-9a-f]{7}")
    found = [f"{path.relative_to(REPO)}: {match.group(0)}" for path in pages()
             for match in words.finditer(path.read_text(), re.I)]
    assert not found, found


def readme_file(name: str) -> str:
    """The README block whose first line is ``# <name>``."""
    for _, _, _, lines in fenced_blocks(REPO / "README.md"):
        if lines and lines[0] == f"# {name}":
            return "\n".join(lines) + "\n"
    raise AssertionError(f"README.md has no block for {name}")


def test_readme_minimal_experiment_trains(tmp_path: Path) -> None:
    """The README's two files, as written, and its dev-run command: a completed run."""
    folder = tmp_path / "experiments" / "01_linear"
    folder.mkdir(parents=True)
    for name in ("hparams.py", "__main__.py"):
        (folder / name).write_text(readme_file(f"experiments/01_linear/{name}"))
    command = next(line.split("#")[0].split() for _, language, _, lines in fenced_blocks(REPO / "README.md")
                   if language == "bash" for line in lines if "--dev-run 2" in line and "01_linear" in line)
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "data" / "artifacts").glob("dev_01_linear-hparams-*")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and "accuracy/val" in record["metrics"]
