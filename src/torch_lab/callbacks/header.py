"""``RunHeader``: the console header's second line, once Lightning knows the device."""

from __future__ import annotations

import pytorch_lightning as pl

from torch_lab import console
from torch_lab.text import printable


class RunHeader(pl.Callback):
    """The header's second line, once Lightning knows the device: task name and project, online
    or offline, device, precision and parameter count."""

    def __init__(self) -> None:
        self._shown = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._shown or not trainer.is_global_zero:
            return
        self._shown = True
        from clearml import Task

        task = Task.current_task()
        where = "offline" if Task.is_offline() else "online"
        name = (f"{printable(task.name)} ({printable(task.get_project_name() or '')}), {where}"
                if task is not None else where)  # control characters escaped: the terminal is not theirs
        total = sum(p.numel() for p in pl_module.parameters())
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        device = trainer.strategy.root_device
        devices = f" x {trainer.num_devices * trainer.num_nodes}" if trainer.world_size > 1 else ""
        params = f"{total:,} parameters" + (f" ({trainable:,} trainable)" if trainable != total else "")
        console.say(f"torch-lab: {name}; {device.type}{devices}, precision {trainer.precision}; {params}")
