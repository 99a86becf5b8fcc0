"""Scale-out: multi-process training, several hparams files in one command, ClearML queues."""

import collections
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from conftest import DEMO, run_cli, session_scalars, sets
from torch_lab.children.jobs import Job, free_slot
from torch_lab.tracking import agent
from torch_lab.tracking import task as tracking


def runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "data" / "artifacts").glob("*/run.json"))


@pytest.mark.slow  # moved to the slow stage: the default suite stays under 10 minutes
def test_ddp_on_two_cpu_processes_is_one_task_and_one_run(tiny_mnist: Path, tmp_path: Path) -> None:
    """The demo's model on tiny MNIST with strategy='ddp' over 2 CPU processes (gloo): one offline
    session, one run directory, each metric point logged once (by rank zero)."""
    result = run_cli("train", DEMO / "hparams.py", "--offline", "--devices", "2", *sets(
                     "trainer.init.strategy='ddp'", "trainer.init.accelerator='cpu'",
                     f"config.data_dir='{tiny_mnist}'", "config.val_size=64", "trainer.init.max_epochs=2"))
    assert result.returncode == 0, result.stderr
    [run] = runs(tmp_path)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and set(record["checkpoints"]) == {"best", "last"}
    sessions = sorted(p.name for p in (tmp_path / "clearml-cache" / "offline").iterdir())
    assert sessions == [record["task_id"], f"{record['task_id']}.zip"]
    with zipfile.ZipFile(record["offline_session"]) as zipped:
        events = [e for line in zipped.read("metrics.jsonl").decode().splitlines() for e in json.loads(line)]
    points = collections.Counter((e["metric"], e["variant"], e["iter"]) for e in events
                                 if e["type"] == "training_stats_scalar")
    assert points and max(points.values()) == 1
    assert sum(1 for metric, variant, _ in points if (metric, variant) == ("loss", "val")) == 2
    assert json.loads((run / "hparams.json").read_text())["trainer"]["init"]["devices"] == 2


def free_port() -> int:
    """A port free now; the job also uses the next one (torch-lab's store: MASTER_PORT + 1)."""
    while True:
        with socket.socket() as one, socket.socket() as two:
            one.bind(("127.0.0.1", 0))
            try:
                two.bind(("127.0.0.1", one.getsockname()[1] + 1))
            except OSError:
                continue
            return one.getsockname()[1]


TWO_NODES = ["--offline", *sets("trainer.init.num_nodes=2", "trainer.init.strategy='ddp'", "trainer.init.devices=1",
                                "trainer.init.accelerator='cpu'", "trainer.init.max_epochs=2")]


def start_nodes(launcher: str, hparams: Path, *args: str, env: dict[str, str] | None = None
                ) -> list[subprocess.Popen]:
    """Two simulated nodes on this machine, started at once as ``torchrun`` or SLURM's ``srun``
    would start them (one process each, gloo over 127.0.0.1): the real ``train`` script."""
    bin_dir, port = Path(sys.executable).parent, free_port()
    train = [str(bin_dir / "train"), str(hparams), *TWO_NODES, *args]
    nodes = []
    for rank in (0, 1):
        if launcher == "torchrun":
            command = [str(bin_dir / "torchrun"), "--nnodes", "2", "--nproc-per-node", "1", "--node-rank",
                       str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port), *train]
            node_env = {}
        else:  # what srun gives each task of `sbatch --nodes 2 --ntasks-per-node 1`
            command, node_env = train, {
                "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "2",
                "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "2", "SLURM_NODELIST": "node[0-1]",
                "SLURM_PROCID": str(rank), "SLURM_LOCALID": "0", "SLURM_NODEID": str(rank),
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        nodes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, **node_env, **(env or {})}, start_new_session=True))
    return nodes


def wait_for_an_epoch(nodes: list[subprocess.Popen], root: Path, timeout: float = 180) -> None:
    """Wait until the run under ``root`` ended an epoch (its history.csv exists), every node alive."""
    deadline = time.monotonic() + timeout
    while not list((root / "data" / "artifacts").glob("*/history.csv")):
        assert time.monotonic() < deadline and all(node.poll() is None for node in nodes)
        time.sleep(0.1)


