"""The real runs the tidying tests share: two offline runs of the toy experiment, trained once
for the package by the real ``train``, and a copy of their artifacts root for each test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ASSETS, sets


@pytest.fixture(scope="package")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Two offline runs of the toy experiment: A completed (2 epochs), B failed at epoch 1 (its
    best.ckpt and last.ckpt from epoch 0: resumable)."""
    base = tmp_path_factory.mktemp("tidy-runs")
    shutil.copytree(ASSETS / "toy", base / "experiments" / "01_toy")
    hparams = base / "experiments" / "01_toy" / "hparams.py"
    env = {**os.environ, "TORCH_LAB_ARTIFACTS": str(base / "artifacts"), "PYTHONWARNINGS": "ignore",
           "CLEARML_CACHE_DIR": str(base / "clearml-cache"), "HOME": str(base / "home")}
    for name in ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY",
                 "CLEARML_OFFLINE_MODE", "CLEARML_CONFIG_FILE"):
        env.pop(name, None)

    def start(*args: str) -> subprocess.Popen:
        command = [str(Path(sys.executable).parent / "train"), str(hparams), "--offline", *args]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=base)

    completed = start(*sets("trainer.init.max_epochs=2"))
    failed = start(*sets("trainer.init.max_epochs=3", "config.crash_at_epoch=1"))
    out, err = completed.communicate(timeout=600)
    assert completed.returncode == 0, err[-3000:]
    a = re.search(r"task (offline-\w+) completed", out).group(1)
    out, err = failed.communicate(timeout=600)
    assert failed.returncode == 1, err[-3000:]
    b = re.search(r"task (offline-\w+) started", out).group(1)
    return SimpleNamespace(base=base, root=base / "artifacts", cache=base / "clearml-cache", a=a, b=b)


@pytest.fixture
def real(trained: SimpleNamespace, tmp_path: Path) -> SimpleNamespace:
    """A copy of the trained runs' artifacts root for one test (the offline sessions stay shared)."""
    root = tmp_path / "artifacts"
    shutil.copytree(trained.root, root, symlinks=True)
    (tmp_path / "experiments").symlink_to(trained.base / "experiments")
    return SimpleNamespace(root=root, cache=trained.cache, a=trained.a, b=trained.b,
                           dir_a=next(root.glob(f"*-{trained.a}")), dir_b=next(root.glob(f"*-{trained.b}")))
