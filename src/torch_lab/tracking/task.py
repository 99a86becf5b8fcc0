"""ClearML tracking: choosing online or offline mode, starting and closing the task, recording
hparams, sources, checkpoints and the outcome.

Designed around what ClearML 2.1 does on a machine without a server:
- torch and Lightning are imported before ``Task.init`` (ClearML's repository-analysis thread
  importing ``torch.utils`` at the same time fails intermittently);
- the reporter runs in-process with a high flush threshold (no 6-12 s close, no stalls on the
  training thread every 100 scalars); HTTP retries are lowered and the server is pinged first, so an
  unreachable server is reported in seconds instead of retried for minutes;
- ``Task.init`` reseeds torch, NumPy and ``random`` (with 1337) unless told not to; torch-lab
  seeds the run itself, so that is switched off;
- offline, models cannot be registered (``OutputModel`` fails), so checkpoints are stored as
  artifacts, which travel inside the session zip; offline sessions keep no status, so the outcome is
  also recorded as a tag and in the task's comment.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytorch_lightning  # noqa: F401  (import before clearml: see the module docstring)
import torch  # noqa: F401
from clearml import Task
from clearml import config as clearml_config
from clearml.backend_api import config as clearml_api_config
from clearml.backend_config import Config
from clearml.backend_config.defs import get_active_config_file
from clearml.config import ConfigSDKWrapper, ConfigWrapper, get_cache_dir
from clearml.config.cache import SessionCache

from torch_lab import console
from torch_lab.errors import UserError
from torch_lab.tracking.server import check_queue, check_server  # noqa: F401  (callers use task.*)

log = logging.getLogger(__name__)

CONFIG_ENV_VARS = ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY")
CLEARML_OVERRIDES = {
    "sdk": {
        "development": {
            "report_use_subprocess": False,
            "worker": {"report_event_flush_threshold": 10000},
        }
    },
    "api": {"http": {"retries": {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.5}}},
}
OUTCOME_TAGS = ("completed", "failed", "interrupted", "pruned")


def is_configured() -> bool:
    """Whether ClearML has credentials or a server (env variables or a clearml.conf), no network."""
    return any(os.environ.get(name) for name in CONFIG_ENV_VARS) or bool(get_active_config_file())


def offline_by_environment() -> bool:
    """``CLEARML_OFFLINE_MODE`` (or the older ``TRAINS_OFFLINE_MODE``) set true: ClearML's own
    switch, honoured like ``--offline`` (``Task.set_offline`` would override it)."""
    from clearml.backend_api.session.defs import ENV_OFFLINE_MODE

    return bool(ENV_OFFLINE_MODE.get(default=False))


def select_offline(requested: bool) -> bool:
    """Offline when asked (``--offline`` or ``CLEARML_OFFLINE_MODE``), or (saying so) when no
    ClearML configuration exists; settings that cannot work are refused first (see
    ``check_settings``)."""
    requested = requested or offline_by_environment()
    check_settings(requested)
    if requested:
        return True
    if not is_configured():
        print("torch-lab: no ClearML configuration found (clearml.conf or CLEARML_API_*); "
              "running offline", flush=True)
        return True
    return False


def check_settings(offline: bool) -> None:
    """Refuse ClearML settings that would fail later with an internal error: a cache directory
    that is a file, a configuration file that was named but is missing."""
    cache = os.environ.get("CLEARML_CACHE_DIR")
    if cache and Path(cache).exists() and not Path(cache).is_dir():
        raise UserError(f"CLEARML_CACHE_DIR {cache}: not a directory (ClearML keeps its cache and "
                        "offline sessions there)")
    named = os.environ.get("CLEARML_CONFIG_FILE")
    if named and not offline and not Path(named).expanduser().is_file():
        raise UserError(f"CLEARML_CONFIG_FILE {named}: no such file; fix the path, unset it, or "
                        "run with --offline")


def configure(offline: bool) -> None:
    """Apply torch-lab's ClearML settings for this process (before ``Task.init``).

    The configuration is built once with the overrides in place: ``config_obj.set_overrides`` would
    parse ClearML's configuration files twice (~0.3 s each here). A file that does not parse is a
    ``UserError`` naming it.
    """
    config = Config()
    try:
        config.set_overrides(CLEARML_OVERRIDES)  # merged on top whenever the files are read
        config.load_relative_to(Path(clearml_api_config.__file__).parent,
                                Path(clearml_config.__file__).parent)
    except Exception as error:  # ClearML's ConfigurationError names the file and the position
        raise UserError(f"ClearML configuration: {error}") from None
    config.initialize_logging()
    ConfigWrapper.set_config_impl(config)
    ConfigSDKWrapper.clear_config_impl()
    # Task.init keeps its last task ids in ~/.clearml/.session.json, whatever CLEARML_CACHE_DIR
    # says (no setting moves it): keep it in the cache the user chose, so a read-only or shared
    # home directory is never written.
    SessionCache.SESSION_CACHE_FOLDER = str(get_cache_dir())
    Task.set_offline(offline)
    Task.set_random_seed(None)  # Task.init would reseed torch with 1337 over the run's own seed
    console.route_clearml_logging()  # ClearML's log lines into console.log


def start_task(
    task_kwargs: dict[str, Any], task_name: str, task_type: str, tags: list[str], offline: bool,
    continue_task: str | None = None, own_loggers: bool = False,
) -> Task:
    """``Task.init`` with the hparams ``task`` block; torch-lab picks name, tags and defaults.

    A new task unless ``continue_task`` names one to continue (its metrics go on at the iterations
    reported, with no offset). The TensorBoard and PyTorch hooks are off because torch-lab's logger
    and checkpoint recording replace them; with ``own_loggers`` (the experiment's ``loggers``) the
    TensorBoard hook stays off whatever the ``task`` block says.
    """
    kwargs = dict(task_kwargs)
    if continue_task and not offline:
        try:  # Task.init would silently create a new task in place of a missing one
            Task.get_task(task_id=continue_task)
        except ValueError:
            from clearml.backend_api import Session

            raise UserError(f"--resume {continue_task}: the ClearML server "
                            f"{Session.get_api_server_host()} no longer has that task; train anew "
                            "(the run directory keeps its checkpoints)") from None
    if continue_task:
        kwargs["continue_last_task"] = continue_task
    kwargs["task_name"] = task_name  # task.task_name (Experiment.name) with its dev_, test_, ... prefix
    kwargs["tags"] = list(kwargs.get("tags") or []) + tags
    kwargs.setdefault("task_type", task_type)
    kwargs.setdefault("reuse_last_task_id", False)
    kwargs.setdefault("auto_connect_arg_parser", False)
    kwargs.setdefault("auto_connect_frameworks", {"tensorboard": False, "pytorch": False})
    if own_loggers and kwargs["auto_connect_frameworks"] is not False:
        # The experiment's loggers get every metric next to torch-lab's ClearML logger: ClearML's
        # TensorBoard binding would store each TensorBoard scalar on the task a second time.
        frameworks = kwargs["auto_connect_frameworks"]
        kwargs["auto_connect_frameworks"] = {**(frameworks if isinstance(frameworks, dict) else {}),
                                             "tensorboard": False}
    if not offline:
        kwargs.setdefault("output_uri", True)  # upload checkpoints to the files server
    try:
        task = Task.init(**kwargs)  # online, check_server has logged in (refused keys: one line)
    except TypeError as error:
        raise UserError(f"task: invalid Task.init argument ({error})") from None
    if continue_task:
        task.set_initial_iteration(0)  # Lightning reports the restored global step itself
    return task


def attach_task(task_id: str) -> Task:
    """Rank zero's task ``task_id`` for another rank of the job, created by no one: ClearML is told
    this process is a subprocess of the task's (fake pid 1, as ClearML does itself on an agent's
    other nodes), so ``Task.init`` returns that task and starts no second offline session.

    torchrun's ``TORCHELASTIC_RUN_ID`` is hidden meanwhile: with it, ClearML makes a local rank
    above 0 wait 30 s for a task-id file that only the local rank 0 of rank zero's node writes,
    and then creates a task of its own."""
    os.environ["CLEARML_PROC_MASTER_ID"] = f"1:{task_id}"
    elastic = os.environ.pop("TORCHELASTIC_RUN_ID", None)
    try:
        task = Task.init(auto_connect_arg_parser=False, auto_connect_frameworks=False)
    finally:
        if elastic is not None:
            os.environ["TORCHELASTIC_RUN_ID"] = elastic
    if task.id != task_id:
        raise RuntimeError(f"ClearML attached task {task.id}, not rank zero's task {task_id}")
    return task


def record_file(task: Task, path: Path, configuration: bool = False) -> None:
    """Attach a run file to the task: as an artifact, and as a configuration object if asked."""
    task.upload_artifact(path.name, artifact_object=path, wait_on_upload=True)
    if configuration:
        task.connect_configuration(path, name=path.name)


def report_best(task: Task, best: dict[str, Any]) -> None:
    """Report the run's best value and epoch as ClearML single values."""
    reporter = task.get_logger()
    if best.get("value") is not None:
        reporter.report_single_value(f"best {best['monitor']}", best["value"])
    if best.get("epoch") is not None:
        reporter.report_single_value("best epoch", best["epoch"])


