"""torch-lab online: the real console scripts and the real clearml SDK against the stand-in ClearML
server (tests/clearml_server), the path a team uses."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli, sets

# The tests that train the toy model online (~20 s and more) are slow.


@pytest.fixture
def https_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The stand-in over HTTPS with a self-signed certificate for 127.0.0.1 (``.cert``), the
    environment pointing at it and trusting nothing more than the system's CAs."""
    from clearml_server import ClearMLServer

    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ClearMLServer(tls=context)
    server.cert = cert
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "CLEARML_API_HOST_VERIFY_CERT"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.stop()


def trained(clearml_server, toy: Path, *extra: str) -> tuple[dict, Path]:
    """Train ``toy`` online; the server's task and the run directory."""
    result = run_cli("train", toy, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    (task,) = clearml_server.api.tasks.values()
    run_dir = next(Path("data/artifacts").glob(f"*{task['id']}"))
    return task, run_dir


@pytest.mark.slow
def test_train_online_records_the_task_on_the_server(clearml_server, toy: Path) -> None:
    task, run_dir = trained(clearml_server, toy)
    assert task["status"] == "completed" and "completed" in task["tags"]
    assert task["hyperparams"]["hparams"]["config/lr"]["value"] == "0.1"
    scalars = clearml_server.api.scalars(task["id"])
    assert {("loss", "train"), ("loss", "val"), ("accuracy", "val")} <= set(scalars)
    assert len(scalars[("loss", "val")]) == 3  # one a validation, 3 epochs
    models = {m["name"]: clearml_server.api.models[m["model"]] for m in task["models"]["output"]}
    assert set(models) == {"best", "last"}
    for name, model in models.items():
        stored = clearml_server.files.files[model["uri"].split(clearml_server.files_http.url, 1)[1]]
        assert stored == (run_dir / "checkpoints" / f"{name}.ckpt").read_bytes()
    assert json.loads((run_dir / "run.json").read_text())["task_id"] == task["id"]
    assert not [r for r in clearml_server.api_http.log if r.status != 200]


@pytest.mark.slow
def test_a_checkpoint_is_pulled_by_task_id_without_its_run_directory(
        clearml_server, toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another machine: no run directory, no ClearML cache; the checkpoint comes from the
    server's output model (named ``<task>-best``, registered on the task as ``best``), for
    export-model, train and infer."""
    task, run_dir = trained(clearml_server, toy)
    best = (run_dir / "checkpoints" / "best.ckpt").read_bytes()
    shutil.rmtree("data")
    shutil.rmtree(tmp_path / "clearml-cache")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run_cli("export-model", toy, task["id"], "--out", "model.pt")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (elsewhere / "model.pt").is_file()
    result = run_cli("train", toy, *sets(f"checkpoint.checkpoint_task_id={task['id']!r}",
                                         "checkpoint.weights_only=True", "trainer.init.max_epochs=1"))
    assert result.returncode == 0, result.stdout + result.stderr
    child = next(t for t in clearml_server.api.tasks.values() if t["id"] != task["id"])
    assert child["parent"] == task["id"]
    assert best in clearml_server.files.files.values()
    result = run_cli("infer", toy, "6", *sets(f"checkpoint.checkpoint_task_id={task['id']!r}"))
    assert result.returncode == 0, result.stdout + result.stderr
    (inferred,) = [t for t in clearml_server.api.tasks.values() if t["name"].startswith("infer_")]
    assert inferred["status"] == "completed" and inferred["parent"] == task["id"]
    (infer_run,) = Path("data/artifacts").glob(f"*{inferred['id']}")
    assert json.loads((infer_run / "run.json").read_text())["started_from"]["task_id"] == task["id"]
    # The fileserver lost the files: one clear line, not a TypeError.
    clearml_server.files.files.clear()
    shutil.rmtree(tmp_path / "clearml-cache")
    result = run_cli("export-model", toy, task["id"], "--out", "again.pt")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "checkpoint 'best' could not be downloaded" in result.stderr
    assert "Traceback" not in result.stderr and "TypeError" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("outcome, server_status", [("interrupted", "stopped"), ("failed", "failed")])
def test_a_run_that_did_not_complete_is_not_completed_on_the_server(
        clearml_server, toy: Path, outcome: str, server_status: str) -> None:
    """close() would send tasks.completed after the outcome (the real server allows stopped ->
    completed): the task keeps the outcome, and completed is never asked for."""
    env = ({"TOY_SIGNAL_AT": "epoch=1,batch=1,moment=batch_end,signal=2"} if outcome == "interrupted"
           else {})
    extra = sets("config.crash_at_epoch=1") if outcome == "failed" else []
    result = run_cli("train", toy, *extra, env=env)
    assert result.returncode != 0, result.stdout + result.stderr
    (task,) = clearml_server.api.tasks.values()
    assert task["status"] == server_status and outcome in task["tags"]
    assert not clearml_server.api_http.requests("tasks.completed")
    assert f"task {task['id']} {outcome}" in result.stdout
    assert not [r for r in clearml_server.api_http.log if r.status != 200], \
        [(r.endpoint, r.status) for r in clearml_server.api_http.log if r.status != 200]


@pytest.mark.slow
def test_a_server_that_goes_away_mid_run_never_hangs_the_run(clearml_server, toy: Path) -> None:
    """The SDK retries a vanished server without limit; torch-lab waits for it at most
    TORCH_LAB_CLEARML_TIMEOUT seconds once in the run, then finishes locally and says so."""
    batches = []

    def second_batch(request) -> bool:  # the server (and its fileserver) go away there
        batches.append(request) if request.endpoint == "events.add_batch" else None
        if len(batches) == 2:
            clearml_server.files_http.stop()
        return len(batches) == 2

    clearml_server.api_http.fault_when(second_batch, "gone")
    started = time.monotonic()
    result = run_cli("train", toy, env={"TORCH_LAB_CLEARML_TIMEOUT": "10"}, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ClearML server did not answer within 10 s" in result.stdout
    assert "the checkpoints, run.json and the outcome not sent" in result.stdout
    (run_dir,) = Path("data/artifacts").glob("*")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed"
    assert {p.name for p in (run_dir / "checkpoints").glob("*.ckpt")} == {"best.ckpt", "last.ckpt"}
    assert elapsed < 75, elapsed  # ~20 s of training, one 10 s wait, start-up and exit


@pytest.mark.slow
@pytest.mark.parametrize("outcome, server_status", [("failed", "failed"), ("interrupted", "stopped")])
def test_runs_sync_keeps_the_outcome_of_an_offline_run(
        clearml_server, toy: Path, monkeypatch: pytest.MonkeyPatch, outcome: str,
        server_status: str) -> None:
    """The import always marks the task completed: ``runs sync`` puts the run's outcome back."""
    for name in clearml_server.env():
        monkeypatch.delenv(name)  # trained offline, on a machine without the server
    if outcome == "failed":
        result = run_cli("train", toy, "--offline", *sets("config.crash_at_epoch=1"))
    else:
        result = run_cli("train", toy, "--offline",
                         env={"TOY_SIGNAL_AT": "epoch=1,batch=1,moment=batch_end,signal=2"})
    assert result.returncode == (1 if outcome == "failed" else 130), result.stdout + result.stderr
    for name, value in clearml_server.env().items():
        monkeypatch.setenv(name, value)
    result = run_cli("runs", "sync")
    assert result.returncode == 0, result.stdout + result.stderr
    (task,) = clearml_server.api.tasks.values()
    assert task["status"] == server_status and outcome in task["tags"]


def test_an_unknown_queue_is_one_line(clearml_server, toy: Path) -> None:
    result = run_cli("train", toy, "--queue", "nope")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--queue nope: no such ClearML queue" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not clearml_server.api_http.requests("tasks.enqueue")
    assert not clearml_server.api.tasks  # checked before the task is made: nothing left behind


def test_a_known_queue_gets_the_task(clearml_server, toy: Path) -> None:
    queue = clearml_server.api.add_queue("gpu")
    result = run_cli("train", toy, "--queue", "gpu")
    assert result.returncode == 0, result.stdout + result.stderr
    (task,) = clearml_server.api.tasks.values()
    assert task["status"] == "queued" and clearml_server.api.queue_entries[queue] == [task["id"]]
    assert f"torch-lab: task {task['id']} enqueued in ClearML queue 'gpu'" in result.stdout


@pytest.mark.parametrize("command", ["export-model", "train"])
def test_offline_never_contacts_the_server_for_a_checkpoint_task_id(
        clearml_server, toy: Path, command: str) -> None:
    """``--offline`` with a server configured: a task id is looked up locally only."""
    args = [toy, "0123abcd"] if command == "export-model" else [
        toy, *sets("checkpoint.checkpoint_task_id='0123abcd'")]
    result = run_cli(command, *args, "--offline")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "checkpoint task '0123abcd': no checkpoint" in result.stderr
    assert not clearml_server.api_http.log


@pytest.mark.slow
def test_resuming_a_task_the_server_lost_is_one_line(clearml_server, toy: Path) -> None:
    result = run_cli("train", toy, env={"TOY_SIGNAL_AT": "epoch=1,batch=1,moment=batch_end,signal=2"})
    assert result.returncode != 0, result.stdout + result.stderr
    (task_id,) = clearml_server.api.tasks
    clearml_server.api.tasks.clear()  # deleted in the UI
    result = run_cli("train", toy, "--resume")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--resume {task_id}: the ClearML server" in result.stderr
    assert "no longer has that task" in result.stderr
    assert not clearml_server.api.tasks  # no new task made in its place
    (run_dir,) = Path("data/artifacts").glob("*")
    assert json.loads((run_dir / "run.json").read_text())["task_id"] == task_id


@pytest.mark.slow
def test_a_self_signed_server_the_sdk_trusts_is_used(https_server, toy: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up ping trusts what the SDK trusts (here the CA bundle in
    CLEARML_API_HOST_VERIFY_CERT), not only the system's CAs."""
    monkeypatch.setenv("CLEARML_API_HOST_VERIFY_CERT", str(https_server.cert))
    task, _ = trained(https_server, toy)
    assert task["status"] == "completed"
    assert {m["name"] for m in task["models"]["output"]} == {"best", "last"}


def test_a_server_certificate_not_trusted_is_one_line(https_server, toy: Path) -> None:
    result = run_cli("train", toy)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"train: error: ClearML server {https_server.api_http.url}: its TLS "
                           "certificate is not trusted ([SSL: CERTIFICATE_VERIFY_FAILED]"), line
    assert line.endswith("give its CA bundle in api.verify_certificate (clearml.conf), "
                         "CLEARML_API_HOST_VERIFY_CERT or REQUESTS_CA_BUNDLE, or run with --offline")
    assert not https_server.api.tasks


@pytest.mark.parametrize("fault, command", [("bad secret", "train"), ("401 everywhere", "train"),
                                            ("bad secret", "runs")])
def test_refused_credentials_are_one_line(clearml_server, toy: Path, monkeypatch: pytest.MonkeyPatch,
                                          fault: str, command: str) -> None:
    """A wrong secret key (auth.login answers 401), or a server refusing every call; checked at
    start-up by every command that goes online (here also ``runs sync``)."""
    if fault == "bad secret":
        monkeypatch.setenv("CLEARML_API_SECRET_KEY", "wrong")
    else:
        clearml_server.api_http.fault = "401"
    Path("data/artifacts").mkdir(parents=True)  # runs sync: an artifacts root with no runs yet
    result = run_cli(*(["train", toy] if command == "train" else ["runs", "sync"]))
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{command}: error: ClearML server {clearml_server.api_http.url}: login "
                           "refused ("), line
    assert line.endswith("check api.credentials in clearml.conf or CLEARML_API_ACCESS_KEY / "
                         "CLEARML_API_SECRET_KEY (the keys of that server), or run with --offline"), line
    assert not clearml_server.api.tasks



@pytest.mark.slow
def test_a_sweep_on_a_queue_enqueues_its_trials(clearml_server, toy: Path, tmp_path: Path) -> None:
    """ClearML's optimizer against the stand-in, as far as it goes without an agent: the base task
    left a draft, the sweep's own task, and trials cloned from the base with their values in the
    ``hparams`` section, enqueued; the sweep is stopped then (no agent will ever run them): its
    task stopped, its trial off the queue."""
    queue = clearml_server.api.add_queue("gpu")
    (tmp_path / "sweep.py").write_text('sweep = {"trials": 2, "space": {"config.lr": [0.01, 0.02]}}\n')
    sweep = subprocess.Popen([str(Path(sys.executable).parent / "train"), str(toy), "--sweep",
                              "sweep.py", "--queue", "gpu"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    seen: dict = {}
    try:
        deadline = time.monotonic() + 120
        while not seen and time.monotonic() < deadline and sweep.poll() is None:
            time.sleep(0.2)
            entries = list(clearml_server.api.queue_entries[queue])
            seen = {i: json.loads(json.dumps(clearml_server.api.tasks[i])) for i in entries}
            base = {i: t["status"] for i, t in clearml_server.api.tasks.items()}
    finally:
        sweep.terminate()
        output = sweep.communicate(timeout=60)[0]
    assert seen, output[-4000:]
    (trial,) = seen.values()  # one at a time without --parallel
    assert trial["status"] == "queued" and base[trial["parent"]] == "created"  # the base: a draft
    assert trial["hyperparams"]["hparams"]["config/lr"]["value"] in ("0.01", "0.02")
    (controller,) = [t for t in clearml_server.api.tasks.values() if t["type"] == "optimizer"]
    assert base[controller["id"]] == "in_progress"
    # Stopped (SIGTERM): the sweep's task is stopped and its trial taken off the queue.
    assert sweep.returncode == 130, output[-4000:]
    assert clearml_server.api.tasks[controller["id"]]["status"] == "stopped"
    assert not clearml_server.api.queue_entries[queue]
