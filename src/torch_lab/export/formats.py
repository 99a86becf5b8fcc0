"""Writing a model in one of three formats and loading it back as a callable.

- ``torchscript``: ``torch.jit.trace`` (``torch.jit.script`` when tracing is refused), ``.pt``;
- ``exported``: ``torch.export.export``, saved with ``torch.export.save``, ``.pt2``;
- ``onnx``: ``torch.onnx.export(..., dynamo=True)``, run back with ONNX Runtime on the CPU.

``dynamic_batch`` makes the first dimension of the input free; otherwise the file holds the
example's shapes. A file is made in memory and loaded back from there: the caller writes it once
checked (atomically, see ``torch_lab.launch.export``).
"""

from __future__ import annotations

import importlib.util
import io
import os
from typing import Any, Callable

import torch
from torch import nn

from torch_lab.errors import UserError

SUFFIXES = {"torchscript": ".pt", "exported": ".pt2", "onnx": ".onnx"}
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
#: ONNX Runtime's telemetry opt-out: without it, it writes a device id and an event database in
#: ``$XDG_CACHE_HOME`` (``~/.cache/Microsoft/DeveloperTools/.onnxruntime``), outside the run and
#: the cache. 1.32 reads ``ORT_DISABLE_TELEMETRY``; its source since reads ``ORT_TELEMETRY_DISABLED``.
ORT_TELEMETRY_OFF = {"ORT_DISABLE_TELEMETRY": "1", "ORT_TELEMETRY_DISABLED": "1"}


class Predictor(nn.Module):
    """A model followed by an ``output_transform`` (a ``LabModule``'s: what its ``predict_step``
    computes), or a LightningModule's ``forward`` alone."""

    def __init__(self, model: nn.Module, output_transform: Callable[[Any], Any] | None) -> None:
        super().__init__()
        self.model = model
        self.output_transform = output_transform

    def forward(self, x: torch.Tensor) -> Any:
        y = self.model(x)
        return self.output_transform(y) if self.output_transform is not None else y


def check_available(fmt: str) -> None:
    """ONNX needs the ``onnx`` extra: say so in one line when it is missing."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None] if fmt == "onnx" else []
    if missing:
        raise UserError(f"--format onnx needs {', '.join(missing)}: pip install 'torch-lab[onnx]'")


def write(fmt: str, predictor: Predictor, example: torch.Tensor, dynamic_batch: bool) -> tuple[bytes, dict[str, Any]]:
    """Export ``predictor`` on ``example``: the file's bytes, and what was done (for export.json)."""
    predictor.eval()
    buffer = io.BytesIO()
    with torch.no_grad():
        if fmt == "torchscript":
            details = _torchscript(predictor, example, buffer)
        elif fmt == "exported":
            dynamic = {"x": {0: torch.export.Dim.DYNAMIC}} if dynamic_batch else None
            program = torch.export.export(predictor, (example,), dynamic_shapes=dynamic)
            torch.export.save(program, buffer)
            details = {"method": "torch.export.export"}
        else:
            return _onnx(predictor, example, dynamic_batch)
    return buffer.getvalue(), details


def _torchscript(predictor: Predictor, example: torch.Tensor, buffer: io.BytesIO) -> dict[str, Any]:
    try:
        compiled = torch.jit.trace(predictor, example, check_trace=False)
        method = "torch.jit.trace"
    except Exception as traced_error:  # e.g. outputs tracing cannot follow: try the compiler
        try:
            compiled = torch.jit.script(predictor)
        except Exception:
            raise traced_error from None
        method = "torch.jit.script"
    torch.jit.save(compiled, buffer)
    return {"method": method}


def _onnx(predictor: Predictor, example: torch.Tensor, dynamic_batch: bool) -> tuple[bytes, dict[str, Any]]:
    _telemetry_off()
    dynamic = {"x": {0: torch.export.Dim.DYNAMIC}} if dynamic_batch else None
    program = torch.onnx.export(predictor, (example,), dynamo=True, dynamic_shapes=dynamic,
                                input_names=["x"], verbose=False)
    proto = program.model_proto
    return proto.SerializeToString(), {
        "method": "torch.onnx.export(dynamo=True)",
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)}


def _telemetry_off() -> None:
    """Turn ONNX Runtime's telemetry off (unless the user set its variables), before anything
    starts ONNX Runtime: export may (onnxscript), loading back does."""
    for name, value in ORT_TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)


def load(fmt: str, data: bytes) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """What the file ``data`` computes, as a function of the input returning its output tensors."""
    if fmt == "torchscript":
        scripted = torch.jit.load(io.BytesIO(data), map_location="cpu")
        return lambda x: flat(scripted(x))
    if fmt == "exported":
        module = torch.export.load(io.BytesIO(data)).module()
        return lambda x: flat(module(x))
    _telemetry_off()
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: [torch.from_numpy(out) for out in session.run(None, {name: x.numpy()})]


def flat(output: Any) -> list[torch.Tensor]:
    """The tensors of an output (a tensor, or lists, tuples and dicts of them), in order."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):
        return [t for key in output for t in flat(output[key])]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in flat(item)]
    raise TypeError(f"the model returns a {type(output).__name__}; export needs tensors")
