"""What a run ran on, recorded in run.json's ``environment`` at its start (``runs diff`` shows
how two runs' differ): Python, the machine, the versions of the packages that decide a result,
and the experiment folder's git commit (and whether it had uncommitted changes). Cheap: package
metadata and one ``git`` call of at most a few seconds; what cannot be found is left out."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: The distributions whose versions are recorded (those installed).
PACKAGES = ("torch-lab", "torch", "lightning", "pytorch-lightning", "torchvision", "numpy", "clearml", "optuna")
GIT_SECONDS = 5


def environment(folder: Path) -> dict[str, Any]:
    """Python, the machine, the package versions and the git commit of ``folder``."""
    found: dict[str, Any] = {
        "python": platform.python_version(), "executable": sys.executable,
        "machine": {"hostname": platform.node(), "platform": platform.platform(), "arch": platform.machine()},
        "packages": versions()}
    torch = sys.modules.get("torch")  # imported already by the run; never imported here
    if torch is not None and getattr(torch.version, "cuda", None):
        found["cuda"] = str(torch.version.cuda)
    commit = git_commit(folder)
    if commit:
        found["git"] = commit
    return found


def versions() -> dict[str, str]:
    """The installed versions of ``PACKAGES``."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit(folder: Path) -> dict[str, Any] | None:
    """``{"commit": ..., "dirty": bool}`` of the git work tree holding ``folder``; None when it is
    in none, or git is missing or too slow."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                                  timeout=GIT_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    changes = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {"commit": commit.strip(), "dirty": bool(changes and changes.strip())}
