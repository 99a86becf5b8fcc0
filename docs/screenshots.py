"""Remake the docs' screenshots of TensorBoard (docs/tensorboard.png) and Optuna Dashboard
(docs/optuna_dashboard.png) from a real, small sweep of the regression example.

In a temporary folder: a copy of src/example_project/experiments/01_regression whose
``train_config`` also returns ``loggers=[lambda run: TensorBoardLogger(run, ...)]``
(docs/how-to/loggers.md), one ``train --sweep`` of it (offline, the example's sweep.py, fewer samples and
epochs), then ``tensorboard --logdir data/artifacts/tensorboard`` and ``optuna-dashboard <study.journal>`` on
127.0.0.1, each shot by headless Chromium and saved as a palette PNG (Pillow, matplotlib's own
dependency). Not run by the tests: Chromium is no dependency of the project, and the servers need
the ``tensorboard`` and ``dashboard`` extras.

    PYTHONPATH=src python docs/screenshots.py [--chromium /usr/bin/chromium] [--out-dir docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "src" / "example_project" / "experiments" / "01_regression"
BIN = Path(sys.executable).parent
SWEEP_NAME = "01_regression-hparams-sweep"
#: The example's sweep, smaller: seconds per trial on 2 cores instead of minutes.
SETS = ("config.train_size=1024", "config.val_size=256", "trainer.init.max_epochs=8")
RETURN = "    return dict(\n        module=module,\n"
LOGGER = ('    from pytorch_lightning.loggers import TensorBoardLogger\n\n' + RETURN
          + '        loggers=[lambda run: TensorBoardLogger(run, name="tensorboard", version="")],\n')


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float) -> bytes:
    """GET ``url``, retrying while its server starts."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return reply.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@contextmanager
def server(command: list[str], probe: str, cwd: Path) -> Iterator[None]:
    """``command`` running until the block ends, once ``probe`` answers."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(probe, 120)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def screenshot(chromium: str, url: str, out: Path, size: tuple[int, int], budget_ms: int) -> None:
    """Headless Chromium's picture of ``url`` after ``budget_ms`` of virtual time, made small."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
                        f"--virtual-time-budget={budget_ms}", f"--window-size={size[0]},{size[1]}",
                        f"--screenshot={out}", url],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    Image.open(out).convert("RGB").quantize(colors=128).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size / 1000:.0f} kB", flush=True)


def sweep(work: Path, env: dict[str, str]) -> Path:
    """The regression example, logging to TensorBoard too, swept offline; its study journal."""
    folder = work / "experiments" / "01_regression"
    shutil.copytree(EXPERIMENT, folder, ignore=shutil.ignore_patterns("__pycache__"))
    main = folder / "__main__.py"
    source = main.read_text()
    assert RETURN in source, "train_config's return changed: update docs/screenshots.py"
    main.write_text(source.replace(RETURN, LOGGER))
    sets = [part for item in SETS for part in ("--set", item)]
    command = [str(BIN / "train"), str(folder / "hparams.py"), "--sweep", str(folder / "sweep.py"), "--offline", *sets]
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the sweep failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return work / "data" / "artifacts" / "sweeps" / SWEEP_NAME / "study.journal"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        env = {**os.environ, "CLEARML_CACHE_DIR": str(work / "clearml-cache"), "HOME": str(work / "home"),
               "PYTHONWARNINGS": "ignore"}
        env.pop("TORCH_LAB_ARTIFACTS", None)
        journal = sweep(work, env)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with server([str(BIN / "tensorboard"), "--logdir", "data/artifacts/tensorboard", "--host", "127.0.0.1",
                     "--port", str(port)], f"{base}/data/runs", work):
            wait_for(f"{base}/data/plugin/scalars/tags", 60)
            # The Scalars tab draws with SVG (Time Series' WebGL charts come out empty without a GPU)
            screenshot(args.chromium, f"{base}/?darkMode=false#scalars&tagFilter=loss%7Clr",
                       args.out_dir / "tensorboard.png", (1280, 720), 15000)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with server([str(BIN / "optuna-dashboard"), str(journal), "--host", "127.0.0.1", "--port", str(port),
                     "--quiet"], f"{base}/api/studies", work):
            [study] = json.loads(wait_for(f"{base}/api/studies", 60))["study_summaries"]
            screenshot(args.chromium, f"{base}/dashboard/studies/{study['study_id']}",
                       args.out_dir / "optuna_dashboard.png", (1280, 1200), 15000)


if __name__ == "__main__":
    main()
