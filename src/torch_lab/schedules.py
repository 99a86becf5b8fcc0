"""Ready-made learning-rate schedules, built from torch's own schedulers."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


def warmup_cosine(optimizer: Optimizer, warmup_steps: int, total_steps: int,
                  start_factor: float = 0.01, eta_min: float = 0.0) -> SequentialLR:
    """Linear warm-up from ``start_factor * lr`` to ``lr`` over ``warmup_steps``, then cosine decay
    to ``eta_min`` at ``total_steps``. Use with ``"interval": "step"`` in ``optimizer_config``:
    ``{"scheduler": warmup_cosine, "scheduler_kwargs": {"warmup_steps": 100, "total_steps": 5000}}``.
    """
    if not 0 < warmup_steps < total_steps:
        raise ValueError(f"need 0 < warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
    warmup = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    decay = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=eta_min)
    return SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])


def warmup_cosine_lr(step: int, lr: float, warmup_steps: int, total_steps: int,
                     start_factor: float = 0.01, eta_min: float = 0.0) -> float:
    """The learning rate ``warmup_cosine`` gives at ``step`` (the formula, for checks and plots)."""
    if step < warmup_steps:
        return lr * (start_factor + (1.0 - start_factor) * step / warmup_steps)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return eta_min + (lr - eta_min) * (1.0 + math.cos(math.pi * progress)) / 2.0
