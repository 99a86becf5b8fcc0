"""Build the processed MNIST tensors under ``<data dir>/processed/mnist`` and, when ClearML is
online, register them as a ClearML Dataset.

    python -m example_project.preprocess.mnist [--data-dir data] [--register]

The raw files come from ``torchvision.datasets.MNIST``: downloaded into ``<data dir>/MNIST/raw``
where the internet is reachable, otherwise read from there (put the four original ``.gz`` files
there yourself).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

SPLITS = ("train", "test")


def processed_dir(data_dir: str | Path) -> Path:
    """Where the processed tensors of ``data_dir`` live."""
    return Path(data_dir) / "processed" / "mnist"


def build(data_dir: str | Path) -> Path:
    """Write ``train.pt`` and ``test.pt`` (``{"images": uint8 [N, 28, 28], "labels": int64 [N]}``)."""
    from torchvision.datasets import MNIST

    out = processed_dir(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        try:
            raw = MNIST(str(data_dir), train=split == "train", download=True)
        except Exception as error:  # no internet and no files
            raise FileNotFoundError(
                f"MNIST not found in {Path(data_dir) / 'MNIST' / 'raw'} and could not be downloaded "
                f"({type(error).__name__}); put the four MNIST .gz files there"
            ) from None
        tmp = out / f".{split}.pt.tmp"
        torch.save({"images": raw.data.clone(), "labels": raw.targets.clone()}, tmp)
        tmp.replace(out / f"{split}.pt")
    return out


def load(data_dir: str | Path, split: str) -> dict[str, torch.Tensor]:
    """The processed tensors of ``split``, building them first when absent."""
    path = processed_dir(data_dir) / f"{split}.pt"
    if not path.is_file():
        build(data_dir)
    return torch.load(path, weights_only=True)


def register(data_dir: str | Path, project: str = "example_project") -> str:
    """Upload the processed files as a ClearML Dataset; returns its id."""
    from clearml import Dataset

    dataset = Dataset.create(dataset_name="mnist-processed", dataset_project=project)
    dataset.add_files(str(processed_dir(data_dir)))
    dataset.upload()
    dataset.finalize()
    return dataset.id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="data directory (default: ./data)")
    parser.add_argument("--register", action="store_true",
                        help="register the processed files as a ClearML Dataset (needs a server)")
    args = parser.parse_args(argv)
    out = build(args.data_dir)
    print(f"processed MNIST written to {out}")
    if args.register:
        from torch_lab.tracking import task as tracking

        if not tracking.is_configured():
            parser.exit(2, "preprocess: error: --register needs a configured ClearML server\n")
        tracking.configure(offline=False)
        tracking.check_server()
        print(f"registered ClearML dataset {register(args.data_dir)}")


if __name__ == "__main__":
    main()