def finish_nodes(nodes: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str, str]]:
    """Each node's exit code, stdout and stderr; a node still running after ``timeout`` s (a
    hang) is killed with its process group, and the test fails."""
    results = []
    try:
        for node in nodes:
            out, err = node.communicate(timeout=timeout)
            results.append((node.returncode, out, err))
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.communicate()
    return results


def one_run(root: Path) -> tuple[Path, dict]:
    """The job's only run directory and its record; the job's only offline session is its task's."""
    [run] = runs(root)
    record = json.loads((run / "run.json").read_text())
    sessions = sorted(p.name for p in (root / "clearml-cache" / "offline").iterdir())
    assert sessions == [record["task_id"], f"{record['task_id']}.zip"]
    return run, record


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "slurm"])
def test_two_nodes_are_one_run(toy: Path, tmp_path: Path, launcher: str) -> None:
    """num_nodes=2, one process per node, started by torchrun or with SLURM's environment: one
    task, one offline session, one run directory, completed, its metrics those of its history."""
    results = finish_nodes(start_nodes(launcher, toy))
    assert [code for code, _, _ in results] == [0, 0], results[0][2] + results[1][2]
    run, record = one_run(tmp_path)
    assert record["status"] == "completed" and set(record["checkpoints"]) == {"best", "last"}
    history = list(csv.DictReader(open(run / "history.csv")))
    assert [row["epoch"] for row in history] == ["0", "1"]
    assert record["metrics"]["loss/val"] == pytest.approx(float(history[-1]["loss/val"]))
    assert f"task {record['task_id']} started" in results[0][1] and "started" not in results[1][1]
    assert max(session_scalars(Path(record["offline_session"])).values()) == 1
    assert not Path(tempfile.gettempdir(), f"clearml_{record['task_id']}.lock").exists()  # ClearML's


@pytest.mark.slow
@pytest.mark.parametrize("launcher, code", [("slurm", 2), ("torchrun", 1)])  # torchrun exits 1 for its worker's 2
def test_a_bad_input_stops_every_node_before_any_task(toy: Path, tmp_path: Path, launcher: str, code: int) -> None:
    results = finish_nodes(start_nodes(launcher, toy, *sets("trainer.init.max_epoch=3")), timeout=120)
    assert [returncode for returncode, _, _ in results] == [code, code]
    assert all("train: error: " in err and "max_epoch" in err for _, _, err in results)
    assert runs(tmp_path) == [] and not (tmp_path / "clearml-cache" / "offline").exists()


@pytest.mark.slow
def test_a_signal_to_one_node_stops_both(toy: Path, tmp_path: Path) -> None:
    """SIGTERM to one node (rank 1, under SLURM's environment) during training: every rank stops
    at the same batch, rank zero saves last.ckpt and records one `interrupted`; exit 130 on both."""
    nodes = start_nodes("slurm", toy, *sets("trainer.init.max_epochs=50", "config.batch_sleep=0.2"))
    try:
        wait_for_an_epoch(nodes, tmp_path)
        nodes[1].send_signal(signal.SIGTERM)
    finally:
        results = finish_nodes(nodes)
    assert [code for code, _, _ in results] == [130, 130], results[0][2] + results[1][2]
    run, record = one_run(tmp_path)
    assert record["status"] == "interrupted" and (run / "checkpoints" / "last.ckpt").is_file()
    assert "Traceback" not in results[0][2] + results[1][2]


@pytest.mark.slow
def test_a_failing_rank_fails_the_run_on_both_nodes(toy: Path, tmp_path: Path) -> None:
    """Rank 1 raises in its first epoch: both nodes exit 1 (not a hang: bounded by the test's
    timeout, well under TORCH_LAB_RANK_TIMEOUT's 600 s) and the run is `failed` with rank 1's message."""
    results = finish_nodes(start_nodes("torchrun", toy, *sets("config.crash_at_epoch=0", "config.crash_rank=1")),
                           timeout=240)
    assert [code != 0 for code, _, _ in results] == [True, True]
    _, record = one_run(tmp_path)
    assert record["status"] == "failed" and "rank 1: RuntimeError: injected crash" in record["error"]


