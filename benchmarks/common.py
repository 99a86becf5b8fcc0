"""Shared helpers of the benchmarks: command line, timing, medians, tables, JSON results, and the
MNIST demo's config and data (with a synthetic stand-in when the MNIST files are absent)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from example_project.datasets import MNISTDigits, train_val_indices
from example_project.preprocess import mnist
from torch_lab.utils import import_script_as_module

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEMO = REPO / "src" / "example_project" / "experiments" / "00_mnist_demo"
DEMO_HPARAMS = DEMO / "hparams.py"
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
#: Synthetic split sizes: MNIST's own, or tiny ones for --smoke.
SYNTHETIC_SIZES = {False: {"train": 60_000, "test": 10_000}, True: {"train": 1_280, "test": 256}}
SMOKE_BATCHES = 4


# ---------------------------------------------------------------- command line and results


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The flags every benchmark has: --smoke, --repeats, --data-dir, --out."""
    result = argparse.ArgumentParser(prog=f"benchmarks/{name}.py", description=description)
    result.add_argument("--smoke", action="store_true",
                        help=f"tiny sizes ({SMOKE_BATCHES} batches, 1 repeat): checks that it runs")
    result.add_argument("--repeats", type=int, default=3, help="repetitions; medians are reported")
    result.add_argument("--data-dir", type=Path, default=REPO / "data",
                        help="the MNIST data directory; synthetic data when it holds no MNIST")
    result.add_argument("--out", type=Path, default=RESULTS / f"{name}.json",
                        help="where to write the JSON results")
    return result


def repeats(args: argparse.Namespace) -> int:
    """The number of repetitions: 1 with --smoke."""
    return 1 if args.smoke else max(1, args.repeats)


