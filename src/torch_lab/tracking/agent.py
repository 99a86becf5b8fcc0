"""Handing a task to a ClearML agent: the task is enqueued (its queue was checked before the task
existed: ``tracking.server.check_queue``) and this process ends (an agent runs the same command
from there).

Imports clearml through ``torch_lab.tracking.task`` (which sets its import order).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from torch_lab.tracking.task import Task


def enqueue(task: Task, queue: str) -> None:
    """Enqueue ``task`` in ClearML queue ``queue`` and end this process; when a ClearML agent runs
    the task, this returns at once and the run goes on (with the hparams edited in the UI).

    Asked for a sweep's base task (``TORCH_LAB_TEMPLATE_FILE``, see ``torch_lab.sweep.queue``), it
    writes the task id there and leaves the task as a draft for ClearML's optimizer to clone."""
    template = os.environ.get("TORCH_LAB_TEMPLATE_FILE")
    if template and Task.running_locally():
        Path(template).write_text(json.dumps({"task_id": task.id}))
        task.execute_remotely(queue_name=None, exit_process=True)
    if Task.running_locally():
        print(f"torch-lab: task {task.id} enqueued in ClearML queue '{queue}'", flush=True)
    task.execute_remotely(queue_name=queue, exit_process=True)
