"""Prediction throughput on the demo's test set: a hand-written ``torch.inference_mode`` loop, the
demo's ``infer_config`` in a bare ``pl.Trainer.predict``, and the real ``infer`` console script
(``--offline``; its prediction seconds from run.json, its wall time with start-up reported too).
Each run is a fresh process; all three write the same ``index,prediction`` CSV.

    python benchmarks/inference.py [--max-batches N] [--repeats 3] [--smoke]

The weights are a freshly initialised SmallCNN saved as a checkpoint: throughput does not depend on them.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

import common
from example_project.models import SmallCNN


def save_checkpoint(hparams: dict[str, Any], path: Path) -> SmallCNN:
    """A seeded SmallCNN, saved at ``path`` as torch-lab checkpoints hold it."""
    pl.seed_everything(0, verbose=False)
    model = SmallCNN(**hparams["config"]["model"])
    torch.save({"state_dict": model.state_dict()}, path)
    return model


def hand_written(hparams: dict[str, Any], checkpoint: Path, csv_path: Path,
                 max_batches: int | None) -> float:
    """Seconds of a plain inference loop writing the same CSV as the demo's writer."""
    model = SmallCNN(**hparams["config"]["model"])
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    model.eval()
    loader = common.predict_loader(hparams)
    rows: list[tuple[int, int]] = []
    start = time.perf_counter()
    with torch.inference_mode():
        for index, (x, metadata) in enumerate(loader):
            if index == max_batches:
                break
            rows += zip(metadata["index"].tolist(), model(x).argmax(dim=1).tolist())
    with open(csv_path, "w", newline="") as handle:
        csv.writer(handle).writerows([("index", "prediction"), *sorted(rows)])
    return time.perf_counter() - start


def lightning_predict(hparams: dict[str, Any], checkpoint: Path, csv_path: Path,
                      max_batches: int | None) -> float:
    """Seconds of the demo's ``infer_config`` in a bare ``Trainer.predict``."""
    config = common.demo_main().infer_config(hparams, str(checkpoint), str(csv_path))
    limit = {} if max_batches is None else {"limit_predict_batches": max_batches}
    trainer = pl.Trainer(**hparams["trainer"]["init"], **limit, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=config["callbacks"])
    seconds, _ = common.timed(lambda: trainer.predict(config["module"], config["predict_dataloaders"],
                                                      return_predictions=False))
    return seconds


VARIANTS = {"hand_written": hand_written, "lightning_predict": lightning_predict}


def infer_command(data: common.Data, checkpoint: Path, folder: Path,
                  max_batches: int | None) -> tuple[float, float]:
    """The real ``infer --offline``: its prediction seconds (run.json) and its wall seconds."""
    folder.mkdir()
    extra = {} if max_batches is None else {"trainer.init.limit_predict_batches": max_batches}
    command = [common.console_script("infer"), common.DEMO_HPARAMS, checkpoint, folder / "preds.csv",
               "--offline", *common.demo_overrides(data, extra)]
    wall, _ = common.run_command(command, env=common.tracking_env(folder), cwd=folder)
    record = json.loads(next((folder / "artifacts").glob("*/run.json")).read_text())
    return record["predict_seconds"], wall


def main() -> None:
    args = common.variant_parser("inference", __doc__.splitlines()[0], VARIANTS, "--csv").parse_args()
    if common.run_variant(args, VARIANTS, args.csv):  # the child side of common.in_fresh_process
        return
    max_batches = common.SMOKE_BATCHES if args.smoke else args.max_batches
    count = common.repeats(args)
    seconds: dict[str, list[float]] = {"hand_written": [], "lightning_predict": [], "infer": []}
    infer_wall: list[float] = []
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        folder = Path(scratch)
        data = common.prepare_data(args.data_dir, folder, args.smoke)
        hparams = common.demo_hparams(data)
        hparams_file, checkpoint = folder / "hparams.json", folder / "model.ckpt"
        hparams_file.write_text(json.dumps(hparams))
        pl.seed_everything(0, verbose=False)
        torch.save({"state_dict": SmallCNN(**hparams["config"]["model"]).state_dict()}, checkpoint)
        loader = common.predict_loader(hparams)
        samples = common.samples_in(loader, max_batches)
        for repeat in range(count):
            print(f"repetition {repeat + 1}: hand-written, Trainer.predict, infer ...", flush=True)
            for name in VARIANTS:
                seconds[name].append(common.in_fresh_process(
                    __file__, name, "--hparams-json", hparams_file, "--checkpoint", checkpoint,
                    "--csv", folder / f"{name}-{repeat}.csv", max_batches=max_batches))
            predict_seconds, wall = infer_command(data, checkpoint, folder / f"infer-{repeat}", max_batches)
            seconds["infer"].append(predict_seconds)
            infer_wall.append(wall)
        outputs = [folder / f"{name}-0.csv" for name in VARIANTS] + [folder / "infer-0" / "preds.csv"]
        same = len({path.read_text() for path in outputs}) == 1
    variants = {name: {"samples_per_s": samples / common.median(s), "seconds": common.median(s)}
                for name, s in seconds.items()}
    ratio = variants["infer"]["samples_per_s"] / variants["hand_written"]["samples_per_s"]
    common.print_table(f"prediction, {samples} test samples, median of {count}",
                       [{"variant": n, "samples/s": v["samples_per_s"], "seconds": v["seconds"]}
                        for n, v in variants.items()])
    print(f"infer/hand_written: {ratio:.3f}; identical CSVs: {same}; infer wall time with start-up: "
          f"{common.median(infer_wall):.1f} s")
    common.write_json(args.out, {
        "benchmark": "inference",
        "settings": {"max_batches": max_batches, "samples": samples, "batch_size": loader.batch_size,
                     "repeats": count, "synthetic_data": data.synthetic, "smoke": args.smoke},
        "environment": common.environment(),
        "variants": variants,
        "ratio_infer/hand_written": ratio,
        "infer_wall_seconds": common.median(infer_wall),
        "identical_predictions": same,
    })


if __name__ == "__main__":
    main()