def environment() -> dict[str, Any]:
    """What the numbers depend on: versions, threads, CPU count and the load average."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pytorch_lightning": pl.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results written to {path}")


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    """Print ``rows`` (dicts with the same keys) as an aligned text table."""
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


# ---------------------------------------------------------------- timing


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of calling ``function``."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def run_command(command: Sequence[str | Path], env: dict[str, str] | None = None,
                cwd: Path | None = None, timeout: float = 900) -> tuple[float, str]:
    """Run ``command``; return its wall seconds and stdout. Raise with its output when it fails;
    after ``timeout`` seconds kill it and its children and raise ``subprocess.TimeoutExpired``."""
    start = time.perf_counter()
    process = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, cwd=cwd,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the command and its children only
        process.communicate()
        raise
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {process.returncode}:\n"
                           f"{stdout[-2000:]}\n{stderr[-3000:]}")
    return seconds, stdout


def variant_parser(name: str, description: str, variants: Sequence[str], file_flag: str) -> argparse.ArgumentParser:
    """``parser`` plus ``--max-batches`` and the hidden flags of a variant's child side
    (``--variant``, ``--hparams-json``, ``--checkpoint`` and ``file_flag``, a path)."""
    result = parser(name, description)
    result.add_argument("--max-batches", type=int, help="cap on prediction batches")
    result.add_argument("--variant", choices=variants, help=argparse.SUPPRESS)
    for flag in ("--hparams-json", "--checkpoint", file_flag):
        result.add_argument(flag, type=Path, help=argparse.SUPPRESS)
    return result


def run_variant(args: argparse.Namespace, variants: dict[str, Callable[..., Any]], file: Path | None) -> bool:
    """On a variant's child side: run it on the parent's hparams, checkpoint and ``file``, print
    its JSON result for ``in_fresh_process``, and return True; else False."""
    if not args.variant:
        return False
    hparams = json.loads(args.hparams_json.read_text())
    print(json.dumps(variants[args.variant](hparams, args.checkpoint, file, args.max_batches)))
    return True


def in_fresh_process(script: str | Path, variant: str, *args: str | Path,
                     max_batches: int | None = None) -> Any:
    """Run ``script --variant VARIANT ARGS`` (a benchmark's child side) in a new Python process, so
    that the variant pays the same one-off start costs (first kernels, allocator) as a console
    script in its own process; the JSON value the child prints on its last line."""
    command = [sys.executable, script, "--variant", variant, *args,
               *(["--max-batches", str(max_batches)] if max_batches is not None else [])]
    _, stdout = run_command(command)
    return json.loads(stdout.strip().splitlines()[-1])


def console_script(name: str) -> Path:
    """The ``train`` / ``infer`` console script of this Python environment."""
    return Path(sys.executable).parent / name


def tracking_env(folder: Path) -> dict[str, str]:
    """Environment for a torch-lab run whose artifacts and ClearML cache live under ``folder``."""
    return {"TORCH_LAB_ARTIFACTS": str(folder / "artifacts"), "CLEARML_CACHE_DIR": str(folder / "clearml")}


# ---------------------------------------------------------------- the demo's config and data


@dataclass(frozen=True)
class Data:
    """Where the benchmark's MNIST is, whether it is synthetic, and the validation split size."""

    data_dir: Path
    synthetic: bool
    val_size: int


def has_mnist(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds MNIST: the processed tensors or the four raw files (.gz or not)."""
    processed = mnist.processed_dir(data_dir)
    if all((processed / f"{split}.pt").is_file() for split in mnist.SPLITS):
        return True
    raw = data_dir / "MNIST" / "raw"
    return all((raw / name).is_file() or (raw / f"{name}.gz").is_file() for name in RAW_FILES)


def write_synthetic(data_dir: Path, smoke: bool) -> None:
    """Random digits of MNIST's shape and dtype, as the demo's processed tensors in ``data_dir``."""
    generator = torch.Generator().manual_seed(0)
    out = mnist.processed_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split, count in SYNTHETIC_SIZES[smoke].items():
        images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
        labels = torch.randint(0, 10, (count,), generator=generator)
        torch.save({"images": images, "labels": labels}, out / f"{split}.pt")


def prepare_data(data_dir: Path, scratch: Path, smoke: bool) -> Data:
    """MNIST from ``data_dir`` when it is there, else synthetic data written under ``scratch``.

    The validation split is the demo's ``val_size`` capped at a tenth of the training images.
    """
    synthetic = not has_mnist(data_dir)
    if synthetic:
        data_dir = scratch / "synthetic-data"
        write_synthetic(data_dir, smoke)
        print(f"no MNIST files found: using synthetic data in {data_dir}")
    data_dir = data_dir.resolve()
    count = len(mnist.load(data_dir, "train")["labels"])
    val_size = min(demo_hparams()["config"]["val_size"], count // 10)
    return Data(data_dir, synthetic, val_size)


def demo_hparams(data: Data | None = None, epochs: int | None = None) -> dict[str, Any]:
    """A fresh copy of the demo's hparams, pointed at ``data`` and set to ``epochs`` epochs."""
    hparams = import_script_as_module(DEMO_HPARAMS).hparams
    if data is not None:
        hparams["config"].update(data_dir=str(data.data_dir), val_size=data.val_size)
    if epochs is not None:
        hparams["trainer"]["init"]["max_epochs"] = epochs
    return hparams


def demo_overrides(data: Data, extra: dict[str, Any] | None = None) -> list[str]:
    """``--set`` arguments pointing the real demo at ``data``, plus ``extra`` keys."""
    values = {"config.data_dir": str(data.data_dir), "config.val_size": data.val_size, **(extra or {})}
    return [part for key, value in values.items() for part in ("--set", f"{key}={value!r}")]


def demo_main() -> ModuleType:
    """The demo's ``__main__.py`` (``loader``, ``train_config``, ``infer_config``), freshly imported."""
    return import_script_as_module(DEMO / "__main__.py")


def train_loader(hparams: dict[str, Any]) -> DataLoader:
    """The demo's training DataLoader (its split, batch size, shuffling and workers)."""
    config = hparams["config"]
    train_idx, _ = train_val_indices(config["data_dir"], config["val_size"], config["split_seed"])
    return demo_main().loader(MNISTDigits(config["data_dir"], "train", train_idx), config, shuffle=True)


def predict_loader(hparams: dict[str, Any]) -> DataLoader:
    """The demo's test DataLoader (the one ``infer`` predicts)."""
    config = hparams["config"]
    return demo_main().loader(MNISTDigits(config["data_dir"], "test"), config, shuffle=False)


def samples_in(loader: DataLoader, max_batches: int | None) -> int:
    """How many samples the first ``max_batches`` batches (all when None) of ``loader`` hold."""
    batches = len(loader) if max_batches is None else min(max_batches, len(loader))
    return min(batches * loader.batch_size, len(loader.dataset))
