"""``runs sync`` through the real ``runs`` script on a real offline run: without a configured or
reachable ClearML server, one line, exit 2, nothing changed. (Importing into a real server cannot
be tested here: there is none.)"""

from __future__ import annotations

import pytest

import json
import socket
from pathlib import Path

from conftest import run_cli


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # several real runs: the slow stage keeps the default suite short
def test_sync_without_a_server_changes_nothing(toy: Path, tmp_path: Path) -> None:
    trained = run_cli("train", toy, "--set", "trainer.init.max_epochs=1")
    assert trained.returncode == 0, trained.stderr
    [run] = [p.parent for p in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    before = snapshot(tmp_path / "data"), snapshot(tmp_path / "clearml-cache")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = {"CLEARML_API_HOST": f"http://127.0.0.1:{port}", "CLEARML_API_ACCESS_KEY": "k",
              "CLEARML_API_SECRET_KEY": "s"}
    task_id = json.loads((run / "run.json").read_text())["task_id"]
    cases = [
        ((), {}, "runs: error: no ClearML server configured (clearml.conf or CLEARML_API_*): nothing "
                 "to sync to; run clearml-init, or set CLEARML_API_HOST and the keys"),
        ((task_id,), {**server, "CLEARML_OFFLINE_MODE": "1"},
         "runs: error: CLEARML_OFFLINE_MODE is set: no ClearML server to sync to; unset it"),
        (("offline-nothing",), server, "runs: error: no run with task id 'offline-nothing' under data/artifacts"),
    ]
    for ids, env, line in cases:
        result = run_cli("runs", "sync", *ids, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", line + "\n"), result.stderr
    refused = run_cli("runs", "sync", task_id, env=server)
    assert refused.returncode == 2 and refused.stdout == "", refused.stderr
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"runs: error: ClearML server http://127.0.0.1:{port} is unreachable ("), line
    assert (snapshot(tmp_path / "data"), snapshot(tmp_path / "clearml-cache")) == before

    record = json.loads((run / "run.json").read_text())
    record["synced"] = {"task_id": "0123abcd", "at": "2026-01-02T03:04:05+00:00"}
    (run / "run.json").write_text(json.dumps(record))  # as a sync into a server records it
    shown = run_cli("runs", "show", task_id)
    assert "synced        task 0123abcd (2026-01-02T03:04:05+00:00)" in shown.stdout, shown.stdout
