"""``export-model`` on the MNIST demo: the wall time of the real console script per format, and
ONNX Runtime's CPU throughput on the test images against the ``torch.inference_mode`` loop that
``infer``'s ``predict_step`` amounts to (``inference.py`` measures ``infer`` itself against that
loop), interleaved in fresh processes.

    python benchmarks/export.py [--repeats 3] [--smoke]

The weights are a freshly initialised SmallCNN saved as a checkpoint: neither time depends on them.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

import common
from example_project.models import SmallCNN

FORMATS = ("torchscript", "exported", "onnx")


def torch_loop(hparams: dict[str, Any], checkpoint: Path, onnx_file: Path, max_batches: int | None) -> float:
    """Seconds of the checkpoint's model over the test images, as ``predict_step`` runs it."""
    model = SmallCNN(**hparams["config"]["model"])
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for index, (x, _) in enumerate(common.predict_loader(hparams)):
            if index == max_batches:
                break
            model(x).argmax(dim=1)  # the demo's output_transform
    return time.perf_counter() - start


def onnx_runtime(hparams: dict[str, Any], checkpoint: Path, onnx_file: Path, max_batches: int | None) -> float:
    """Seconds of ONNX Runtime (CPU) running the exported file over the same images."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    start = time.perf_counter()
    for index, (x, _) in enumerate(common.predict_loader(hparams)):
        if index == max_batches:
            break
        session.run(None, {name: x.numpy()})  # the exported output_transform included
    return time.perf_counter() - start


VARIANTS = {"torch_loop": torch_loop, "onnx_runtime": onnx_runtime}


def export_command(data: common.Data, checkpoint: Path, folder: Path, fmt: str) -> tuple[float, Path]:
    """The real ``export-model --offline --dynamic-batch``: its wall seconds and the file it wrote."""
    folder.mkdir()
    command = [common.console_script("export-model"), common.DEMO_HPARAMS, checkpoint, "--format", fmt,
               "--dynamic-batch", "--offline", *common.demo_overrides(data)]
    wall, _ = common.run_command(command, env=common.tracking_env(folder), cwd=folder)
    record = json.loads(next((folder / "artifacts").glob("*/run.json")).read_text())
    assert record["status"] == "completed" and record["export"]["ok"], record
    return wall, Path(record["export"]["path"])


def main() -> None:
    args = common.variant_parser("export", __doc__.splitlines()[0], VARIANTS, "--onnx").parse_args()
    if common.run_variant(args, VARIANTS, args.onnx):  # the child side of common.in_fresh_process
        return
    max_batches = common.SMOKE_BATCHES if args.smoke else args.max_batches
    count = common.repeats(args)
    walls: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        folder = Path(scratch)
        data = common.prepare_data(args.data_dir, folder, args.smoke)
        hparams = common.demo_hparams(data)
        hparams_file, checkpoint = folder / "hparams.json", folder / "model.ckpt"
        hparams_file.write_text(json.dumps(hparams))
        pl.seed_everything(0, verbose=False)
        torch.save({"state_dict": SmallCNN(**hparams["config"]["model"]).state_dict()}, checkpoint)
        samples = common.samples_in(common.predict_loader(hparams), max_batches)
        onnx_file = None
        for repeat in range(count):
            print(f"repetition {repeat + 1}: export-model x {len(FORMATS)}, torch loop, ONNX Runtime ...", flush=True)
            for fmt in FORMATS:
                wall, path = export_command(data, checkpoint, folder / f"{fmt}-{repeat}", fmt)
                walls[fmt].append(wall)
                onnx_file = path if fmt == "onnx" else onnx_file
            for name in VARIANTS:
                seconds[name].append(common.in_fresh_process(
                    __file__, name, "--hparams-json", hparams_file, "--checkpoint", checkpoint,
                    "--onnx", onnx_file, max_batches=max_batches))
    throughput = {name: samples / common.median(s) for name, s in seconds.items()}
    ratio = throughput["onnx_runtime"] / throughput["torch_loop"]
    common.print_table(f"export-model wall seconds (start-up included), median of {count}",
                       [{"format": fmt, "seconds": common.median(w)} for fmt, w in walls.items()])
    common.print_table(f"prediction, {samples} test samples, median of {count}",
                       [{"variant": name, "samples/s": value} for name, value in throughput.items()])
    print(f"onnx_runtime/torch_loop: {ratio:.3f}")
    common.write_json(args.out, {
        "benchmark": "export",
        "settings": {"max_batches": max_batches, "samples": samples, "repeats": count,
                     "synthetic_data": data.synthetic, "smoke": args.smoke},
        "environment": common.environment(),
        "export_wall_seconds": {fmt: common.median(w) for fmt, w in walls.items()},
        "samples_per_s": throughput,
        "ratio_onnx_runtime/torch_loop": ratio,
    })


if __name__ == "__main__":
    main()
