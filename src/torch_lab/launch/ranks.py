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
job id (``none``) is not unique, and NFS gives no reliable locks or change notices. Before any
task, the ranks compare their resolved hparams through the store (``Rendezvous.agree``). Every
wait between ranks is at most ``TORCH_LAB_RANK_TIMEOUT`` seconds (default 600: nodes of one job
may start minutes apart, and rank zero builds its data before its task); at the end rank zero
waits for no rank whose heartbeat stopped (a killed node).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lightning_fabric.plugins.environments import SLURMEnvironment
from torch.distributed import TCPStore

TIMEOUT_ENV, PORT_ENV = "TORCH_LAB_RANK_TIMEOUT", "TORCH_LAB_STORE_PORT"
DEFAULT_TIMEOUT_S = 600.0
DONE_TIMEOUT_S = 60.0  # rank zero waits this long at most for a rank that is gone
RUN, OUTCOME, DONE = "torch-lab/run", "torch-lab/outcome", "torch-lab/done/rank {}"
ALIVE = "torch-lab/alive/rank {}"
BEAT_S, GONE_S = 1.0, 5.0  # a rank's heartbeat; silent this long, it is gone
NOTICE_S = 5.0  # a wait longer than this is said on the console
HPARAMS = "torch-lab/hparams/rank {}"


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


def flat(hparams: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``hparams`` as dotted keys and their values' reprs (what ranks compare)."""
    items: dict[str, str] = {}
    for key, value in hparams.items():
        if isinstance(value, dict) and value:
            items.update(flat(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = repr(value)
    return items


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
        try:
            self.store = TCPStore(address, port, is_master=rank.zero, wait_for_workers=False,
                                  timeout=timedelta(seconds=timeout()))
        except RuntimeError as error:  # torch's DistNetworkError: the port is taken, or no server
            from torch_lab.errors import UserError

            cause = str(error).splitlines()[0]
            if rank.zero:
                raise UserError(f"rank 0: cannot serve torch-lab's store at {self.where} ({cause}); set "
                                f"{PORT_ENV} to a free port, the same on every node") from None
            raise RuntimeError(f"rank {rank.rank}: rank zero's store at {self.where} did not answer within "
                               f"{timeout():.0f} s ({TIMEOUT_ENV}; did node 0 start, with the same "
                               f"{PORT_ENV}?): {cause}") from None
        self._stopped = threading.Event()
        self._beat_thread: threading.Thread | None = None
        if not rank.zero:
            self._beat_thread = threading.Thread(target=self._beat, name="torch-lab heartbeat", daemon=True)
            self._beat_thread.start()
            atexit.register(self._stop_beat)

    def publish(self, key: str, value: dict[str, Any]) -> None:
        self.store.set(key, json.dumps(value))

    def read(self, key: str, what: str | None = None) -> dict[str, Any]:
        """``key``'s value (``what``: as messages name it), waiting for rank zero (or the rank
        that sets it) at most ``TORCH_LAB_RANK_TIMEOUT``."""
        what = what or f"{key.split('/')[1]} from rank zero"
        try:
            try:
                self.store.wait([key], timedelta(seconds=min(NOTICE_S, timeout())))
            except RuntimeError:  # not there yet: say what this rank waits for, then wait on
                print(f"torch-lab: rank {self.rank.rank} waiting for {what} (at most {timeout():.0f} s, "
                      f"{TIMEOUT_ENV})", file=sys.stderr, flush=True)
                self.store.wait([key], timedelta(seconds=max(timeout() - NOTICE_S, 0.1)))
            return json.loads(self.store.get(key))
        except RuntimeError as error:  # torch's DistStoreError: a timeout or rank zero gone
            raise RuntimeError(f"rank {self.rank.rank}: no {what} at {self.where} within {timeout():.0f} s "
                               f"({TIMEOUT_ENV}; did every node start, with the same {PORT_ENV}?): "
                               f"{str(error).splitlines()[0]}") from None

    def agree(self, hparams: dict[str, Any]) -> None:
        """Every rank publishes its resolved hparams; rank zero compares each other rank's with its
        own, the others theirs with rank zero's: a ``UserError`` naming the keys that differ (nodes
        started with different files or ``--set`` would otherwise train silently, rank zero's
        values recorded)."""
        from torch_lab.errors import UserError

        mine = flat(hparams)
        self.publish(HPARAMS.format(self.rank.rank), mine)
        others = range(1, self.rank.peers + 1) if self.rank.zero else [0]
        for other in others:
            theirs = self.read(HPARAMS.format(other), f"hparams from rank {other}")
            keys = sorted(key for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))
            if keys:
                if not self.rank.zero:
                    self.done()  # rank zero may close the store
                shown = ", ".join(f"{key} ({mine.get(key, 'unset')} here, {theirs.get(key, 'unset')} on "
                                  f"rank {other})" for key in keys[:5])
                raise UserError(f"rank {self.rank.rank}: the hparams differ from rank {other}'s in "
                                f"{shown}{' ...' if len(keys) > 5 else ''}; start every node with the "
                                "same files and --set")

    def failures(self) -> list[str]:
        """What other ranks reported when they failed, as ``rank R: message``."""
        keys = [f"torch-lab/failed/rank {rank}" for rank in range(1, self.rank.peers + 1)]
        return [f"{key.split('/')[-1]}: {json.loads(self.store.get(key))['message']}"
                for key in keys if self.store.check([key])]

    def fail(self, message: str) -> None:
        """Tell rank zero why this rank failed: its record names the rank and the message."""
        self.publish(f"torch-lab/failed/rank {self.rank.rank}", {"message": message})

    def done(self) -> None:
        """This rank needs the store no more (its heartbeat stops: rank zero may close it)."""
        self._stop_beat()
        self.publish(DONE.format(self.rank.rank), {})

    def _stop_beat(self) -> None:
        """End the heartbeat thread before the interpreter does (a thread left inside torch's
        store at exit aborts the process)."""
        self._stopped.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=BEAT_S + 5)

    def wait_done(self) -> None:
        """Rank zero keeps the store up until every other rank has read the outcome, or is gone
        (its heartbeat stopped ``GONE_S`` ago: a node killed), at most ``DONE_TIMEOUT_S``."""
        deadline = time.monotonic() + min(timeout(), DONE_TIMEOUT_S)
        beats: dict[int, tuple[int, float]] = {}
        waiting = set(range(1, self.rank.peers + 1))
        while waiting and time.monotonic() < deadline:
            now = time.monotonic()
            for peer in list(waiting):
                beat = self.store.add(ALIVE.format(peer), 0)
                if beat != beats.get(peer, (None, now))[0]:
                    beats[peer] = (beat, now)
                if self.store.check([DONE.format(peer)]) or now - beats[peer][1] > GONE_S:
                    waiting.discard(peer)
            time.sleep(0.1)

    def _beat(self) -> None:
        """A rank's heartbeat for rank zero (see ``wait_done``), on a connection of its own."""
        try:
            host, port = self.where.rsplit(":", 1)
            store = TCPStore(host, int(port), is_master=False, timeout=timedelta(seconds=timeout()))
            while not self._stopped.is_set():
                store.add(ALIVE.format(self.rank.rank), 1)
                self._stopped.wait(BEAT_S)
        except RuntimeError:  # rank zero's store closed: the job is over
            return
