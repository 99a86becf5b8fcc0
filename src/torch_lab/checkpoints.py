"""Find a checkpoint by task id or path, and load its weights safely.

A task's checkpoint is looked for, in order: in its run directory under the artifacts root, in its
ClearML offline session (zip or folder), then on the ClearML server (its output models or
artifacts, downloaded to ClearML's cache). The server step is tested against the stand-in server
in tests/clearml_server.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

from torch_lab.errors import UserError, display_path
from torch_lab.storage.run_dir import find_run_dir, resolve_task_id


def _offline_sessions_dir() -> Path:
    from clearml.config import get_cache_dir

    return Path(get_cache_dir()) / "offline"


def _from_run_dir(task_id: str, name: str) -> Path | None:
    run = find_run_dir(task_id)
    path = run / "checkpoints" / f"{name}.ckpt" if run else None
    return path if path and path.is_file() else None


def _from_offline_session(task_id: str, name: str) -> Path | None:
    sessions = _offline_sessions_dir()
    suffix = f"/artifacts/checkpoint-{name}/{name}.ckpt"
    folder = sessions / task_id
    if folder.is_dir():
        found = next((p for p in folder.rglob(f"{name}.ckpt") if str(p).endswith(suffix)), None)
        if found:
            return found
    archive = sessions / f"{task_id}.zip"
    if not archive.is_file():
        return None
    with zipfile.ZipFile(archive) as zipped:
        member = next((m for m in zipped.namelist() if m.endswith(suffix)), None)
        if member is None:
            return None
        target = sessions.parent / "torch_lab" / task_id / f"{name}.ckpt"
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipped.open(member) as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)
    return target


def _from_server(task_id: str, name: str) -> Path | None:
    from clearml import Task

    from torch_lab.tracking import task as tracking

    if Task.is_offline() or tracking.offline_by_environment() or not tracking.is_configured():
        return None
    tracking.check_server()
    try:
        task = Task.get_task(task_id=task_id)
    except ValueError:
        return None
    # Output models are keyed by their name on the task ("best"); the model itself is named
    # "<task>-best" (see torch_lab.tracking.task.record_model).
    stored = task.models["output"].get(name) or task.artifacts.get(f"checkpoint-{name}")
    if stored is None:
        return None
    local = stored.get_local_copy()  # None when the download failed
    if not local:
        raise UserError(f"checkpoint task '{task_id}': checkpoint '{name}' could not be downloaded "
                        f"from {stored.url}; check the ClearML fileserver or storage credentials")
    return Path(local)


def task_checkpoint(task_id: str, name: str) -> Path | None:
    """The local path of checkpoint ``name`` of task ``task_id``, fetching it if needed."""
    for source in (_from_run_dir, _from_offline_session, _from_server):
        path = source(task_id, name)
        if path is not None:
            return path
    return None


def resolve_checkpoint(reference: str | Path, name: str | None = None) -> Path:
    """Turn a ``.ckpt`` path or a task id into a local checkpoint file.

    For a task id, ``name`` picks the checkpoint (``"last"``, ``"best"``, ...); None means the best
    one when the task has it, else the last. Raises UserError naming what was not found.
    """
    text = given_id(str(reference), "checkpoint")
    if text.endswith(".ckpt") or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise UserError(f"checkpoint {display_path(path)}: no such file")
        return path
    text = resolve_task_id(text)  # the start of a task id under the artifacts root, as ``runs`` takes
    for candidate in [name] if name else ["best", "last"]:
        path = task_checkpoint(text, candidate)
        if path is not None:
            return path
    wanted = f"'{name}'" if name else "'best' or 'last'"
    raise UserError(
        f"checkpoint task '{text}': no checkpoint {wanted} found (looked in its run directory "
        "under the artifacts root, its ClearML offline session and, when online, the ClearML server)"
    )


def given_id(text: str, what: str) -> str:
    """``text``, refused when empty or blank: an unset shell variable (``$ID``) would otherwise
    name every task (the offline cache's first checkpoint, the latest run)."""
    if not text.strip():
        raise UserError(f"{what} {text!r}: an empty task id (an unset variable?); give a task id, "
                        "the start of one, or a .ckpt path")
    return text


def load_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load`` a checkpoint onto the CPU with safe (weights-only) unpickling."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        if _cut_short(path, error):
            raise UserError(f"checkpoint {display_path(path)}: truncated (its end is missing: a copy or a "
                            "save was cut short); copy it again or use another checkpoint") from None
        raise UserError(f"checkpoint {display_path(path)}: cannot be loaded ({_load_error(error)})") from None


def _cut_short(path: Path, error: Exception) -> bool:
    """Whether ``torch.load`` failed because the file ends early: a zip archive (torch's format)
    without its central directory, or a legacy pickle that runs out of data."""
    if isinstance(error, EOFError) or "truncated" in str(error):
        return True
    try:
        with open(path, "rb") as handle:
            starts_as_zip = handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False
    return starts_as_zip and not zipfile.is_zipfile(path)


def _load_error(error: Exception) -> str:
    """The gist of a ``torch.load`` error: its first sentence, or the unpickler's own reason
    (torch wraps that in a page of advice about ``weights_only``)."""
    text = str(error).split("WeightsUnpickler error:", 1)[-1]
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first.split('. ')[0]}".rstrip(": ")


def check_fits(module: Any, state_dict: dict[str, Any], label: str) -> None:
    """Raise a UserError naming ``label`` when ``state_dict`` does not match ``module``'s weights."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    reshaped = [
        f"{key} is {tuple(state_dict[key].shape)}, the model's {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(state_dict))
        if hasattr(state_dict[key], "shape") and state_dict[key].shape != expected[key].shape
    ]
    problems = [f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
                "; ".join(reshaped[:3])]
    problems = [p for p in problems if p]
    if problems:
        raise UserError(f"{label}: does not fit the model ({'; '.join(problems)})")


def fitting_state_dict(module: Any, path: Path, label: str | None = None) -> dict[str, Any]:
    """The model weights of checkpoint ``path``, after checking they fit ``module``."""
    state = load_checkpoint(path)
    state_dict = state.get("state_dict", state) if isinstance(state, dict) else state
    check_fits(module, state_dict, label or f"checkpoint {display_path(path)}")
    return state_dict


def load_weights(module: Any, path: Path, label: str | None = None) -> None:
    """Load the model weights of checkpoint ``path`` into ``module`` (a LabModule or a model)."""
    module.load_state_dict(fitting_state_dict(module, path, label))
