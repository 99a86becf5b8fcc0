"""The table of bad inputs and faults: how each one breaks a copy of the toy experiment, the
command that meets it, the exact line torch-lab prints last on stderr, and the exit code.

Used by tests/test_bad_inputs.py (one test per row, and a check that docs/reference/errors.md lists every row)
and by benchmarks/error_latency.py (seconds to report each row). Commands run in a folder holding
the toy experiment at ``experiments/01_toy``; lines may hold placeholders: ``{run}``, the run
directory (for failures after the run started), and ``{NAME}``, an environment variable the setup
set.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HPARAMS = "experiments/01_toy/hparams.py"
MAIN = "experiments/01_toy/__main__.py"
SWEEP = "experiments/01_toy/sweep.py"
#: RLIMIT_FSIZE of the "full disk" row: over run.json and the offline session's files, under a
#: checkpoint of the toy model (about 18 kB).
FULL_DISK_BYTES = 15_000

#: The end of the line refusing an object of the ``lightning`` package (``kind``: its class).
LIGHTNING_PACKAGE = ("a lightning.pytorch {kind} (the lightning package); torch-lab runs pytorch_lightning, a "
                     "separate copy of Lightning whose Trainer does not take the other's classes: import it "
                     "from pytorch_lightning instead")

#: What a setup returns: environment variables for the command.
Env = dict[str, str]


@dataclass(frozen=True)
class Case:
    """One row: ``setup`` breaks the toy experiment (given its hparams.py) before ``args`` run."""

    id: str
    title: str  # the "bad input" column of the docs' error table
    args: tuple[str, ...]
    expected: str  # the last line on stderr
    exit_code: int = 2
    setup: Callable[[Path], Env | None] | None = None
    file_size_limit: int | None = None
    before_training: bool = True  # reported before any ClearML task or run directory exists
    needs_main_executed: bool = False  # reported only after __main__.py ran (torch imported)
    slow: bool = False  # in the slow stage (``pytest -m slow``), to keep the default suite short

    def prepare(self, toy: Path) -> Env:
        """Break the toy experiment; the environment variables the command needs."""
        return (self.setup(toy) if self.setup else None) or {}

    def expected_line(self, env: Env, run: Path | None = None) -> str:
        """``expected`` with its placeholders filled."""
        line = self.expected.replace("{run}", str(run)) if run is not None else self.expected
        for name, value in env.items():
            line = line.replace("{" + name + "}", value)
        return line


def hparams_text(text: str) -> Callable[[Path], None]:
    """A setup that replaces hparams.py with ``text``."""
    def setup(toy: Path) -> None:
        toy.write_text(text)
    return setup


def main_text(text: str) -> Callable[[Path], None]:
    """A setup that replaces __main__.py with ``text``."""
    def setup(toy: Path) -> None:
        (toy.parent / "__main__.py").write_text(text)
    return setup


def rename_hparams(toy: Path) -> None:
    """hparams.py becomes hparams.txt."""
    toy.rename(toy.with_suffix(".txt"))


def remove_main(toy: Path) -> None:
    """No __main__.py."""
    (toy.parent / "__main__.py").unlink()


def edit_main(old: str, new: str) -> Callable[[Path], None]:
    """A setup that replaces ``old`` by ``new`` in the toy's __main__.py."""
    def setup(toy: Path) -> None:
        main = toy.parent / "__main__.py"
        source = main.read_text()
        assert old in source, old
        main.write_text(source.replace(old, new))
    return setup


def another_runs_csv(toy: Path) -> None:
    """A CSVLogger's metrics.csv as a previous run left it (the test runs in the toy's parent's parent)."""
    folder = toy.parents[2] / "csv_logs" / "toy" / "v1"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("epoch,loss/val,step\n0,0.5,3\n")


def unwritable_artifacts(toy: Path) -> Env:
    """``TORCH_LAB_ARTIFACTS`` below a regular file: creating it fails even for root, which
    directory permissions do not stop (``chattr +i`` would, but needs CAP_LINUX_IMMUTABLE)."""
    blocker = toy.parents[2] / "blocker"
    blocker.write_text("a file, not a directory\n")
    return {"TORCH_LAB_ARTIFACTS": str(blocker / "artifacts")}


def refused_server(toy: Path) -> Env:
    """A ClearML server configured on a local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {"CLEARML_API_HOST": f"http://127.0.0.1:{port}", "CLEARML_API_ACCESS_KEY": "k",
            "CLEARML_API_SECRET_KEY": "s"}


def toy_checkpoint(path: Path) -> None:
    """A real checkpoint of the toy model (its weights, as torch-lab stores them)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": torch.nn.Linear(4, 2).state_dict(), "epoch": 0}, path)


def without_onnx(toy: Path) -> Env:
    """The ``onnx`` extra as if not installed, in the command's interpreter only: a
    sitecustomize.py, first on its PYTHONPATH, puts None in ``sys.modules`` for each package, which
    is Python's own way to block an import (``import`` raises ModuleNotFoundError and
    ``importlib.util.find_spec`` returns None). Stubs that raise on import would still be found."""
    blocker = toy.parents[2] / "no_onnx"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n\nfor name in ('onnx', 'onnxscript', 'onnxruntime'):\n    sys.modules[name] = None\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, (str(blocker), os.environ.get("PYTHONPATH"))))}


def garbage_checkpoint(toy: Path) -> None:
    """``bad.ckpt``: bytes that are no checkpoint at all."""
    (toy.parents[2] / "bad.ckpt").write_bytes(b"not a checkpoint\n" * 64)


