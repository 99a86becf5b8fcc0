"""Which process of a job this is, and how global rank zero hands its task and run directory to
the other ranks of a job that spans several nodes.

Ranks come from the launcher's environment, read as Lightning reads it: ``torchrun`` (``RANK``,
``WORLD_SIZE``), SLURM's ``srun`` (``SLURM_PROCID``, ``SLURM_NTASKS``, when Lightning's
``SLURMEnvironment`` detects it), else Lightning's own launcher (``NODE_RANK`` or ``GROUP_RANK``,
``LOCAL_RANK``; the ranks it starts on its node are its children and inherit the task from
ClearML's environment, as before). Only rank zero creates the task, owns (locks) and writes the
run directory; a ``--resume`` on every node resumes all ranks from rank zero's ``last.ckpt``.

The hand-over uses a ``torch.distributed.TCPStore`` served by rank zero on ``MASTER_ADDR``, the
address every rank of the job already has (under SLURM, as Lightning derives it), at port
``MASTER_PORT + 1`` (or ``TORCH_LAB_STORE_PORT``). Not ``MASTER_PORT`` itself: under SLURM and Lightning's launcher it
is bound by Lightning's process group only inside ``Trainer.fit``, after the task must exist, and
a store held there would collide with it. Not a file on the shared filesystem: torchrun's default
job id (``none``) is not unique, and NFS gives no reliable locks or change notices. Ranks wait for
rank zero at most ``TORCH_LAB_RANK_TIMEOUT`` seconds (default 600: nodes of one job may start
minutes apart, and rank zero builds its data before its task).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lightning_fabric.plugins.environments import SLURMEnvironment
from torch.distributed import TCPStore

TIMEOUT_ENV, PORT_ENV = "TORCH_LAB_RANK_TIMEOUT", "TORCH_LAB_STORE_PORT"
DEFAULT_TIMEOUT_S = 600.0
DONE_TIMEOUT_S = 60.0  # rank zero waits this long at most for a rank that is gone
RUN, OUTCOME, DONE = "torch-lab/run", "torch-lab/outcome", "torch-lab/done"


@dataclass(frozen=True)
class Rank:
    """This process's place in the job: ``rank`` is the global rank (the node rank under
    Lightning's launcher, -1 for the children it starts, which inherit their parent's task from
    ClearML's environment); ``peers`` is how many other processes take the task from the store."""

    rank: int
    peers: int
    launcher: str  # "torchrun", "slurm" or "lightning"

    @property
    def zero(self) -> bool:
        return self.rank == 0

    @property
    def inherits(self) -> bool:
        return self.rank < 0


def detect(num_nodes: int) -> Rank:
    """The rank of this process, from its launcher's environment; ``num_nodes`` is the Trainer's."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return Rank(int(env["RANK"]), int(env["WORLD_SIZE"]) - 1, "torchrun")
    if SLURMEnvironment.detect():
        return Rank(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]) - 1, "slurm")
    node = int(env.get("NODE_RANK", env.get("GROUP_RANK", 0)))
    local = int(env.get("LOCAL_RANK", 0))
    return Rank(node if local == 0 else -1, max(num_nodes - 1, 0), "lightning")


def timeout() -> float:
    """How long a rank waits for rank zero (``TORCH_LAB_RANK_TIMEOUT``, seconds)."""
    return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)


class Rendezvous:
    """The job's small key-value store: rank zero serves it, the other ranks read from it."""

    def __init__(self, rank: Rank) -> None:
        self.rank = rank
        if rank.launcher == "slurm":  # as Lightning finds them: SLURM_NODELIST's first node, the job id
            slurm = SLURMEnvironment()
            address, base = slurm.main_address, slurm.main_port
        else:
            address, base = os.environ.get("MASTER_ADDR") or "127.0.0.1", int(os.environ.get("MASTER_PORT") or 29500)
        port = int(os.environ.get(PORT_ENV) or base + 1)
        self.where = f"{address}:{port}"
        self.store = TCPStore(address, port, is_master=rank.zero, wait_for_workers=False,
                              timeout=timedelta(seconds=timeout()))

    def publish(self, key: str, value: dict[str, Any]) -> None:
        self.store.set(key, json.dumps(value))

    def read(self, key: str) -> dict[str, Any]:
        """``key``'s value, waiting for rank zero to set it (``TORCH_LAB_RANK_TIMEOUT``)."""
        try:
            return json.loads(self.store.get(key))
        except RuntimeError as error:  # torch's DistStoreError: a timeout or rank zero gone
            raise RuntimeError(f"rank {self.rank.rank}: no {key.split('/')[1]} from rank zero at "
                               f"{self.where} within {timeout():.0f} s ({TIMEOUT_ENV}): "
                               f"{str(error).splitlines()[0]}") from None

    def failures(self) -> list[str]:
        """What other ranks reported when they failed, as ``rank R: message``."""
        keys = [f"torch-lab/failed/rank {rank}" for rank in range(1, self.rank.peers + 1)]
        return [f"{key.split('/')[-1]}: {json.loads(self.store.get(key))['message']}"
                for key in keys if self.store.check([key])]

    def fail(self, message: str) -> None:
        """Tell rank zero why this rank failed: its record names the rank and the message."""
        self.publish(f"torch-lab/failed/rank {self.rank.rank}", {"message": message})

    def done(self) -> None:
        self.store.add(DONE, 1)

    def wait_done(self) -> None:
        """Rank zero keeps the store up until every other rank has read the outcome."""
        deadline = time.monotonic() + min(timeout(), DONE_TIMEOUT_S)
        while self.store.add(DONE, 0) < self.rank.peers and time.monotonic() < deadline:
            time.sleep(0.1)
