"""Does an exported file compute what the checkpoint's model computes? Its outputs against the
model's, on the example batch (and on a batch of another size when the batch is dynamic)."""

from __future__ import annotations

from typing import Any, Callable

import torch

from torch_lab.export.formats import flat


def compare(expected: list[torch.Tensor], got: list[torch.Tensor], atol: float, rtol: float) -> dict[str, Any]:
    """The largest absolute and relative difference, and whether every element is within
    ``atol + rtol * |expected|`` (``torch.allclose``'s rule)."""
    if len(expected) != len(got) or any(e.shape != g.shape for e, g in zip(expected, got)):
        return {"max_abs": None, "max_rel": None, "ok": False,
                "error": f"shapes {[tuple(e.shape) for e in expected]} expected, got {[tuple(g.shape) for g in got]}"}
    max_abs = max_rel = 0.0
    ok = True
    for e, g in zip(expected, got):
        e, g = e.detach().double(), g.detach().double()
        diff = (e - g).abs()
        max_abs = max(max_abs, float(diff.max()) if diff.numel() else 0.0)
        max_rel = max(max_rel, float((diff / e.abs().clamp_min(1e-12)).max()) if diff.numel() else 0.0)
        ok = ok and bool(torch.all(diff <= atol + rtol * e.abs()))
    return {"max_abs": max_abs, "max_rel": max_rel, "ok": ok}


def check(reference: torch.nn.Module, exported: Callable[[torch.Tensor], list[torch.Tensor]],
          batches: list[torch.Tensor], atol: float, rtol: float) -> list[dict[str, Any]]:
    """``compare`` on each batch, with its shape."""
    results = []
    with torch.no_grad():
        for batch in batches:
            result = compare(flat(reference(batch)), exported(batch), atol, rtol)
            results.append({"input_shape": list(batch.shape), **result})
    return results
