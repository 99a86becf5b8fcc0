"""Does training wait on data? The demo's training DataLoader (num_workers 0/1/2, pin_memory off/on)
iterated alone, against the model's consumption rate (forward, backward and AdamW step on a batch
already in memory); plus batched tensor indexing, the same samples without per-sample
``__getitem__`` and collation, for reference.

    python benchmarks/dataloading.py [--max-batches N] [--repeats 3] [--smoke]

Loader times include starting the workers, as every epoch of the demo does (no persistent workers).
On this CPU-only machine pin_memory has nothing to pin to; it is measured because it is asked for.
"""

from __future__ import annotations

import itertools
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

import common
from example_project.models import SmallCNN

WORKERS = (0, 1, 2)
PIN_MEMORY = (False, True)


def iterate(loader: DataLoader, batches: int) -> float:
    """Seconds to fetch the first ``batches`` batches of ``loader`` (workers started included)."""
    start = time.perf_counter()
    for _ in itertools.islice(loader, batches):
        pass
    return time.perf_counter() - start


def index_tensors(loader: DataLoader, batches: int) -> float:
    """Seconds to cut the same number of shuffled batches straight from the dataset's tensors."""
    dataset = loader.dataset
    start = time.perf_counter()
    order = torch.randperm(len(dataset))
    for index in range(batches):
        chosen = order[index * loader.batch_size:(index + 1) * loader.batch_size]
        _ = dataset.images[chosen], {"y": dataset.labels[chosen], "index": dataset.indices[chosen]}
    return time.perf_counter() - start


def consume(hparams: dict[str, Any], batch: Any, steps: int) -> float:
    """Seconds of ``steps`` training steps of the demo's model on one batch already in memory."""
    config = hparams["config"]
    model = SmallCNN(**config["model"]).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["learning_rate"],
                                  weight_decay=config["weight_decay"])
    loss_function = nn.CrossEntropyLoss()
    x, metadata = batch
    start = time.perf_counter()
    for _ in range(steps):
        loss = loss_function(model(x), metadata["y"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def variants(base: DataLoader) -> dict[str, DataLoader]:
    """The demo's loader with each num_workers and pin_memory setting."""
    return {f"workers={w} pin_memory={p}": DataLoader(base.dataset, batch_size=base.batch_size,
                                                      shuffle=True, num_workers=w, pin_memory=p)
            for w in WORKERS for p in PIN_MEMORY}


def main() -> None:
    parser = common.parser("dataloading", __doc__.splitlines()[0])
    parser.add_argument("--max-batches", type=int, help="batches per measurement (default: an epoch)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*pin_memory.*")  # no accelerator: pinning is a no-op
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        data = common.prepare_data(args.data_dir, Path(scratch), args.smoke)
        hparams = common.demo_hparams(data)
        pl.seed_everything(0, verbose=False)
        base = common.train_loader(hparams)
        batches = min(common.SMOKE_BATCHES if args.smoke else args.max_batches or len(base), len(base))
        samples = common.samples_in(base, batches)
        loaders = variants(base)
        seconds: dict[str, list[float]] = {name: [] for name in [*loaders, "tensor indexing", "model"]}
        for repeat in range(common.repeats(args)):
            print(f"repetition {repeat + 1}: {len(loaders)} loaders, tensor indexing, model ...", flush=True)
            for name, loader in loaders.items():
                seconds[name].append(iterate(loader, batches))
            seconds["tensor indexing"].append(index_tensors(base, batches))
            seconds["model"].append(consume(hparams, next(iter(base)), batches))
    rates = {name: samples / common.median(s) for name, s in seconds.items()}
    rows = [{"source": name, "samples/s": rate, "ms per batch": 1000 * common.median(seconds[name]) / batches,
             "rate / model rate": rate / rates["model"]} for name, rate in rates.items()]
    common.print_table(f"{batches} batches of {base.batch_size}, median of {common.repeats(args)}", rows)
    serial = 1 / rates["workers=0 pin_memory=False"]
    print(f"demo setting (workers=0): data is {serial / (serial + 1 / rates['model']):.0%} of a "
          "training step's time when fetching and training run one after the other")
    common.write_json(args.out, {
        "benchmark": "dataloading",
        "settings": {"batches": batches, "batch_size": base.batch_size, "repeats": common.repeats(args),
                     "synthetic_data": data.synthetic, "smoke": args.smoke},
        "environment": common.environment(),
        "loaders": {name: {"samples_per_s": rates[name], "ratio_to_model": rates[name] / rates["model"]}
                    for name in [*loaders, "tensor indexing"]},
        "model_samples_per_s": rates["model"],
        "data_share_of_step_workers0": serial / (serial + 1 / rates["model"]),
    })


if __name__ == "__main__":
    main()
