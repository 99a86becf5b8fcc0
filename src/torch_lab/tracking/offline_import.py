"""``runs sync``: import offline runs' sessions into the configured ClearML server, with
ClearML's own ``Task.import_offline_session``, and record the server's task id in run.json
(``synced``), so that a second sync skips them."""

from __future__ import annotations

from pathlib import Path

from torch_lab.errors import UserError, failure_message
from torch_lab.storage.run_dir import RunDirectory, now
from torch_lab.tracking import task as tracking


def check_destination() -> None:
    """A UserError, before anything changes, unless a ClearML server is configured and answers."""
    if tracking.offline_by_environment():
        raise UserError("CLEARML_OFFLINE_MODE is set: no ClearML server to sync to; unset it")
    if not tracking.is_configured():
        raise UserError("no ClearML server configured (clearml.conf or CLEARML_API_*): nothing to "
                        "sync to; run clearml-init, or set CLEARML_API_HOST and the keys")
    tracking.check_settings(False)
    tracking.configure(False)
    tracking.check_server()


def sync_runs(paths: list[Path]) -> int:
    """Import the offline session of each run directory in ``paths`` that has one and is not
    synced yet; print a line per run. 0, or 1 when an import failed."""
    from clearml import Task

    check_destination()
    failed = False
    for path in paths:
        run = RunDirectory.open(path)
        record, task_id = run.record, run.record["task_id"]
        session = Path(record.get("offline_session") or "")
        if record.get("synced"):
            print(f"runs: {task_id}: already synced as task {record['synced']['task_id']}")
        elif not record.get("offline"):
            print(f"runs: {task_id}: tracked online, nothing to sync")
        elif record.get("status") == "running" or not session.is_file():
            print(f"runs: {task_id}: no offline session zip yet ({record.get('status')}); skipped")
        else:
            run.lock()  # no train --resume of it meanwhile
            try:
                server_id = Task.import_offline_session(str(session))
            except Exception as error:  # one run's failure does not stop the others
                print(f"runs: {task_id}: import failed: {failure_message(error)}")
                failed = True
                continue
            restore_outcome(Task.get_task(task_id=server_id), record.get("status"), record.get("error"))
            run.update(synced={"task_id": server_id, "at": now()})
            print(f"runs: {task_id}: synced as task {server_id}")
    return 1 if failed else 0


def restore_outcome(task: "Task", status: str | None, message: str | None) -> None:
    """Give an imported task its run's outcome: ``Task.import_offline_session`` always marks it
    completed, a failed, interrupted or pruned run included (forced: the server allows no
    completed -> failed or -> stopped)."""
    if status == "failed":
        task.mark_failed(status_reason=message or "failed", force=True)
    elif status in ("interrupted", "pruned"):
        task.stopped(force=True, status_message=message or status)