@pytest.mark.slow
def test_resume_on_both_nodes_continues_the_run(toy: Path, tmp_path: Path) -> None:
    """A run that failed in its second epoch, resumed with `--resume` on both nodes: the same
    task, session and run directory, completed, each epoch once in its history."""
    first = finish_nodes(start_nodes("slurm", toy, *sets("config.crash_at_epoch=1", "trainer.init.max_epochs=3")))
    assert [code for code, _, _ in first] == [1, 1]
    run, record = one_run(tmp_path)
    assert record["status"] == "failed"
    results = finish_nodes(start_nodes("slurm", toy, "--resume", record["task_id"], *sets(
        "config.crash_at_epoch=None", "trainer.init.max_epochs=3")))
    assert [code for code, _, _ in results] == [0, 0], results[0][2] + results[1][2]
    _, resumed = one_run(tmp_path)
    assert resumed["status"] == "completed" and len(resumed["resumed"]) == 1
    assert [row["epoch"] for row in csv.DictReader(open(run / "history.csv"))] == ["0", "1", "2"]


def variants(toy: Path) -> None:
    """Three hparams files beside the toy's: a and c train, b crashes in its first epoch."""
    for name, crash in (("a", None), ("b", 0), ("c", None)):
        (toy.parent / f"run_{name}.py").write_text(
            "from pathlib import Path\nfrom torch_lab.utils import import_script_as_module\n"
            "hparams = import_script_as_module(Path(__file__).parent / 'hparams.py').hparams\n"
            f"hparams['config']['crash_at_epoch'] = {crash}\n"
            "hparams['trainer']['init']['max_epochs'] = 1\n")


@pytest.mark.slow  # moved to the slow stage: the default suite stays under 10 minutes
def test_several_files_one_failing(toy: Path, tmp_path: Path) -> None:
    variants(toy)
    result = run_cli("train", "experiments/01_toy/run_*.py", "--offline")
    assert result.returncode == 1
    table = result.stdout.strip().splitlines()[-4:]
    assert table[0].split() == ["hparams", "task", "id", "status", "best"]
    statuses = {line.split()[0]: line.split()[2] for line in table[1:]}
    assert statuses == {"experiments/01_toy/run_a.py": "completed",
                        "experiments/01_toy/run_b.py": "failed",
                        "experiments/01_toy/run_c.py": "completed"}
    assert "loss/val=" in table[1]
    assert "train: experiments/01_toy/run_b.py failed: RuntimeError: injected crash" in result.stderr
    assert sorted(json.loads((r / "run.json").read_text())["status"] for r in runs(tmp_path)) == [
        "completed", "completed", "failed"]


def test_several_files_in_parallel(toy: Path, tmp_path: Path) -> None:
    variants(toy)
    result = run_cli("train", toy.parent / "run_a.py", toy.parent / "run_c.py", "--offline", "--parallel")
    assert result.returncode == 0, result.stderr
    assert [json.loads((r / "run.json").read_text())["status"] for r in runs(tmp_path)] == ["completed"] * 2
    for name in ("run_a", "run_c"):  # each child's epoch line and where its full log is, prefixed
        [run] = [r for r in runs(tmp_path) if f"-{name}-" in r.name]
        assert f"[{toy.parent / name}.py] epoch 0/0: " in result.stdout
        assert f"[{toy.parent / name}.py] task {json.loads((run / 'run.json').read_text())['task_id']}; " \
               f"full log: {run / 'console.log'}" in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_several_files_interrupted(toy: Path, tmp_path: Path, signum: int) -> None:
    """A signal to the parent reaches the running child (once: it is in its own process group),
    which stops cleanly; the next file never starts; the summary marks both; exit 130."""
    variants(toy)
    command = [str(Path(sys.executable).parent / "train"), str(toy.parent / "run_a.py"),
               str(toy.parent / "run_c.py"), "--offline", "--set", "config.batch_sleep=0.5"]
    parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "data" / "artifacts").glob("*/history.csv")):  # the child trains
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    parent.send_signal(signum)
    out, err = parent.communicate(timeout=120)
    assert parent.returncode == 130, err
    rows = {line.split()[0]: line.split()[1:3] for line in out.strip().splitlines()[-2:]}
    [run] = runs(tmp_path)
    record = json.loads((run / "run.json").read_text())
    assert rows == {str(toy.parent / "run_a.py"): [record["task_id"], "interrupted"],
                    str(toy.parent / "run_c.py"): ["-", "not"]}
    assert record["status"] == "interrupted" and (run / "checkpoints" / "last.ckpt").is_file()
    assert err.count("Traceback") == 0 and "interrupted before it started" in err


