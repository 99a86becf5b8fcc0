"""The ClearML server rules the stand-in enforces, each copied from the server's code
(github.com/allegroai/clearml-server, commit 2976ce69, Jan 2025) and cited where it comes from."""

from __future__ import annotations

# apiserver/bll/task/utils.py ``state_machine``: the status changes allowed without ``force``.
# (``force=True`` skips the check: ``ChangeStatusRequest.validate_transition``.)
STATE_MACHINE: dict[str, set[str]] = {
    "created": {"queued", "in_progress"},
    "queued": {"created", "in_progress", "stopped"},
    "in_progress": {"stopped", "failed", "created", "completed"},
    "stopped": {"closed", "created", "failed", "queued", "in_progress", "published", "publishing",
                "completed"},
    "closed": {"created", "failed", "published", "publishing", "stopped"},
    "failed": {"created", "stopped", "published", "queued"},
    "publishing": {"published"},
    "published": set(),
    "completed": {"published", "in_progress", "created"},
}

# apiserver/apierrors/errors.conf: (HTTP code, subcode, message) of the errors the SDK meets.
INVALID_TASK_STATUS = (400, 110, "invalid task status")
INVALID_TASK_ID = (400, 101, "invalid task id")  # task_bll.py: an unknown id in get_by_id
INVALID_MODEL_ID = (400, 201, "invalid model id")
INVALID_QUEUE_ID = (400, 701, "invalid queue id")  # queue_bll.py: an unknown queue
MISSING_FIELDS = (400, 11, "missing required fields")
INVALID_CREDENTIALS = (401, 22, "unauthorized (invalid credentials)")
NOT_SUPPORTED = (400, 1, "endpoint is not supported")  # here: an endpoint the stand-in lacks


class ApiError(Exception):
    """An error reply: HTTP code, ClearML result subcode and message."""

    def __init__(self, error: tuple[int, int, str], detail: str = "") -> None:
        super().__init__(f"{error[2]}{': ' + detail if detail else ''}")
        self.code, self.subcode = error[0], error[1]


def check_transition(current: str, new: str, force: bool) -> None:
    """``ChangeStatusRequest.validate_transition``: same status is allowed, ``force`` skips."""
    if force or new == current:
        return
    if new not in STATE_MACHINE[current]:
        raise ApiError(INVALID_TASK_STATUS, f"Invalid status change current_status={current} "
                                            f"new_status={new}")


def check_editable(status: str, force: bool) -> None:
    """``get_task_for_update`` (apiserver/bll/task/utils.py): tasks.edit, edit_hyper_params,
    edit_configuration and the artifact calls need a ``created`` task, or ``in_progress`` with
    ``force``."""
    allowed = ("created", "in_progress") if force else ("created",)
    if status not in allowed:
        raise ApiError(INVALID_TASK_STATUS, f"expected=created status={status}")
