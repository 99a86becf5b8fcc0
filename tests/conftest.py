"""Shared fixtures: isolated ClearML offline cache and artifacts root, toy experiments, tiny MNIST."""

from __future__ import annotations

import os
import resource
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ASSETS = Path(__file__).parent / "assets"
REPO = Path(__file__).parents[1]
DEMO = REPO / "src" / "example_project" / "experiments" / "00_mnist_demo"


@pytest.fixture(scope="session")
def matplotlib_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One matplotlib configuration directory for the session: its font cache is built once, not
    in every test's new HOME."""
    return tmp_path_factory.mktemp("matplotlib")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, matplotlib_config: Path) -> Path:
    """Run every test in its own directory with its own ClearML cache and artifacts root, and no
    ClearML server configured (HOME moves too, hiding a ~/clearml.conf from the scripts)."""
    for name in ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY",
                 "CLEARML_OFFLINE_MODE", "CLEARML_CONFIG_FILE", "TORCH_LAB_ARTIFACTS",
                 "CLEARML_PROC_MASTER_ID", "CLEARML_TASK_ID"):  # a task of this process
        monkeypatch.delenv(name, raising=False)
    for name in ("COLUMNS", "LINES"):  # the runner's terminal (pytest-xdist's workers set them)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    monkeypatch.setenv("MPLCONFIGDIR", str(matplotlib_config))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A copy of the toy experiment; returns its hparams.py."""
    folder = tmp_path / "experiments" / "01_toy"
    shutil.copytree(ASSETS / "toy", folder)
    return folder / "hparams.py"


def write_hparams(path: Path, text: str) -> Path:
    """Write an hparams script (or any script) and return its path."""
    path.write_text(text)
    return path


def run_cli(*args: str | Path, timeout: float = 300, stdin: str | None = None,
            env: dict[str, str] | None = None,
            file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """Run a console script (``train`` / ``infer``) in a subprocess, as a user would;
    ``file_size_limit`` (bytes, RLIMIT_FSIZE) makes larger writes fail with EFBIG, as on a full
    disk (Python ignores SIGXFSZ)."""
    command = [str(Path(sys.executable).parent / str(args[0])), *map(str, args[1:])]
    limit = None if file_size_limit is None else (
        lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit)))
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          input=stdin if stdin is not None else "", env={**os.environ, **(env or {})},
                          preexec_fn=limit)


def sets(*items: str) -> list[str]:
    """``--set`` before each KEY=VALUE (``--set`` takes one each)."""
    return [part for item in items for part in ("--set", item)]


def write_idx(path: Path, array: "object", magic: int) -> None:
    """Write a (gzip-less) idx file, MNIST's own format."""
    import numpy as np

    data = np.asarray(array, dtype=np.uint8)
    with open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in data.shape))
        handle.write(data.tobytes())


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """A data directory with a tiny MNIST (512 train, 128 test images) in real idx format, read
    by the real torchvision loader. Each digit is a bright square at a label-dependent place."""
    import numpy as np

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 512), ("t10k", 128)):
        labels = rng.integers(0, 10, count)
        images = rng.integers(0, 40, (count, 28, 28))
        for image, label in zip(images, labels):
            row, col = divmod(int(label), 5)
            image[4 + 10 * row: 12 + 10 * row, 2 + 5 * col: 6 + 5 * col] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, 2051)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, 2049)
    return tmp_path / "data"


def shared_mnist() -> Path | None:
    """The full MNIST files, when this checkout has them in ./data or ../shared/data."""
    for candidate in (REPO / "data", REPO.parent / "shared" / "data"):
        if (candidate / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file():
            return candidate
    return None


def session_scalars(session: Path) -> dict[tuple[str, str, int], int]:
    """How many times each scalar (metric, series, iteration) is stored in an offline session
    (its zip, or its folder while the run is alive or was killed)."""
    import collections
    import json
    import zipfile

    if session.suffix == ".zip":
        with zipfile.ZipFile(session) as zipped:
            names = [n for n in zipped.namelist() if n.endswith("metrics.jsonl")]
            text = zipped.read(names[0]).decode() if names else ""
    else:
        metrics = session / "metrics.jsonl"
        text = metrics.read_text() if metrics.is_file() else ""
    counts: collections.Counter = collections.Counter()
    for line in text.splitlines():
        for event in json.loads(line):
            if event.get("type") == "training_stats_scalar":
                counts[(event["metric"], event["variant"], event["iter"])] += 1
    return counts


@pytest.fixture
def clearml_server(monkeypatch: pytest.MonkeyPatch):
    """A stand-in ClearML server (tests/clearml_server) that the SDK, in this process and in the
    console scripts run here, is pointed at through CLEARML_API_HOST / WEB_HOST / FILES_HOST and
    the keys."""
    from clearml_server import ClearMLServer

    server = ClearMLServer()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()
