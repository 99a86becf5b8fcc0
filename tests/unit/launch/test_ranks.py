"""Ranks from each launcher's environment, and the store rank zero serves to the others."""

import socket
import threading

import pytest

from torch_lab.launch import ranks

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_NTASKS",
               "SLURM_PROCID", "SLURM_JOB_NAME", "SLURM_NTASKS_PER_NODE", "MASTER_PORT")


@pytest.fixture(autouse=True)
def no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("env, num_nodes, expected", [
    ({}, 1, ranks.Rank(0, 0, "lightning")),  # one process, or Lightning's launcher on one node
    ({"LOCAL_RANK": "1", "NODE_RANK": "0"}, 1, ranks.Rank(-1, 0, "lightning")),  # its child
    ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, 2, ranks.Rank(1, 1, "lightning")),  # its second node
    ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "GROUP_RANK": "1"}, 2, ranks.Rank(3, 3, "torchrun")),
    ({"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_NAME": "train"},
     2, ranks.Rank(1, 1, "slurm")),
    ({"SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_JOB_NAME": "interactive"},  # Lightning ignores it
     1, ranks.Rank(0, 0, "lightning")),
])
def test_detect(monkeypatch: pytest.MonkeyPatch, env: dict, num_nodes: int, expected: ranks.Rank) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rank = ranks.detect(num_nodes)
    assert rank == expected and rank.inherits == (expected.rank < 0)


def test_rank_zero_hands_over_and_a_late_rank_zero_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv(ranks.PORT_ENV, str(port))
    monkeypatch.setenv(ranks.TIMEOUT_ENV, "2")
    zero = ranks.Rendezvous(ranks.Rank(0, 1, "slurm"))
    other = ranks.Rendezvous(ranks.Rank(1, 1, "slurm"))
    with pytest.raises(RuntimeError, match=rf"rank 1: no run from rank zero at 127.0.0.1:{port} within 2 s"):
        other.read(ranks.RUN)
    threading.Timer(0.2, zero.publish, (ranks.RUN, {"task_id": "t", "run_dir": "/r"})).start()
    assert other.read(ranks.RUN) == {"task_id": "t", "run_dir": "/r"}
    other.fail("RuntimeError: boom")
    other.done()
    zero.wait_done()
    assert zero.failures() == ["rank 1: RuntimeError: boom"]
