"""``runs diff A B`` through the real console script on the real runs of the toy experiment
(conftest's: a completed run and a failed one, started with different hparams), and the
environment run.json records at a run's start."""

from __future__ import annotations

import json
import platform
import zipfile
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

from conftest import run_cli
from torch_lab.runs import load_runs
from torch_lab.runs.report import metric_text
from unit.runs.test_report import runs


def test_real_runs(real: SimpleNamespace) -> None:
    loaded = {run["task_id"]: run for run in load_runs(real.root)}
    a, b = loaded[real.a], loaded[real.b]
    rows = [("best loss/val", a["best"]["value"], b["best"]["value"]),
            *((name, a["metrics"].get(name), b["metrics"].get(name))
              for name in sorted({*a["metrics"], *b["metrics"]}))]
    metrics = "\n".join(f"  {name:<16}{metric_text(x):<10}{metric_text(y):<10}"
                        f"{f'{y - x:+.6g}' if x is not None and y is not None else '-'}".rstrip()
                        for name, x, y in rows)
    assert runs(real.root, "diff", real.a, real.b) == f"""\
a: 01_toy-hparams {real.a} (completed)
b: 01_toy-hparams {real.b} (failed)

hparams (3 differ):
  trainer.init.max_epochs  2 -> 3
  config.crash_at_epoch    None -> 1
  seed                     {a['hparams']['seed']} -> {b['hparams']['seed']}

metrics           a         b         b - a
{metrics}

lineage         a  b
  started from  -  -
  checkpoint    -  -
  sweep         -  -
  group         -  -

environment: the same

sources: the same (4 files)
"""
    data = json.loads(runs(real.root, "diff", real.a, real.b, "--json"))
    assert data["hparams"][1] == {"key": "config.crash_at_epoch", "a": None, "b": 1}
    assert data["metrics"][0] == {"name": "best loss/val", "a": a["best"]["value"], "b": b["best"]["value"]}
    assert data["sources"]["same"] == ["01_toy/__init__.py", "01_toy/__main__.py", "01_toy/hparams.py",
                                       "01_toy/signals.py"] and data["environment"] == []
    environment = data["a"]["environment"]  # recorded by train at the run's start
    assert environment["python"] == platform.python_version()
    assert environment["packages"]["torch"] == metadata.version("torch")
    assert environment["machine"]["hostname"] == platform.node() and "git" not in environment  # no repo


def test_edited_sources_and_another_environment(real: SimpleNamespace) -> None:
    """B's sources edited after A ran, and B run with another torch; a run from before the
    environment was recorded says so."""
    with zipfile.ZipFile(real.dir_b / "source.zip") as zipped:
        files = {name: zipped.read(name) for name in zipped.namelist()}
    files["01_toy/hparams.py"] = files["01_toy/hparams.py"].replace(b'"lr": 0.1', b'"lr": 0.2')
    files["01_toy/extra.py"] = b"WIDTH = 2\n"
    with zipfile.ZipFile(real.dir_b / "source.zip", "w") as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    record = json.loads((real.dir_b / "run.json").read_text())
    record["environment"]["packages"]["torch"] = "0.0-test"
    (real.dir_b / "run.json").write_text(json.dumps(record))
    text = runs(real.root, "diff", real.a, real.b)
    torch = json.loads((real.dir_a / "run.json").read_text())["environment"]["packages"]["torch"]
    assert text.split("\n\nenvironment", 1)[1] == f"""\
 (1 differ):
  packages.torch  {torch} -> 0.0-test

sources: 2 files differ, 3 the same
--- /dev/null
+++ b/01_toy/extra.py
@@ -0,0 +1 @@
+WIDTH = 2
--- a/01_toy/hparams.py
+++ b/01_toy/hparams.py
@@ -1,7 +1,7 @@
 hparams = {{
     "task": {{"project_name": "torch-lab-tests"}},
     "trainer": {{"init": {{"max_epochs": 3, "enable_progress_bar": False}}}},
-    "config": {{"lr": 0.1, "crash_at_epoch": None, "crash_rank": None, "batch_sleep": 0, "stateful_loader": False,
+    "config": {{"lr": 0.2, "crash_at_epoch": None, "crash_rank": None, "batch_sleep": 0, "stateful_loader": False,
                "nan_at_step": None, "nan_val_at_epoch": None, "val_worker_raises": False,
                "setup_sleep": 0, "val_batch_sleep": 0, "noise": 0,
                "schedule": "step"}},
"""
    record = json.loads((real.dir_a / "run.json").read_text())
    del record["environment"]
    (real.dir_a / "run.json").write_text(json.dumps(record))
    (real.dir_a / "source.zip").unlink()
    text = runs(real.root, "diff", real.a, real.b)
    assert text.split("\n\nenvironment", 1)[1] == (f": not recorded by {real.a} (older torch-lab)\n\n"
                                                   f"sources: no readable source.zip in {real.a}\n")


def test_the_same_run_twice_is_refused(real: SimpleNamespace) -> None:
    result = run_cli("runs", "diff", real.a, real.a[:12], "--root", real.root, timeout=60)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"runs: error: runs diff: {real.a} and {real.a[:12]} are the same run; give two\n"
