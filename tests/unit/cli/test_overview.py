"""``python -m torch_lab``: every console script listed, the version, nothing heavy imported."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch_lab", *args], capture_output=True, text=True,
                          timeout=60)


def test_lists_every_console_script_with_its_description() -> None:
    from torch_lab.cli.parsers import train_parser

    result = _run()
    assert result.returncode == 0, result.stderr
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(scripts)
    assert f"  train{' ' * 9}{train_parser().description}" in result.stdout


def test_version_and_unknown_argument() -> None:
    import torch_lab

    assert _run("--version").stdout == f"torch-lab {torch_lab.__version__}\n"
    refused = _run("--bogus")
    assert refused.returncode == 2 and "unrecognized arguments: --bogus" in refused.stderr


def test_imports_nothing_heavy() -> None:
    code = ("import sys, torch_lab.cli.overview as m; m.summary(); "
            "print(sorted(n for n in ('torch', 'pytorch_lightning', 'clearml') if n in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_closed_pipe_is_not_an_error() -> None:
    shell = f"{sys.executable} -m torch_lab | head -1"
    result = subprocess.run(shell, shell=True, capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("torch-lab: ") and result.stderr == ""