def processes_running(text: str) -> list[int]:
    """The pids whose command line holds ``text`` (a child and its forked DataLoader workers)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_several_files_parent_killed_takes_its_child_and_workers_along(toy: Path, tmp_path: Path) -> None:
    """SIGKILL of the parent of several files (Linux): its child, training with a DataLoader
    worker, gets SIGTERM (PR_SET_PDEATHSIG), stops cleanly and records itself interrupted; no
    child or worker process is left."""
    hparams = toy.parent / "run_w.py"
    hparams.write_text("from pathlib import Path\nfrom torch_lab.utils import import_script_as_module\n"
                       "hparams = import_script_as_module(Path(__file__).parent / 'hparams.py').hparams\n"
                       "hparams['config'].update(num_workers=1, batch_sleep=0.5)\n"
                       "hparams['trainer']['init']['max_epochs'] = 30\n")
    command = [str(Path(sys.executable).parent / "train"), str(hparams), str(toy), "--offline"]
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not list((tmp_path / "data" / "artifacts").glob("*/history.csv")) or len(
            processes_running(str(hparams))) < 2:  # the child trains, with its worker
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.2)
    parent.kill()
    parent.wait()
    while processes_running(str(hparams)):
        assert time.monotonic() < deadline, "the child (or its worker) trains on as an orphan"
        time.sleep(0.5)
    [run] = runs(tmp_path)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted" and (run / "checkpoints" / "last.ckpt").is_file()
    assert list((tmp_path / "data" / "artifacts").glob(".results-*"))  # the killed parent's, not in /tmp


def test_parallel_slots_go_to_free_gpus() -> None:
    """With 2 GPUs and the job on GPU 0 finished, the next job gets GPU 0, not the busy GPU 1."""
    slots = [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    busy = Job("b.py", Path("b.json"), {"CUDA_VISIBLE_DEVICES": "1"})
    assert free_slot(slots, [busy]) == {"CUDA_VISIBLE_DEVICES": "0"}
    assert free_slot([{}, {}], [Job("a.py", Path("a.json"), {})]) == {}


def test_queue_offline_is_refused(toy: Path, tmp_path: Path) -> None:
    result = run_cli("train", toy, "--offline", "--queue", "gpu")
    assert result.returncode == 2
    assert result.stderr.strip() == ("train: error: --queue gpu: a ClearML agent needs a ClearML "
                                     "server, and this run is offline (--offline, or no ClearML configuration)")
    assert runs(tmp_path) == [] and not (tmp_path / "clearml-cache" / "offline").exists()


def test_queue_online_enqueues_and_exits(monkeypatch) -> None:
    """Stands in for the ClearML server, which cannot run here: the task object only records the
    documented ``execute_remotely`` call (which, against a server, enqueues and exits)."""
    calls = []

    class RecordingTask:
        id = "abc"

        def execute_remotely(self, **kwargs):
            calls.append(kwargs)

    monkeypatch.setattr(tracking.Task, "running_locally", staticmethod(lambda: True))
    agent.enqueue(RecordingTask(), "gpu")
    assert calls == [{"queue_name": "gpu", "exit_process": True}]
