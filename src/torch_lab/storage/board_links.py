"""Readable TensorBoard run names. TensorBoard names a run by its folder's path under ``--logdir``;
a TensorBoardLogger writing into its run directory would be ``<task name>-offline-<32 hex>/...``.
So ``<artifacts root>/tensorboard/`` holds one relative symbolic link per such folder, named
``<experiment>/<variant>/<run>`` (see ``board_name``); the event files stay in the run directory."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from torch_lab.storage.run_dir import safe_name

log = logging.getLogger(__name__)

#: The folder of the artifacts root holding the links: ``tensorboard --logdir`` points there.
BOARD = "tensorboard"


def board_name(record: dict[str, Any], seed: Any) -> list[str]:
    """The parts of a run's TensorBoard name: its experiment folder, its variant (the task name
    without the ``<experiment>-`` of the default ``<experiment>-<hparams stem>``), then a sweep's
    ``<sweep>/trial-007`` (``-seed-1`` in a sweep over seeds), a ``--seeds`` group's
    ``seeds-<stamp>/seed-1`` (both without the task name they start with), or ``<start time>-<short id>``: runs sort by experiment, variant,
    group and trial or start time."""
    task_name, bare_id = str(record.get("task_name") or "run"), str(record["task_id"]).removeprefix("offline-")
    experiment = Path(str(record.get("hparams_path") or task_name)).parent.name or task_name
    variant = task_name.replace(f"{experiment}-", "", 1) or task_name
    sweep, group = record.get("sweep"), record.get("group")
    if isinstance(sweep, dict) and isinstance(sweep.get("trial"), int):
        extra = f"-seed-{sweep['seed']}" if "seed" in sweep else ""
        leaf = [str(sweep.get("name")).removeprefix(f"{task_name}-"), f"trial-{int(sweep['trial']):03d}{extra}"]
    elif group:
        leaf = [str(group).removeprefix(f"{task_name}-"), f"seed-{seed}"]
    else:
        leaf = [f"{_stamp(record.get('started'))}{bare_id[:8]}"]
    return [safe_name(part) for part in (experiment, variant, *leaf)]


def link_board(root: Path, run_path: Path, record: dict[str, Any], seed: Any, folders: list[Path]) -> list[Path]:
    """Link each of ``folders`` (TensorBoard folders inside ``run_path``) under ``root``'s BOARD
    folder by its ``board_name`` (then its path in the run directory, when several), keeping a
    link already there (a resumed run's); a name another run holds gets the short task id. A
    folder that cannot be linked is a warning: the run goes on, its events are in ``run_path``."""
    parts = board_name(record, seed)
    bare_id = str(record["task_id"]).removeprefix("offline-")[:8]
    links = []
    for folder in folders:
        inside = [safe_name("_".join(folder.relative_to(run_path).parts) or BOARD)] if len(folders) > 1 else []
        link = root.joinpath(BOARD, *parts, *inside)
        try:
            if os.path.lexists(link) and not _points_to(link, folder):
                link = link.with_name(f"{link.name}-{bare_id}")
            if not os.path.lexists(link):
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(os.path.relpath(folder, link.parent), link, target_is_directory=True)
            links.append(link)
        except OSError as error:
            log.warning("TensorBoard's run name %s: cannot link %s there (%s); its events are in %s",
                        link, folder, error.strerror, folder)
    return links


def unlink_board(root: Path, run_path: Path) -> None:
    """Remove the links under ``root``'s BOARD folder into ``run_path`` (a removed run), and the
    folders left empty."""
    board = root / BOARD
    try:
        for folder, folders, names in sorted(os.walk(board), reverse=True):  # deepest first
            for name in [*folders, *names]:  # a link to a folder is among the folders, a broken one not
                link = Path(folder) / name
                if link.is_symlink() and _inside(os.path.join(folder, os.readlink(link)), run_path):
                    link.unlink(missing_ok=True)
            if Path(folder) != board and not os.listdir(folder):
                os.rmdir(folder)
    except OSError as error:  # the run is gone; a link left behind names nothing TensorBoard shows
        log.warning("%s: cannot remove the TensorBoard links into %s (%s)", board, run_path, error.strerror)


def _stamp(started: Any) -> str:
    """``20261207-172522-`` of run.json's ``started``; empty when it is not a time."""
    try:
        return datetime.fromisoformat(str(started)).strftime("%Y%m%d-%H%M%S-")
    except ValueError:
        return ""


def _points_to(link: Path, folder: Path) -> bool:
    return link.is_symlink() and os.path.realpath(link) == os.path.realpath(folder)


def _inside(path: str, folder: Path) -> bool:
    path, folder_text = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(folder))
    return path == folder_text or path.startswith(folder_text + os.sep)
