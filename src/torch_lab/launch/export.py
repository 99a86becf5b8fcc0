"""``export``: a trained task's model as TorchScript, a ``torch.export`` program or ONNX, loaded
back and checked against the checkpoint's model, as a task of its own.

The module comes from ``train_config`` (every experiment has it, and it needs no extra arguments)
called with the hparams the task recorded (plus ``--set``; the hparams file's for a .ckpt), the
weights from the task's checkpoint (found as ``infer`` finds it), the example input from the
first batch of the validation dataloader (else the training one). What is exported is a
``LabModule``'s model followed by its ``output_transform``, as its ``predict_step`` computes it, and
any other LightningModule's ``forward``. The file is written once checked, atomically: a stop or a
failure leaves no part of it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking.task)
import torch

from torch_lab import checkpoints
from torch_lab.errors import UserError, display_path
from torch_lab.experiment import Experiment
from torch_lab.export import formats
from torch_lab.export.check import check
from torch_lab.launch.start_points import StartPoint, check_start, task_hparams
from torch_lab.launch.tracked import TrackedRun
from torch_lab.modules import LabModule, split_batch
from torch_lab.storage.atomic import atomic_file
from torch_lab.storage.run_dir import RunDirectory, artifacts_root, resolve_task_id
from torch_lab.tracking import task as tracking

#: Each format's exporter, and the format to suggest when it fails.
EXPORTER = {"torchscript": "TorchScript", "exported": "torch.export", "onnx": "ONNX export"}
INSTEAD = {"torchscript": "exported", "exported": "torchscript", "onnx": "exported"}
#: How torch writes an op in its errors: ``<OpOverload(op='aten.cummax', overload='default')>``.
OP_OVERLOAD = re.compile(r"<OpOverload\(op='([^']+)', overload='([^']+)'\)>")


@dataclass(frozen=True)
class ExportOptions:
    """What ``export``'s command line asked for."""

    reference: str  # a task id or a .ckpt path
    format: str = "torchscript"
    out: str | None = None  # as typed: a trailing "/" names a folder
    checkpoint: str | None = None  # "best" or "last"; None: best when the task has it, else last
    dynamic_batch: bool = False
    atol: float = 1e-5
    rtol: float = 1e-4
    offline: bool = False
    force: bool = False  # replace an existing ``out``
    overrides: tuple[str, ...] = ()  # ``--set``, applied to the task's recorded hparams too


class ExportMismatch(RuntimeError):
    """The exported file computes something else than the checkpoint's model."""


def export(experiment: Experiment, options: ExportOptions) -> RunDirectory:
    """Build, load, export, reload and compare; the export's own run directory."""
    formats.check_available(options.format)
    reference = checkpoints.given_id(options.reference, "TASK_ID|CKPT")
    out = _checked_out(options.out, options.force) if options.out is not None else None
    path = checkpoints.resolve_checkpoint(reference, options.checkpoint)
    by_path = reference.endswith(".ckpt") or Path(reference).is_file()
    lineage = {"path": str(path)} if by_path else {"task_id": resolve_task_id(reference), "path": str(path)}
    hparams = None if by_path else task_hparams(experiment, lineage["task_id"], list(options.overrides))
    hparams = hparams or experiment.hparams
    experiment.config_function("train_config")
    pl.seed_everything(hparams["seed"] or 0, workers=True, verbose=False)
    config = experiment.train_config(hparams)
    module = config["module"]
    check_start(module, StartPoint(path, True, f"checkpoint {reference} ({path})", lineage))
    checkpoints.load_weights(module, path)
    example = example_input(experiment, config)

    tracked = TrackedRun(experiment, hparams, f"export_{experiment.name}", "custom", ["export"],
                         tracking.select_offline(options.offline))
    with tracked:
        tracked.stop.check()
        tracked.run.update(started_from=lineage)
        if "task_id" in lineage:
            tracking.record_parent(tracked.task, lineage)
        target = out or tracked.run.path / "export" / f"model{formats.SUFFIXES[options.format]}"
        data, record = _export(module, example, target, options, path)
        tracked.run.write_json("export.json", record)
        tracked.run.update(export={"format": options.format, "path": str(target), "ok": record["ok"]})
        for result in record["checks"]:
            print(f"torch-lab: {options.format} on input {tuple(result['input_shape'])}: largest difference "
                  f"{result['max_abs']:.3g} absolute, {result['max_rel']:.3g} relative", flush=True)
        tracked.stop.check()  # a stop before the file is in place leaves none (nor replaces --out)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target) as handle:
            handle.write(data)
        tracking.record_model(tracked.task, f"export-{options.format}", target, tracked.offline)
        if not record["ok"]:
            raise ExportMismatch(f"{target} differs from the checkpoint's model past atol={options.atol}, "
                                 f"rtol={options.rtol} (see export.json)")
        print(f"torch-lab: exported {target}", flush=True)
        tracked.stop.check()
    return tracked.run


