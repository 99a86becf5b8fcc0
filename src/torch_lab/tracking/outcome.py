"""The outcome of a run on its ClearML task: a tag, the comment and the status, kept as recorded
through ClearML's own shutdown, then the task closed.

Imports clearml through ``torch_lab.tracking.task`` (which sets its import order).
"""

from __future__ import annotations

from pathlib import Path

from torch_lab.tracking.task import Task


def finish_task(task: Task, status: str, run_json: Path | None, message: str | None = None) -> None:
    """Record the outcome on the task (tag, comment, status) and close it."""
    task.add_tags([status])
    if message:
        task.set_comment(f"{status}: {message}")
    if run_json is not None and run_json.is_file():
        task.upload_artifact("run.json", artifact_object=run_json, wait_on_upload=True)
    if status == "failed":
        task.mark_failed(status_reason=message or "failed", force=True)
    elif status in ("interrupted", "pruned"):
        task.mark_stopped(force=True, status_message=message or status)
    if status != "completed" and not Task.is_offline():
        keep_outcome(task)
    task.close()  # online this marks a still-running task completed


def keep_outcome(task: Task) -> None:
    """Keep the outcome just recorded: ClearML's shutdown (in ``close()`` or at exit) marks the task
    from how the process ends, completed after a clean close, failed on a non-zero exit, and the
    server allows stopped -> completed and stopped -> failed (clearml-server's
    apiserver/bll/task/utils.py ``state_machine``). Those calls are switched off on this task
    object; nothing else uses them after the outcome."""
    for name in ("mark_completed", "mark_failed", "stopped", "set_progress"):
        setattr(task, name, lambda *args, **kwargs: None)
