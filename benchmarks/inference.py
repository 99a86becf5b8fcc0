"""Prediction throughput on the demo's test set: the demo's ``infer_config`` (torch-lab's
``LabModule`` and CSV writer) in ``pl.Trainer.predict`` vs a hand-written ``torch.inference_mode``
loop over the same DataLoader, plus the real ``infer`` console script end to end (start-up included).

    python benchmarks/inference.py [--max-batches N] [--repeats 3] [--smoke]

The weights are a freshly initialised SmallCNN saved as a checkpoint: throughput does not depend on them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

import common
from example_project.models import SmallCNN


def save_checkpoint(hparams: dict[str, Any], path: Path) -> SmallCNN:
    """A seeded SmallCNN, saved at ``path`` as torch-lab checkpoints hold it."""
    pl.seed_everything(0, verbose=False)
    model = SmallCNN(**hparams["config"]["model"])
    torch.save({"state_dict": model.state_dict()}, path)
    return model


def hand_written(model: SmallCNN, loader: DataLoader, max_batches: int | None) -> tuple[float, torch.Tensor]:
    """Seconds and class predictions of a plain inference loop."""
    model.eval()
    predictions = []
    start = time.perf_counter()
    with torch.inference_mode():
        for index, (x, _) in enumerate(loader):
            if index == max_batches:
                break
            predictions.append(model(x).argmax(dim=1))
    return time.perf_counter() - start, torch.cat(predictions)


def lightning_predict(hparams: dict[str, Any], checkpoint: Path, csv_path: Path,
                      max_batches: int | None) -> tuple[float, torch.Tensor]:
    """Seconds and class predictions of the demo's ``infer_config`` in ``Trainer.predict``."""
    config = common.demo_main().infer_config(hparams, str(checkpoint), str(csv_path))
    limit = {} if max_batches is None else {"limit_predict_batches": max_batches}
    trainer = pl.Trainer(**hparams["trainer"]["init"], **limit, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=config["callbacks"])
    seconds, outputs = common.timed(lambda: trainer.predict(config["module"], config["predict_dataloaders"]))
    return seconds, torch.cat([output["y_pred"] for output in outputs])


def infer_command(data: common.Data, checkpoint: Path, folder: Path, max_batches: int | None) -> float:
    """Wall seconds of the real ``infer --offline`` (start-up, ClearML task and close included)."""
    folder.mkdir()
    extra = {} if max_batches is None else {"trainer.init.limit_predict_batches": max_batches}
    command = [common.console_script("infer"), common.DEMO_HPARAMS, checkpoint, folder / "preds.csv",
               "--offline", *common.demo_overrides(data, extra)]
    seconds, _ = common.run_command(command, env=common.tracking_env(folder), cwd=folder)
    return seconds


def main() -> None:
    parser = common.parser("inference", __doc__.splitlines()[0])
    parser.add_argument("--max-batches", type=int, help="cap on prediction batches")
    args = parser.parse_args()
    max_batches = common.SMOKE_BATCHES if args.smoke else args.max_batches
    count = common.repeats(args)
    seconds: dict[str, list[float]] = {"hand_written": [], "torch_lab_predict": [], "infer_command": []}
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        data = common.prepare_data(args.data_dir, Path(scratch), args.smoke)
        hparams = common.demo_hparams(data)
        checkpoint = Path(scratch) / "model.ckpt"
        model = save_checkpoint(hparams, checkpoint)
        loader = common.predict_loader(hparams)
        samples = common.samples_in(loader, max_batches)
        for repeat in range(count):
            print(f"repetition {repeat + 1}: hand-written, Trainer.predict, infer ...", flush=True)
            hand_seconds, hand_predictions = hand_written(model, loader, max_batches)
            lab_seconds, lab_predictions = lightning_predict(
                hparams, checkpoint, Path(scratch) / f"preds-{repeat}.csv", max_batches)
            seconds["hand_written"].append(hand_seconds)
            seconds["torch_lab_predict"].append(lab_seconds)
            seconds["infer_command"].append(
                infer_command(data, checkpoint, Path(scratch) / f"infer-{repeat}", max_batches))
    variants = {name: {"samples_per_s": samples / common.median(s), "seconds": common.median(s)}
                for name, s in seconds.items()}
    ratio = variants["torch_lab_predict"]["samples_per_s"] / variants["hand_written"]["samples_per_s"]
    same = bool(torch.equal(hand_predictions, lab_predictions))
    common.print_table(f"prediction, {samples} test samples, median of {count} "
                       "(infer_command includes its start-up)",
                       [{"variant": n, "samples/s": v["samples_per_s"], "seconds": v["seconds"]}
                        for n, v in variants.items()])
    print(f"torch_lab_predict/hand_written: {ratio:.3f}; identical predictions: {same}")
    common.write_json(args.out, {
        "benchmark": "inference",
        "settings": {"max_batches": max_batches, "samples": samples, "batch_size": loader.batch_size,
                     "repeats": count, "synthetic_data": data.synthetic, "smoke": args.smoke},
        "environment": common.environment(),
        "variants": variants,
        "ratio_torch_lab_predict/hand_written": ratio,
        "identical_predictions": same,
    })


if __name__ == "__main__":
    main()
