"""The real SLURM cluster of the slow stage (``slurm.sh up``), as a session-scoped fixture.

Where it cannot start (not root, no packages, a daemon that does not come up) the tests that use
it skip with the reason, unless ``TORCH_LAB_REQUIRE_SLURM`` is set (CI sets it): then they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_ENV = "TORCH_LAB_REQUIRE_SLURM"
SCRIPT = Path(__file__).with_name("slurm.sh")
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")


def unavailable(reason: str) -> None:
    """Skip, or fail when SLURM is required here (``TORCH_LAB_REQUIRE_SLURM``)."""
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"SLURM is required here ({REQUIRE_ENV} is set) but cannot start: {reason}", pytrace=False)
    pytest.skip(f"no SLURM cluster: {reason}")


@dataclass(frozen=True)
class Cluster:
    """A running cluster: ``env`` is what its clients (``sbatch``, ``srun``, ``scontrol``) need."""

    folder: Path
    env: dict[str, str]
    up_s: float  # how long ``slurm.sh up`` took

    def run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **self.env}, check=True, **kwargs)

    def sbatch(self, script: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        """Submit ``script`` from ``cwd`` with the caller's environment (the venv's scripts first on
        PATH); returns the job id."""
        bin_dir = str(Path(sys.executable).parent)
        job_env = {**os.environ, **(env or {}), **self.env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        result = subprocess.run(["sbatch", "--parsable", *args, str(script)], cwd=cwd, env=job_env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields (JobState, Restarts, ExitCode, ...)."""
        text = self.run("scontrol", "show", "job", "-o", job_id).stdout
        return dict(re.findall(r"(\w+)=(\S*)", text))

    def wait(self, job_id: str, timeout: float = 300) -> dict[str, str]:
        """The job's fields once it ended; cancelled (and the test failed) after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while (fields := self.job(job_id))["JobState"] not in ENDED:
            if time.monotonic() > deadline:
                self.run("scancel", job_id)
                pytest.fail(f"job {job_id} still {fields['JobState']} after {timeout:.0f} s")
            time.sleep(0.5)
        return fields


@pytest.fixture(scope="session")
def slurm() -> Iterator[Cluster]:
    """Two nodes (n1, n2) on this machine, started once for the session and stopped after it."""
    folder = Path(tempfile.mkdtemp(prefix="tl-slurm."))  # short: munge's socket path has a limit
    start = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), "up", str(folder)], capture_output=True, text=True, timeout=900)
    up_s = time.monotonic() - start
    try:
        if result.returncode != 0:
            unavailable((result.stderr.strip().splitlines() or [f"slurm.sh up exited {result.returncode}"])[-1])
        yield Cluster(folder, {"SLURM_CONF": str(folder / "slurm.conf")}, up_s)
    finally:
        subprocess.run(["bash", str(SCRIPT), "down", str(folder)], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