def record_parent(task: Task, details: dict[str, Any]) -> None:
    """Make ``details["task_id"]`` the task's parent and store ``details`` as configuration."""
    task.set_parent(details["task_id"])
    task.connect_configuration(details, name="started_from")


def connect_hparams(task: Task, hparams: dict[str, Any]) -> dict[str, Any]:
    """Connect ``hparams`` to the task and return the values ClearML hands back, as plain data.

    Run locally these equal ``hparams``; run by a ClearML agent they carry the edits made in the UI.
    """
    connected = task.connect(json.loads(json.dumps(hparams)), name="hparams")
    return json.loads(json.dumps(connected))


def store_sources(task: Task, paths: list[Path]) -> None:
    """Store the text of each file as a configuration object named after the file."""
    for path in paths:
        task.connect_configuration(path, name=path.name)


def record_checkpoints(task: Task, checkpoints: dict[str, Path], offline: bool) -> None:
    """Attach checkpoints to the task (see ``record_model``), as ``checkpoint-<name>`` offline."""
    for name, path in checkpoints.items():
        record_model(task, name, path, offline, artifact=f"checkpoint-{name}")


def record_model(task: Task, name: str, path: Path, offline: bool, artifact: str | None = None) -> None:
    """Attach a model file to the task: offline as an artifact (in the session zip), online as an
    output model uploaded to the task's ``output_uri``."""
    if offline:
        task.upload_artifact(artifact or name, artifact_object=path, wait_on_upload=True)
    else:
        task.update_output_model(model_path=str(path), name=name, model_name=f"{task.name}-{name}",
                                 auto_delete_file=False)


def offline_session_zip(task: Task) -> Path | None:
    """Where the offline session's zip is (or will be, after close); None online."""
    folder = task.get_offline_mode_folder() if Task.is_offline() else None
    return Path(folder).with_suffix(".zip") if folder else None
