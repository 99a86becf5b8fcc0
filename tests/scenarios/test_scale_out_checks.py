"""Two simulated nodes that do not fit together: different hparams, a busy store port, a node that
never starts. Each ends on every node within ``TORCH_LAB_RANK_TIMEOUT``, saying why, before any task."""

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from conftest import sets
from scenarios.test_scale_out import finish_nodes, runs, start_nodes, wait_for_an_epoch

QUICK = {"TORCH_LAB_RANK_TIMEOUT": "15"}


def nothing_started(root: Path) -> bool:
    return runs(root) == [] and not (root / "clearml-cache" / "offline").exists()


@pytest.mark.slow
def test_nodes_with_different_hparams_refuse_to_start(toy: Path, tmp_path: Path) -> None:
    toy.write_text(toy.read_text().replace('"lr": 0.1', '"lr": 0.05 if __import__("os").environ["SLURM_PROCID"] '
                                           '== "0" else 0.04'))
    results = finish_nodes(start_nodes("slurm", toy, env=QUICK), timeout=120)
    assert [code for code, _, _ in results] == [2, 2], results[0][2] + results[1][2]
    assert "rank 0: the hparams differ from rank 1's in config.lr (0.05 here, 0.04 on rank 1)" in results[0][2]
    assert "rank 1: the hparams differ from rank 0's in config.lr (0.04 here, 0.05 on rank 0)" in results[1][2]
    assert nothing_started(tmp_path)


@pytest.mark.slow
def test_a_busy_store_port_names_its_variable_on_every_node(toy: Path, tmp_path: Path) -> None:
    from datetime import timedelta

    from torch.distributed import TCPStore

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    busy = TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False,  # another job's store
                    timeout=timedelta(seconds=30))
    env = {**QUICK, "TORCH_LAB_STORE_PORT": str(port)}
    started = time.monotonic()
    results = finish_nodes(start_nodes("slurm", toy, env=env), timeout=120)
    del busy
    assert time.monotonic() - started < 90
    assert results[0][0] == 2 and "set TORCH_LAB_STORE_PORT to a free port" in results[0][2], results[0][2]
    assert results[1][0] != 0 and "TORCH_LAB_STORE_PORT" in results[1][2], results[1][2]
    assert nothing_started(tmp_path)


@pytest.mark.slow
def test_a_node_that_never_starts_fails_rank_zero_in_time(toy: Path, tmp_path: Path) -> None:
    nodes = start_nodes("slurm", toy, env=QUICK)
    os.killpg(nodes[1].pid, signal.SIGKILL)  # node 1 never gets to torch-lab
    started = time.monotonic()
    results = finish_nodes(nodes, timeout=120)
    assert time.monotonic() - started < 90
    code, _, err = results[0]
    assert "torch-lab: rank 0 waiting for hparams from rank 1 (at most 15 s, TORCH_LAB_RANK_TIMEOUT)" in err, err
    assert code != 0 and "rank 0: no hparams from rank 1" in err and "TORCH_LAB_RANK_TIMEOUT" in err, err
    assert "Traceback" not in err
    assert nothing_started(tmp_path)


@pytest.mark.slow
def test_rank_zero_ends_soon_after_a_node_is_killed(toy: Path, tmp_path: Path) -> None:
    """Node 1 SIGKILLed mid-training: rank zero does not wait for it (its heartbeat stopped), and
    records the run `failed`, well within the 60 s it used to wait."""
    nodes = start_nodes("slurm", toy, *sets("trainer.init.max_epochs=50", "config.batch_sleep=0.2"))
    try:
        wait_for_an_epoch(nodes, tmp_path)
        os.killpg(nodes[1].pid, signal.SIGKILL)
        killed = time.monotonic()
        nodes[0].wait(timeout=120)
        waited = time.monotonic() - killed
    finally:
        results = finish_nodes(nodes)
    assert results[0][0] != 0 and waited < 30, (waited, results[0][2][-2000:])
    [run] = runs(tmp_path)
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