def _export(module: Any, example: torch.Tensor, target: Path, options: ExportOptions,
            checkpoint: Path) -> tuple[bytes, dict[str, Any]]:
    """Export, load back and compare: the file's bytes and export.json's content."""
    predictor = predictor_of(module).cpu().eval()
    try:
        data, details = formats.write(options.format, predictor, example, options.dynamic_batch)
    except Exception as error:
        raise RuntimeError(f"{EXPORTER[options.format]} failed: {_reason(error)}; "
                           f"try --format {INSTEAD[options.format]} instead") from error
    batches = [example, torch.cat([example, example])] if options.dynamic_batch else [example]
    checks = check(predictor, formats.load(options.format, data), batches, options.atol, options.rtol)
    return data, {"format": options.format, "path": str(target), "checkpoint": str(checkpoint),
                  "torch": torch.__version__, **details,
                  "input": {"shape": list(example.shape), "dtype": str(example.dtype).removeprefix("torch.")},
                  "dynamic_axes": {"x": [0]} if options.dynamic_batch else {},
                  "atol": options.atol, "rtol": options.rtol, "checks": checks,
                  "ok": all(c["ok"] for c in checks)}


def predictor_of(module: pl.LightningModule) -> formats.Predictor:
    """What is exported: a ``LabModule``'s model and ``output_transform``; another module's ``forward``."""
    if isinstance(module, LabModule):
        return formats.Predictor(module.model, module.output_transform)
    # Tracing reads every attribute, ``trainer`` too, which raises without a Trainer unless Lightning's
    # own flag for TorchScript (``to_torchscript`` sets it) says so: this module is export's alone.
    module._jit_is_scripting = True
    return formats.Predictor(module, None)


def _reason(error: BaseException) -> str:
    """The first sentence of the innermost cause of an exporter's error: ONNX export wraps the
    failing op's error in two of its own ("Failed to convert the exported program ..."), whose
    cause names the op: ``No ONNX function found for aten.cummax.default``."""
    while error.__cause__ is not None:
        error = error.__cause__
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return OP_OVERLOAD.sub(r"\1.\2", first.split(". ")[0].rstrip("."))


def example_input(experiment: Experiment, config: dict[str, Any]) -> torch.Tensor:
    """The ``x`` of the first batch of the validation dataloader, else of the training one."""
    for key in ("val_dataloaders", "train_dataloaders"):
        loader = config.get(key)
        loader = loader[0] if isinstance(loader, (list, tuple)) and loader else loader
        if loader is None:
            continue
        x, _ = split_batch(next(iter(loader)))
        if isinstance(x, torch.Tensor):
            return x.cpu()
        raise UserError(f"{display_path(experiment.main_path)}: train_config's {key} gives batches whose "
                        f"input is a {type(x).__name__}; export needs a tensor")
    raise UserError(f"{display_path(experiment.main_path)}: train_config returned no dataloader to take "
                    "an example input from")


def _checked_out(text: str, force: bool) -> Path:
    """``--out`` as a file that may be written, before any task exists: not a folder, not inside
    a run directory, the artifacts root or the ClearML cache (even with ``--force``), an existing
    file only with ``--force``, and a folder where a file can be created."""
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.is_dir():
        raise UserError(f"--out {text}: is a directory; give a file name, e.g. {out / 'model.pt'}")
    resolved = out.resolve()
    for folder, what in _protected():
        if resolved.is_relative_to(folder):
            raise UserError(f"--out {display_path(out)}: inside {what} {display_path(folder)}, which torch-lab "
                            "keeps; give a path outside it")
    run = next((p for p in resolved.parents if (p / "run.json").is_file()), None)
    if run is not None:
        raise UserError(f"--out {display_path(out)}: inside the run directory {display_path(run)}; give a "
                        "path outside it")
    if out.exists() and not force:
        raise UserError(f"--out {display_path(out)}: exists; add --force to replace it")
    folder = next((p for p in (resolved.parent, *resolved.parent.parents) if p.exists()), Path("/"))
    try:  # os.access says yes for root, and for /proc: create a file to know
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f"--out {display_path(out)}: {display_path(folder)} cannot be written "
                        f"({error.strerror})") from None
    return out


def _protected() -> list[tuple[Path, str]]:
    """The folders whose files ``--out`` never replaces: torch-lab's runs and ClearML's cache."""
    from clearml.config import get_cache_dir

    return [(artifacts_root().resolve(), "the artifacts root"), (Path(get_cache_dir()).resolve(), "the ClearML cache")]