def truncated_task_checkpoint(toy: Path) -> None:
    """A finished task ``offline-cut`` whose last.ckpt was cut in half."""
    run = toy.parents[2] / "data" / "artifacts" / "01_toy-hparams-offline-cut"
    toy_checkpoint(run / "checkpoints" / "last.ckpt")
    data = (run / "checkpoints" / "last.ckpt").read_bytes()
    (run / "checkpoints" / "last.ckpt").write_bytes(data[: len(data) // 2])
    (run / "run.json").write_text(json.dumps({"task_id": "offline-cut", "status": "completed"}))


def file_as_cache_dir(toy: Path) -> Env:
    """``CLEARML_CACHE_DIR`` names a regular file."""
    path = toy.parents[2] / "cache-file"
    path.write_text("not a directory\n")
    return {"CLEARML_CACHE_DIR": "cache-file"}


def malformed_clearml_conf(toy: Path) -> Env:
    """A clearml.conf that does not parse, named by ``CLEARML_CONFIG_FILE``."""
    (toy.parents[2] / "clearml.conf").write_text("api {\n  api_server: \n")
    return {"CLEARML_CONFIG_FILE": "clearml.conf"}


def not_clearml_server(toy: Path) -> Env:
    """A local HTTP server that answers 404 to everything (a web server, not ClearML's API);
    it serves from a thread of the test process until that process ends."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return {"CLEARML_API_HOST": f"http://127.0.0.1:{server.server_port}",
            "CLEARML_API_ACCESS_KEY": "k", "CLEARML_API_SECRET_KEY": "s"}


def failed_run(record: str | None, hparams: bool = True, of: str | None = None) -> Callable[[Path], None]:
    """A failed toy run ``offline-old`` with ``record`` as its run.json (None: a valid one, of the
    toy's hparams.py or the file ``of`` names) and, unless told otherwise, an hparams.json; its
    last.ckpt is real."""
    def setup(toy: Path) -> None:
        run = toy.parents[2] / "data" / "artifacts" / "01_toy-hparams-offline-old"
        toy_checkpoint(run / "checkpoints" / "last.ckpt")
        hparams_path = str(toy.parents[2] / of) if of else str(toy.resolve())
        valid = json.dumps({"task_id": "offline-old", "status": "failed", "offline": True,
                            "hparams_path": hparams_path, "started": "2026-01-01T00:00:00"})
        (run / "run.json").write_text(valid if record is None else record)
        if hparams:
            (run / "hparams.json").write_text(json.dumps({"task": {"project_name": "p"}}))
    return setup


def sweep_file(text: str) -> Callable[[Path], None]:
    """A setup that writes ``sweep = <text>`` to experiments/01_toy/sweep.py."""
    def setup(toy: Path) -> None:
        (toy.parent / "sweep.py").write_text(f"sweep = {text}\n")
    return setup


def existing_study(hparams_path: str | None, space: dict, seeds: list[int] | None = None) -> Callable[[Path], Env]:
    """A setup with sweep.py over ``config.lr`` and the study its sweep would continue, made (as a
    sweep makes it) for ``hparams_path`` (None: the toy's), ``space`` and ``seeds``; ``TOY`` is
    the toy's resolved path."""
    def setup(toy: Path) -> Env:
        from torch_lab.sweep.study import open_study
        from torch_lab.sweep.space import read_sweep

        sweep_file('{"trials": 2, "space": {"config.lr": [0.1, 0.2]}}')(toy)
        folder = toy.parents[2] / "data" / "artifacts" / "sweeps" / "01_toy-hparams-sweep"
        folder.mkdir(parents=True)
        sweep = read_sweep(toy.parent / "sweep.py")
        sweep.direction, sweep.space, sweep.seeds = "minimize", space, seeds
        open_study(sweep, folder.name, folder, False, Path(hparams_path or toy))
        return {"TOY": str(toy.resolve())}
    return setup


def sweeps_file(toy: Path) -> None:
    """sweep.py, and an artifacts root whose ``sweeps`` is a file."""
    sweep_file('{"trials": 1, "space": {"config.lr": [0.1]}}')(toy)
    root = toy.parents[2] / "data" / "artifacts"
    root.mkdir(parents=True)
    (root / "sweeps").write_text("not a directory\n")


def lock_directory(toy: Path) -> None:
    """A failed run ``offline-old`` whose ``.lock`` is a directory, not a file."""
    failed_run(None)(toy)
    (toy.parents[2] / "data" / "artifacts" / "01_toy-hparams-offline-old" / ".lock").mkdir()


def pruned_run(toy: Path) -> None:
    """A failed run ``offline-old`` as ``runs prune --keep best`` leaves it: best.ckpt, no
    last.ckpt."""
    failed_run(None)(toy)
    checkpoints = toy.parents[2] / "data" / "artifacts" / "01_toy-hparams-offline-old" / "checkpoints"
    (checkpoints / "last.ckpt").rename(checkpoints / "best.ckpt")


def recorded_run(history: str) -> Callable[[Path], None]:
    """A completed run ``offline-r`` under the artifacts root with ``history`` as history.csv."""
    def setup(toy: Path) -> None:
        run = toy.parents[2] / "data" / "artifacts" / "r-offline-r"
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"task_id": "offline-r", "task_name": "r", "status": "completed"}))
        (run / "hparams.json").write_text(json.dumps({"config": {"lr": 0.1}}))
        (run / "history.csv").write_text(history)
    return setup


def _train(*args: str) -> tuple[str, ...]:
    return ("train", HPARAMS, *args)


CASES: list[Case] = [
    # ---- the command line and the hparams script (before torch is imported)
    Case("path_missing", "hparams path does not exist", ("train", "experiments/01_toy/nope.py"),
         "train: error: experiments/01_toy/nope.py: no such file"),
    Case("path_is_directory", "hparams path is a directory", ("train", "experiments/01_toy"),
         "train: error: experiments/01_toy: is a directory; give the hparams script, e.g. "
         "experiments/01_toy/hparams.py"),
    Case("path_not_py", "hparams path is not a .py file", ("train", "experiments/01_toy/hparams.txt"),
         "train: error: experiments/01_toy/hparams.txt: not a Python script (.py)",
         setup=rename_hparams),
    Case("hparams_raises", "hparams script raises", _train(),
         f"train: error: {HPARAMS}: raised ValueError: bad idea",
         setup=hparams_text("raise ValueError('bad idea')\n")),
    Case("hparams_syntax_error", "hparams script has a syntax error", _train(),
         f"train: error: {HPARAMS}: syntax error at line 1: '{{' was never closed",
         setup=hparams_text("hparams = {\n")),
    Case("hparams_missing", "hparams script defines no `hparams`", _train(),
         f"train: error: {HPARAMS}: defines no 'hparams' dict", setup=hparams_text("params = {}\n")),
    Case("hparams_not_dict", "`hparams` is not a dict", _train(),
         f"train: error: {HPARAMS}: hparams must be a dict, got list",
         setup=hparams_text("hparams = [1, 2]\n")),
    Case("unknown_top_level_key", "misspelled top-level key", _train(),
         f"train: error: {HPARAMS}: unknown top-level key 'trainr' (did you mean 'trainer'?)",
         setup=hparams_text("hparams = {'task': {'project_name': 'p'}, 'trainr': {}}\n")),
    Case("unknown_checkpoint_key", "misspelled `checkpoint` key", _train(),
         f"train: error: {HPARAMS}: unknown key 'checkpoint.checkpoint_taskid' "
         "(did you mean 'checkpoint_task_id'?)",
         setup=hparams_text("hparams = {'task': {'project_name': 'p'}, "
                            "'checkpoint': {'checkpoint_taskid': 'abc'}}\n")),
    Case("trainer_init_not_dict", "`trainer.init` is not a dict", _train(),
         f"train: error: {HPARAMS}: trainer.init must be a dict, got list",
         setup=hparams_text("hparams = {'task': {'project_name': 'p'}, 'trainer': {'init': [1]}}\n")),
    Case("no_project_name", "`task.project_name` missing", _train(),
         f"train: error: {HPARAMS}: task.project_name must be a non-empty string",
         setup=hparams_text("hparams = {'task': {}}\n")),
    Case("not_plain_data", "an hparams value that is not plain data", _train(),
         f"train: error: {HPARAMS}: hparams.config.loss is a type; hparams hold plain data only "
         "(numbers, strings, bools, None, lists, dicts): name classes by string and resolve them "
         "in __main__.py",
         setup=hparams_text("hparams = {'task': {'project_name': 'p'}, 'config': {'loss': float}}\n")),
    Case("monitor_mode", "`monitor.mode` neither min nor max", _train("--set", "monitor.mode='maximum'"),
         f"train: error: {HPARAMS}: monitor.mode must be 'min' or 'max', got 'maximum'"),
    Case("set_missing_key", "`--set` on a missing key", _train("--set", "config.lrr=0.1"),
         f"train: error: --set config.lrr: no key 'config.lrr' in {HPARAMS} (did you mean 'lr'?)"),
    Case("set_malformed_value", "`--set` with a malformed value", _train("--set", "config.lr=[0.1"),
         "train: error: --set config.lr: cannot parse '[0.1' as a Python literal ('[' was never "
         "closed (<unknown>, line 1))"),
    Case("set_not_key_value", "`--set` without `=`", _train("--set", "config.lr"),
         "train: error: --set 'config.lr': expected KEY=VALUE, e.g. config.learning_rate=3e-3"),
    Case("seed_out_of_range", "`seed` outside NumPy's range", _train("--set", "seed=4294967296"),
         f"train: error: {HPARAMS}: seed must be an int in [0, 2**32) (NumPy's range) or None "
         "(None: a random seed, recorded)"),
    Case("hparams_too_deep", "hparams nested 2,000 levels deep", _train(),
         f"train: error: {HPARAMS}: hparams.config.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a... nests "
         "more than 50 levels deep; hparams hold plain, shallow data",
         setup=hparams_text("d = deep = {}\nfor _ in range(2000):\n    deep['a'] = deep = {}\n"
                            "hparams = {'task': {'project_name': 'p'}, 'config': d}\n")),
    Case("hparams_sys_exit", "hparams script calls `sys.exit`", _train(),
         f"train: error: {HPARAMS}: called sys.exit(0) while torch-lab imported it; experiment code "
         "must not exit", setup=hparams_text("import sys\nsys.exit(0)\n")),
    Case("hparams_os_exit", "hparams script calls `os._exit`", _train(),
         f"train: error: {HPARAMS}: called os._exit(3) while torch-lab imported it; experiment code "
         "must not exit", setup=hparams_text("import os\nos._exit(3)\n")),
    # ---- __main__.py, read without being executed (before torch is imported)
    Case("main_missing", "`__main__.py` missing", _train(),
         f"train: error: {MAIN}: missing; the experiment folder needs a __main__.py",
         setup=remove_main),
    Case("main_syntax_error", "`__main__.py` has a syntax error", _train(),
         f"train: error: {MAIN}: syntax error at line 2: expected ':'",
         setup=main_text("import torch\ndef train_config(hparams)\n    return {}\n")),
    Case("main_raises_on_import", "`__main__.py` raises on import", _train(),
         f"train: error: {MAIN}: raised ModuleNotFoundError: No module named 'not_a_module_anywhere'",
         setup=main_text("import not_a_module_anywhere\n\ndef train_config(hparams):\n    return {}\n")),
    Case("no_train_config", "`__main__.py` lacks `train_config`", _train(),
         f"train: error: {MAIN}: no function 'train_config' defined",
         setup=edit_main("def train_config(hparams):", "def train_configuration(hparams):")),
    Case("no_infer_config", "`__main__.py` lacks `infer_config`", ("infer", HPARAMS, "5"),
         f"infer: error: {MAIN}: no function 'infer_config' defined",
         setup=edit_main("def infer_config(hparams, count):", "def predict_config(hparams, count):")),
    Case("infer_too_many_args", "`infer` with too many extra arguments", ("infer", HPARAMS, "1", "2"),
         f"infer: error: {MAIN}: infer_config(hparams, count) takes different arguments than the 2 "
         "given after the hparams path: ['1', '2']"),
    Case("infer_weights_missing", "`infer_config` returns `weights` naming a missing file",
         ("infer", HPARAMS, "5", "--offline"),
         f"infer: error: {MAIN}: infer_config's 'weights' names /nonexistent/model.pt: no such file",
         setup=edit_main("batch_size=8),\n    )", 'batch_size=8),\n        weights="/nonexistent/model.pt",\n    )'),
         needs_main_executed=True, slow=True),
    Case("infer_too_few_args", "`infer` with too few extra arguments", ("infer", HPARAMS),
         f"infer: error: {MAIN}: infer_config(hparams, count) takes different arguments than the 0 "
         "given after the hparams path: []"),
    Case("export_format_unknown", "`export-model --format` that does not exist",
         ("export-model", HPARAMS, "model.ckpt", "--format", "tflite"),
         "export-model: error: --format tflite: unknown format (choose from torchscript, exported, onnx)"),
    Case("export_task_unknown", "`export-model` of an unknown task", ("export-model", HPARAMS, "offline-nope"),
         "export-model: error: checkpoint task 'offline-nope': no checkpoint 'best' or 'last' found (looked "
         "in its run directory under the artifacts root, its ClearML offline session and, when online, "
         "the ClearML server)", needs_main_executed=True),
    Case("export_out_directory", "`export-model --out` that is a directory",
         ("export-model", HPARAMS, "model.ckpt", "--out", "experiments"),
         "export-model: error: --out experiments: is a directory; give a file name, e.g. experiments/model.pt",
         setup=lambda toy: toy_checkpoint(toy.parents[2] / "model.ckpt"), needs_main_executed=True, slow=True),
    Case("export_not_exportable", "a model `torch.export` cannot export (data-dependent control flow)",
         ("export-model", HPARAMS, "model.ckpt", "--format", "exported", "--offline"),
         "export-model: run failed: RuntimeError: torch.export failed: Could not guard on data-dependent "
         "expression Eq(u0, 1) (unhinted: Eq(u0, 1)); try --format torchscript instead (traceback: "
         "{run}/traceback.txt)", exit_code=1, before_training=False, needs_main_executed=True, slow=True,
         setup=lambda toy: (toy_checkpoint(toy.parents[2] / "model.ckpt"), edit_main(
             "def train_config(hparams):", "class Branchy(nn.Linear):  # data-dependent control flow\n"
             "    def forward(self, x):\n        return super().forward(x) if x.sum() > 0 else -super().forward(x)"
             "\n\n\ndef train_config(hparams):")(toy), edit_main("nn.Linear(4, 2),\n        loss_function",
                                                                  "Branchy(4, 2),\n        loss_function")(toy))[-1]),
    Case("export_onnx_no_mapping", "a model with an op ONNX export has no function for (`torch.cummax`)",
         ("export-model", HPARAMS, "model.ckpt", "--format", "onnx", "--offline"),
         "export-model: run failed: RuntimeError: ONNX export failed: No ONNX function found for "
         "aten.cummax.default; try --format exported instead (traceback: {run}/traceback.txt)",
         exit_code=1, before_training=False, needs_main_executed=True, slow=True,
         setup=lambda toy: (toy_checkpoint(toy.parents[2] / "model.ckpt"), edit_main(
             "def train_config(hparams):", "class CumMax(nn.Linear):  # aten.cummax: no ONNX function\n"
             "    def forward(self, x):\n        return torch.cummax(super().forward(x), dim=1).values"
             "\n\n\ndef train_config(hparams):")(toy), edit_main("nn.Linear(4, 2),\n        loss_function",
                                                                  "CumMax(4, 2),\n        loss_function")(toy))[-1]),
    Case("export_onnx_extra_missing", "`export-model --format onnx` without the `onnx` extra installed",
         ("export-model", HPARAMS, "model.ckpt", "--format", "onnx", "--offline"),
         "export-model: error: --format onnx needs onnx, onnxscript, onnxruntime: pip install 'torch-lab[onnx]'",
         setup=lambda toy: (toy_checkpoint(toy.parents[2] / "model.ckpt"), without_onnx(toy))[-1],
         needs_main_executed=True, slow=True),
    Case("trainer_init_unknown_arg", "`trainer.init` key that `pl.Trainer` does not take",
         _train("--set", "trainer.init.max_epoch=1"),
         f"train: error: {HPARAMS}: trainer.init.max_epoch is not an argument of Trainer "
         "(did you mean 'max_epochs'?)"),
    Case("trainer_init_owned_arg", "`trainer.init` key torch-lab sets itself",
         _train("--set", "trainer.init.logger=False"),
         f"train: error: {HPARAMS}: trainer.init.logger is set by torch-lab; remove it (return your "
         "own Lightning loggers as train_config's 'loggers')"),
    Case("trainer_fit_unknown_arg", "`trainer.fit` key that `Trainer.fit` does not take",
         _train("--set", "trainer.fit.ckpt=None"),
         f"train: error: {HPARAMS}: trainer.fit.ckpt is not an argument of Trainer.fit "
         "(did you mean 'ckpt_path'?)"),
    Case("trainer_predict_unknown_arg", "`trainer.predict` key that `Trainer.predict` does not take",
         ("infer", HPARAMS, "5", "--set", "trainer.predict.return_prediction=True"),
         f"infer: error: {HPARAMS}: trainer.predict.return_prediction is not an argument of "
         "Trainer.predict (did you mean 'return_predictions'?)"),
    Case("max_epochs_str", "`trainer.init` value of the wrong type (`max_epochs='5'`)",
         _train("--set", "trainer.init.max_epochs='5'"),
         f"train: error: {HPARAMS}: trainer.init.max_epochs must be int or None, got str '5'"),
    Case("max_epochs_float", "`trainer.init.max_epochs=2.5`", _train("--set", "trainer.init.max_epochs=2.5"),
         f"train: error: {HPARAMS}: trainer.init.max_epochs must be int or None, got float 2.5"),
    Case("print_hparams_trainer_key", "`--print-hparams` with a `trainer.init` key that `pl.Trainer` does not take",
         _train("--print-hparams", "--set", "trainer.init.max_epoch=3"),
         f"train: error: {HPARAMS}: trainer.init.max_epoch is not an argument of Trainer "
         "(did you mean 'max_epochs'?)"),
    Case("print_hparams_max_epochs_float", "`--print-hparams` with `trainer.init.max_epochs=2.5`",
         _train("--print-hparams", "--set", "trainer.init.max_epochs=2.5"),
         f"train: error: {HPARAMS}: trainer.init.max_epochs must be int or None, got float 2.5"),
    # ---- sweeps (before any task: nothing left behind but the sweep folder)
    Case("sweep_grid_too_large", "a grid sweep over a huge range", _train("--sweep", SWEEP, "--offline"),
         f"train: error: {SWEEP}: the grid has 1,000,000,001 points, over the 10,000 a grid sweep may have; "
         "use larger steps, fewer values, or the tpe or random sampler",
         setup=sweep_file('{"trials": 2, "sampler": "grid", "space": {"config.lr": {"low": 0, "high": 10**9}}}')),
    Case("sweep_high_inf", "a sweep range with `high: inf`", _train("--sweep", SWEEP, "--offline"),
         f"train: error: {SWEEP}: space.config.lr: low and high must be finite, got low=0.1 high=inf",
         setup=sweep_file('{"trials": 2, "space": {"config.lr": {"low": 0.1, "high": float("inf")}}}')),
    Case("sweep_max_epochs_float", "a sweep of `max_epochs` over a float range", _train("--sweep", SWEEP, "--offline"),
         f"train: error: {SWEEP}: space: {HPARAMS}: trainer.init.max_epochs must be int or None, got float 0.5",
         setup=sweep_file('{"trials": 2, "space": {"trainer.init.max_epochs": {"low": 0.5, "high": 2.5}}}')),
    Case("sweep_lr_find", "`--sweep` with `--lr-find`", _train("--sweep", SWEEP, "--lr-find"),
         "train: error: --sweep and --lr-find cannot be combined: find the learning rate with --lr-find "
         "first, then sweep around it", setup=sweep_file('{"trials": 2, "space": {"config.lr": [0.1]}}')),
    Case("sweep_print_two_files", "`--sweep` with two hparams files and `--print-hparams`",
         ("train", HPARAMS, HPARAMS, "--sweep", SWEEP, "--print-hparams"),
         f"train: error: --sweep takes a single hparams file, got 2: {HPARAMS}, {HPARAMS}",
         setup=sweep_file('{"trials": 2, "space": {"config.lr": [0.1]}}')),
    Case("sweep_other_experiment", "a sweep whose study belongs to another hparams file",
         _train("--sweep", SWEEP, "--offline"),
         f"train: error: {SWEEP}: the study in data/artifacts/sweeps/01_toy-hparams-sweep is a sweep of "
         "/elsewhere/01_toy/hparams.py, not of {TOY}; rename sweep.py or remove "
         "data/artifacts/sweeps/01_toy-hparams-sweep to start afresh",
         setup=existing_study("/elsewhere/01_toy/hparams.py", {"config.lr": {"type": "categorical", "choices": [0.1, 0.2]}}), slow=True),
    Case("sweep_space_changed", "a sweep whose space changed since its study began",
         _train("--sweep", SWEEP, "--offline"),
         f"train: error: {SWEEP}: space.config.lr is {{'type': 'categorical', 'choices': [0.1, 0.2]}}, but the "
         "study in data/artifacts/sweeps/01_toy-hparams-sweep has {'type': 'categorical', 'choices': [0.1, "
         "0.3]}; the space of a study cannot change; rename sweep.py or remove "
         "data/artifacts/sweeps/01_toy-hparams-sweep to start afresh",
         setup=existing_study(None, {"config.lr": {"type": "categorical", "choices": [0.1, 0.3]}}), slow=True),
    Case("sweep_seeds_string", "a sweep's `seeds` as a string", _train("--sweep", SWEEP, "--offline"),
         f"train: error: {SWEEP}: seeds must be a non-empty list of distinct ints, e.g. [0, 1, 2], got '0,1'",
         setup=sweep_file('{"trials": 2, "seeds": "0,1", "space": {"config.lr": [0.1]}}')),
    Case("sweep_seeds_empty", "a sweep's `seeds` empty", _train("--sweep", SWEEP, "--offline"),
         f"train: error: {SWEEP}: seeds must be a non-empty list of distinct ints, e.g. [0, 1, 2], got []",
         setup=sweep_file('{"trials": 2, "seeds": [], "space": {"config.lr": [0.1]}}')),
    Case("sweep_seeds_queue", "a sweep over seeds with `--queue`", _train("--sweep", SWEEP, "--queue", "gpu"),
         f"train: error: {SWEEP}: seeds: a sweep over seeds runs here only, not with --queue (ClearML's optimizer "
         "runs one task per trial)",
         setup=sweep_file('{"trials": 2, "seeds": [0, 1], "space": {"config.lr": [0.1]}}'), slow=True),
    Case("sweep_seeds_changed", "a sweep whose seeds changed since its study began",
         _train("--sweep", SWEEP, "--offline"),
         f"train: error: {SWEEP}: seeds is none (one run a trial), but the study in data/artifacts/sweeps/01_toy-hparams-sweep has "
         "[0, 1]; the seeds of a study cannot change; rename sweep.py or remove "
         "data/artifacts/sweeps/01_toy-hparams-sweep to start afresh",
         setup=existing_study(None, {"config.lr": {"type": "categorical", "choices": [0.1, 0.2]}}, [0, 1]), slow=True),
    Case("sweeps_folder_is_file", "the artifacts root's `sweeps` is a file", _train("--sweep", SWEEP, "--offline"),
         "train: error: sweep folder data/artifacts/sweeps/01_toy-hparams-sweep: cannot be created "
         "(data/artifacts/sweeps is not a directory); set TORCH_LAB_ARTIFACTS to a writable directory",
         setup=sweeps_file, slow=True),
    Case("seeds_more_no_group", "`--seeds +3` with no runs of these hparams to add seeds to",
         _train("--offline", "--seeds", "+3"),
         f"train: error: --seeds +3: no runs of {HPARAMS} with these hparams under data/artifacts to add seeds to; "
         "start the group with --seeds N (runs --group lists the groups)"),
    Case("artifacts_unwritable", "artifacts directory cannot be written", _train(),
         "train: error: artifacts directory blocker/artifacts: cannot hold run directories "
         "(blocker is not a directory); set TORCH_LAB_ARTIFACTS to a writable directory",
         setup=unwritable_artifacts),
    # ---- what train_config returns, checkpoints, ClearML, the disk (after __main__.py ran)
    Case("config_not_dict", "`train_config` returns a non-dict", _train(),
         f"train: error: {MAIN}: train_config must return a dict, got list",
         setup=main_text("def train_config(hparams):\n    return [1]\n"), needs_main_executed=True),
    Case("config_no_module", "`train_config` returns no `module`", _train(),
         f"train: error: {MAIN}: train_config returned no 'module'",
         setup=edit_main("        module=module,\n", ""), needs_main_executed=True, slow=True),
    Case("config_no_dataloaders", "`train_config` returns no `train_dataloaders`", _train(),
         f"train: error: {MAIN}: train_config returned no 'train_dataloaders'",
         setup=edit_main("train_dataloaders=(", "train_dataloaders=None and ("),
         needs_main_executed=True, slow=True),
    Case("config_wrong_module_class", "`module` not a LightningModule", _train(),
         f"train: error: {MAIN}: train_config: 'module' must be a pytorch_lightning LightningModule (e.g. "
         "torch_lab.modules.TrainLabModule), got Linear",
         setup=edit_main("module = (SignalledModule if at else TrainLabModule)(",
                         "module = nn.Linear(4, 2); (SignalledModule if at else TrainLabModule)("),
         needs_main_executed=True, slow=True),
    Case("config_module_no_training_step", "`module` without a `training_step`", _train(),
         f"train: error: {MAIN}: train_config: 'module' (LabModule) has no training_step; train fits with it",
         setup=edit_main("module = (SignalledModule if at else TrainLabModule)(",
                         "module = LabModule(nn.Linear(4, 2)); (SignalledModule if at else TrainLabModule)("),
         needs_main_executed=True, slow=True),
    Case("config_lightning_package_module", "`module` from `lightning.pytorch` (`import lightning`)", _train(),
         f"train: error: {MAIN}: train_config: 'module' is {LIGHTNING_PACKAGE.format(kind='LightningModule')}",
         setup=edit_main("module = (SignalledModule if at else TrainLabModule)(",
                         "import lightning.pytorch as L\n    module = type('Mine', (L.LightningModule,), {})(); "
                         "(SignalledModule if at else TrainLabModule)("),
         needs_main_executed=True),
    Case("config_lightning_package_callback", "a callback from `lightning.pytorch`", _train(),
         f"train: error: {MAIN}: train_config: 'callbacks[0]' is {LIGHTNING_PACKAGE.format(kind='Callback')}",
         setup=edit_main('    result["callbacks"] = callbacks\n',
                         '    import lightning.pytorch as L\n'
                         '    result["callbacks"] = [L.callbacks.EarlyStopping("loss/val"), *callbacks]\n'),
         needs_main_executed=True, slow=True),
    Case("config_lightning_package_logger", "a logger from `lightning.pytorch`", _train(),
         f"train: error: {MAIN}: train_config: 'loggers[0]' is {LIGHTNING_PACKAGE.format(kind='Logger')}",
         setup=edit_main('    result["callbacks"] = callbacks\n',
                         '    result["callbacks"] = callbacks\n    import lightning.pytorch as L\n'
                         '    result["loggers"] = [L.loggers.CSVLogger("logs")]\n'),
         needs_main_executed=True, slow=True),
    Case("config_logger_not_logger", "`loggers` holding something else than a Lightning logger",
         _train(),
         f"train: error: {MAIN}: train_config: 'loggers[0]' must be a pytorch_lightning Logger (or a "
         "function of the run directory returning one), got str",
         setup=edit_main('    result["callbacks"] = callbacks\n',
                         '    result["callbacks"] = callbacks\n    result["loggers"] = ["tensorboard"]\n'),
         needs_main_executed=True, slow=True),
    Case("config_logger_factory_not_logger", "a `loggers` function returning no Lightning logger",
         _train(),
         f"train: run failed: UserError: {MAIN}: train_config's 'loggers[0]' returned PosixPath, not "
         "a pytorch_lightning Logger (traceback: {run}/traceback.txt)",
         setup=edit_main('    result["callbacks"] = callbacks\n',
                         '    result["callbacks"] = callbacks\n    result["loggers"] = [lambda run: run]\n'),
         exit_code=1, needs_main_executed=True, before_training=False, slow=True),
    Case("config_logger_dict_not_logger", "`loggers` as a dict holding something else than a Lightning logger",
         _train(),
         f'train: error: {MAIN}: train_config: \'loggers["a"]\' must be a pytorch_lightning Logger (or a '
         "function of the run directory returning one), got int",
         setup=edit_main('    result["callbacks"] = callbacks\n',
                         '    result["callbacks"] = callbacks\n    result["loggers"] = {"a": 1}\n'),
         needs_main_executed=True, slow=True),
    Case("config_loggers_one_folder", "two `loggers` writing one folder", _train(),
         f"train: error: {MAIN}: train_config's 'loggers[0]' and 'loggers[1]' both write logs/toy/v1; "
         "give each logger its own folder",
         setup=edit_main('    result["callbacks"] = callbacks\n',
                         '    result["callbacks"] = callbacks\n'
                         '    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger\n'
                         '    result["loggers"] = [CSVLogger("logs", name="toy", version="v1"), '
                         'TensorBoardLogger("logs", name="toy", version="v1")]\n'),
         needs_main_executed=True, slow=True),
    Case("config_csv_logger_of_another_run", "a `CSVLogger` folder holding another run's metrics.csv",
         _train(),
         f"train: error: {MAIN}: train_config's 'loggers[0]' would replace csv_logs/toy/v1/metrics.csv, "
         "another run's log; give each run its own version (e.g. version=run.name in a function of the "
         "run directory)",
         setup=lambda toy: (edit_main('    result["callbacks"] = callbacks\n',
                                      '    result["callbacks"] = callbacks\n'
                                      '    from pytorch_lightning.loggers import CSVLogger\n'
                                      '    result["loggers"] = [CSVLogger("csv_logs", name="toy", version="v1")]\n'
                                      )(toy), another_runs_csv(toy))[0],
         needs_main_executed=True, slow=True),
    Case("empty_train_dataloader", "empty train dataloader", _train(),
         f"train: error: {MAIN}: train_config's train_dataloaders is empty (0 batches)",
         setup=edit_main("batch_size=16, shuffle=True,", "batch_size=100, drop_last=True, shuffle=True,"),
         needs_main_executed=True, slow=True),
    Case("corrupted_checkpoint", "corrupted checkpoint (`--test-only bad.ckpt`)",
         _train("--test-only", "bad.ckpt"),
         "train: error: checkpoint bad.ckpt: cannot be loaded (UnpicklingError: Unsupported operand 110)",
         setup=garbage_checkpoint, needs_main_executed=True),
    Case("truncated_checkpoint", "truncated checkpoint of a `checkpoint_task_id` (`infer`)",
         ("infer", HPARAMS, "5", "--set", "checkpoint.checkpoint_task_id='offline-cut'"),
         "infer: error: checkpoint data/artifacts/01_toy-hparams-offline-cut/checkpoints/last.ckpt: "
         "truncated (its end is missing: a copy or a save was cut short); copy it again or use another "
         "checkpoint",
         setup=truncated_task_checkpoint, needs_main_executed=True, slow=True),
    Case("main_sys_exit", "`__main__.py` calls `sys.exit` on import", _train(),
         f"train: error: {MAIN}: called sys.exit(None) while torch-lab imported it; experiment code "
         "must not exit", setup=edit_main("def points(n, seed):", "import sys\nsys.exit()\n\n\ndef points(n, seed):"),
         needs_main_executed=True, slow=True),
    Case("train_config_sys_exit", "`train_config` calls `sys.exit`", _train(),
         f"train: error: {MAIN}: train_config called sys.exit(3); it must return its dict",
         setup=edit_main("    config = hparams[\"config\"]\n", "    import sys\n    sys.exit(3)\n"),
         needs_main_executed=True, slow=True),
    Case("tags_str", "`task.tags` a string, not a list", _train("--set", "task.tags='baseline'"),
         f"train: error: {HPARAMS}: task.tags must be a list of str or None, got str 'baseline'",
         needs_main_executed=True, slow=True),
    Case("task_type_bogus", "`task.task_type` ClearML does not know", _train("--set", "task.task_type='bogus'"),
         f"train: error: {HPARAMS}: task.task_type must be one of 'training', 'testing', 'inference', "
         "'data_processing', 'application', 'monitor', 'controller', 'optimizer', 'service', 'qc', "
         "'custom', got str 'bogus'", needs_main_executed=True, slow=True),
    Case("resume_corrupted_run_json", "`--resume` of a run whose run.json is truncated",
         _train("--resume", "offline-old"),
         "train: error: data/artifacts/01_toy-hparams-offline-old/run.json: cannot be read (not valid "
         "JSON: Expecting ',' delimiter: line 1 column 27 (char 26))",
         setup=failed_run('{"task_id": "offline-old" "status'),
         needs_main_executed=True, slow=True),
    Case("resume_run_json_too_deep", "`--resume` of a run whose run.json nests 100,000 lists",
         _train("--resume", "offline-old"),
         "train: error: data/artifacts/01_toy-hparams-offline-old/run.json: cannot be read (not valid "
         "JSON: nested more than 100 levels deep)",
         setup=failed_run('{"task_id": "offline-old", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
         needs_main_executed=True, slow=True),
    Case("resume_missing_hparams_json", "`--resume` of a run without hparams.json",
         _train("--resume", "offline-old"),
         "train: error: --resume offline-old: data/artifacts/01_toy-hparams-offline-old/hparams.json: "
         "cannot be read (No such file or directory)",
         setup=failed_run(None, hparams=False), needs_main_executed=True, slow=True),
    Case("resume_pattern", "`--resume '*'`: a pattern, not a task id", _train("--resume", "*"),
         "train: error: --resume task id '*': a task id or the start of one, not a pattern",
         setup=failed_run(None), needs_main_executed=True),
    Case("resume_other_hparams", "`--resume` of a run of another hparams file (by the start of its id)",
         _train("--resume", "old"),
         "train: error: --resume old: that run is of experiments/02_long/hparams.py, not "
         f"{HPARAMS}; give its hparams file, or add --resume-other to resume it with this one",
         setup=failed_run(None, of="experiments/02_long/hparams.py"), needs_main_executed=True, slow=True),
    Case("resume_lock_is_directory", "`--resume` of a run whose `.lock` is a directory",
         _train("--resume", "offline-old"),
         "train: error: --resume offline-old: data/artifacts/01_toy-hparams-offline-old/.lock: cannot be "
         "the run's lock file (Is a directory); remove it", setup=lock_directory, needs_main_executed=True, slow=True),
    Case("resume_pruned_run", "`--resume` of a run without last.ckpt (`runs prune --keep best` removed it)",
         _train("--resume", "offline-old"),
         "train: error: --resume offline-old: data/artifacts/01_toy-hparams-offline-old/checkpoints/last.ckpt "
         "is missing, nothing to resume from (runs prune --keep best removes it); to train on from another "
         "checkpoint of the run, set checkpoint.checkpoint_task_id in a new run",
         setup=pruned_run, needs_main_executed=True, slow=True),  # default suite: tests/unit/runs/test_tidy.py
    Case("progress_interval_not_a_number", "`TORCH_LAB_PROGRESS_INTERVAL=abc`", _train("--offline"),
         "train: error: TORCH_LAB_PROGRESS_INTERVAL='abc': expected the seconds between progress "
         "lines, a number >= 0", setup=lambda toy: {"TORCH_LAB_PROGRESS_INTERVAL": "abc"}),
    Case("runs_plot_not_a_number", "`runs plot` of a history.csv holding a value that is not a number",
         ("runs", "plot", "offline-r"),
         "runs: error: data/artifacts/r-offline-r/history.csv: line 3: loss/val is 'abc', not a number",
         setup=recorded_run("epoch,loss/val\n0,0.5\n1,abc\n")),
    Case("runs_plot_out_directory", "`runs plot --out` a directory", ("runs", "plot", "offline-r", "--out", "experiments"),
         "runs: error: --out experiments: is a directory; give a file, e.g. experiments/runs.png",
         setup=recorded_run("epoch,loss/val\n0,0.5\n")),
    Case("runs_columns_unknown", "`runs --columns` naming no hparams key", ("runs", "--columns", "nope"),
         "runs: error: --columns nope: is no hparams key of these runs", setup=recorded_run("epoch\n")),
    Case("cache_dir_is_file", "`CLEARML_CACHE_DIR` is a file", _train("--offline"),
         "train: error: CLEARML_CACHE_DIR cache-file: not a directory (ClearML keeps its cache and "
         "offline sessions there)", setup=file_as_cache_dir, needs_main_executed=True, slow=True),
    Case("config_file_missing", "`CLEARML_CONFIG_FILE` names a missing file", _train(),
         "train: error: CLEARML_CONFIG_FILE nowhere/clearml.conf: no such file; fix the path, unset "
         "it, or run with --offline", setup=lambda toy: {"CLEARML_CONFIG_FILE": "nowhere/clearml.conf"},
         needs_main_executed=True, slow=True),
    Case("clearml_conf_malformed", "malformed clearml.conf", _train(),
         "train: error: ClearML configuration: Failed parsing clearml.conf (ParseSyntaxException): (at "
         "char 21, line:3, col:1)",
         setup=malformed_clearml_conf, needs_main_executed=True, slow=True),
    Case("server_not_clearml", "ClearML server address answers HTTP 404 (not ClearML)", _train(),
         "train: error: ClearML server {CLEARML_API_HOST} answered, but not as a ClearML API server "
         "(HTTP 404 for /debug.ping); check api_server in clearml.conf or CLEARML_API_HOST",
         setup=not_clearml_server, needs_main_executed=True, slow=True),
    Case("server_unreachable", "ClearML server unreachable", _train(),
         "train: error: ClearML server {CLEARML_API_HOST} is unreachable ([Errno 111] Connection "
         "refused); check clearml.conf or the CLEARML_API_* variables, or run with --offline",
         setup=refused_server, needs_main_executed=True),
    Case("disk_full", "artifacts directory full (a file size limit stands in for ENOSPC)",
         _train("--offline"),
         "train: run failed: cannot write {run}/checkpoints/best.ckpt: File too large (the disk is "
         "full, or over a quota or file size limit) (traceback: {run}/traceback.txt)",
         exit_code=1, file_size_limit=FULL_DISK_BYTES, before_training=False, needs_main_executed=True, slow=True),
    Case("nan_val_loss", "validation loss NaN (the monitored metric)",
         _train("--offline", "--set", "config.nan_val_at_epoch=1"),
         "train: run failed: FloatingPointError: NaN guard: the monitored loss/val is nan at epoch 1 "
         "(validation); stopped before checkpointing it (traceback: {run}/traceback.txt)",
         exit_code=1, before_training=False, needs_main_executed=True, slow=True),
    Case("monitor_misspelt", "`monitor.metric` that is never logged", _train("--offline", "--set",
                                                                            "monitor.metric='loss/vall'"),
         f"train: run failed: UserError: {HPARAMS}: monitor.metric 'loss/vall' is not logged (did you "
         "mean 'loss/val'?); logged: accuracy/val, loss/val (traceback: {run}/traceback.txt)",
         exit_code=1, before_training=False, needs_main_executed=True, slow=True),
    Case("monitor_abbreviated", "`monitor.metric` abbreviated (`acc/val` for `accuracy/val`)",
         _train("--offline", "--set", "monitor.metric='acc/val'"),
         f"train: run failed: UserError: {HPARAMS}: monitor.metric 'acc/val' is not logged (did you "
         "mean 'accuracy/val'?); logged: accuracy/val, loss/val (traceback: {run}/traceback.txt)",
         exit_code=1, before_training=False, needs_main_executed=True, slow=True),
    Case("monitor_never_logged", "`monitor.metric` that no epoch logs, close to no logged name",
         _train("--offline", "--set", "monitor.metric='grad/norm'"),
         f"train: run failed: UserError: {HPARAMS}: monitor.metric 'grad/norm' is not logged; logged: "
         "accuracy/train, accuracy/val, loss/train, loss/val (traceback: {run}/traceback.txt)",
         exit_code=1, before_training=False, needs_main_executed=True, slow=True),
    Case("worker_raises", "a dataloader worker raises", _train("--offline", "--set", "config.val_worker_raises=True"),
         "train: run failed: ValueError: bad sample (Caught ValueError in DataLoader worker process 0) "
         "(traceback: {run}/traceback.txt)",
         exit_code=1, before_training=False, needs_main_executed=True, slow=True),
]
