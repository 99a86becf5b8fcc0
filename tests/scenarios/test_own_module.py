"""The custom-module example (experiments/02_gan: a LightningModule of its own, optimised by hand
with two optimizers) through the real console scripts: it trains with torch-lab's run directory,
history, curves, checkpoints on its own metric, resumes bit for bit (both optimizers' states),
sweeps, infers and exports."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import REPO, run_cli, sets

GAN = REPO / "src" / "example_project" / "experiments" / "02_gan"
#: Small and deterministic: 4 training batches an epoch, two optimizer steps each.
SMALL = sets("config.train_size=256", "config.val_size=128", "trainer.init.max_epochs=3",
             "trainer.init.deterministic=True", "seed=0", "trainer.init.enable_progress_bar=False")

#: Appended to a copy of the example's __main__.py: STOP_AT="epoch,batch,moment,signal" sends the
#: run that signal at that training batch's end (moment "batch") or validation batch's end
#: ("validation"), as an interruption would.
STOPPER = '''

import os as _os
from pytorch_lightning import Callback as _Callback

_example_train_config = train_config


class _Stop(_Callback):
    def __init__(self, spec):
        epoch, batch, self.moment, signum = spec.split(",")
        self.at, self.signum, self.sent = (int(epoch), int(batch)), int(signum), False

    def _maybe(self, trainer, moment, batch_idx):
        if (not self.sent and not trainer.sanity_checking and moment == self.moment
                and (trainer.current_epoch, batch_idx) == self.at):
            self.sent = True
            _os.kill(_os.getpid(), self.signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._maybe(trainer, "batch", batch_idx)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._maybe(trainer, "validation", batch_idx)


def train_config(hparams):
    config = _example_train_config(hparams)
    if _os.environ.get("STOP_AT"):
        config["callbacks"] = [_Stop(_os.environ["STOP_AT"])]
    return config
'''


def runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "data" / "artifacts").glob("*/run.json"))


def record(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


def copy_with_stopper(folder: Path) -> Path:
    """A copy of the example whose train_config adds the STOP_AT callback; its hparams.py."""
    target = folder / "experiments" / "02_gan"
    shutil.copytree(GAN, target, ignore=shutil.ignore_patterns("__pycache__"))
    main = target / "__main__.py"
    main.write_text(main.read_text() + STOPPER)
    return target / "hparams.py"


def same(a: Any, b: Any) -> bool:
    """Equal bit for bit: tensors with ``torch.equal``, containers item by item."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def last_state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.slow
def test_own_module_trains_infers_and_exports(tmp_path: Path) -> None:
    """What torch-lab adds around a module it did not write: the run directory with history.csv
    and curves.png of what the module logs, best.ckpt on its own metric (checked at the sanity
    check), the full module's state and both optimizers' in the checkpoint; ``infer`` with the
    task's weights through the module's predict_step; ``export-model`` of its forward."""
    hparams = GAN / "hparams.py"
    result = run_cli("train", hparams, "--offline", *SMALL)
    assert result.returncode == 0, result.stderr
    assert "NaN guard off" not in result.stdout  # its training_step returns a loss: guarded
    [run] = runs(tmp_path)
    trained = record(run)
    assert trained["status"] == "completed" and trained["best"]["monitor"] == "gap/val"
    history = list(csv.DictReader(open(run / "history.csv")))
    assert [row["epoch"] for row in history] == ["0", "1", "2"]
    assert {"gap/val", "loss_d/train", "loss_g/train", "lr-Adam", "lr-Adam-1"} <= set(history[0])
    assert (run / "curves.png").stat().st_size > 0
    state = last_state(run)
    assert len(state["optimizer_states"]) == 2 and state["global_step"] == 3 * 4 * 2
    assert {key.split(".")[0] for key in state["state_dict"]} == {"generator", "discriminator"}

    inferred = run_cli("infer", hparams, "samples.csv", "50", "--offline",
                       *sets(f"checkpoint.checkpoint_task_id='{trained['task_id']}'", "checkpoint.checkpoint_name='best'"))
    assert inferred.returncode == 0, inferred.stderr
    rows = list(csv.DictReader(open(tmp_path / "samples.csv")))
    assert [int(r["index"]) for r in rows] == list(range(50)) and set(rows[0]) == {"index", "prediction_0",
                                                                                      "prediction_1"}
    exported = run_cli("export-model", hparams, trained["task_id"], "--offline", "--out", "gan.pt")
    assert exported.returncode == 0, exported.stderr
    generator = torch.jit.load(tmp_path / "gan.pt")
    assert generator(torch.zeros(3, 4)).shape == (3, 2)

    page = (REPO / "docs" / "how-to" / "own-module.md").read_text()  # its training step, as the docs show it
    shown = page.split("```python\n", 1)[1].split("```", 1)[0]
    assert textwrap.indent(shown, "    ") in (REPO / "src" / "example_project" / "gan.py").read_text()

    listed = run_cli("runs")
    assert listed.returncode == 0 and trained["task_id"] in listed.stdout

    refused = run_cli("train", hparams, "--offline", "--lr-find", "5")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"train: error: --lr-find: {GAN / '__main__.py'}: train_config's module optimises by hand "
        "(automatic_optimization is False); Lightning's learning-rate range test needs one optimizer that "
        "Lightning steps itself"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, matplotlib_config: Path) -> dict:
    """The last checkpoint of the example left alone (run once for this module's cases)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    hparams = copy_with_stopper(folder)
    with pytest.MonkeyPatch.context() as patch:  # as ``isolated`` sets a test up
        patch.chdir(folder)
        patch.delenv("TORCH_LAB_ARTIFACTS", raising=False)
        for name, value in (("CLEARML_CACHE_DIR", "clearml-cache"), ("HOME", "home")):
            patch.setenv(name, str(folder / value))
        patch.setenv("MPLCONFIGDIR", str(matplotlib_config))
        result = run_cli("train", hparams, "--offline", *SMALL)
    assert result.returncode == 0, result.stderr
    [run] = runs(folder)
    return last_state(run)


#: A hard kill inside epoch 2 (its last checkpoint: epoch 1's end), and SIGTERM during epoch 1's
#: validation (the run stops after that validation and its checkpoint).
STOPS = [("2,1,batch,9", -signal.SIGKILL, "running"), ("1,0,validation,15", 130, "interrupted")]


@pytest.mark.slow
@pytest.mark.parametrize("stop_at, returncode, status", STOPS, ids=["SIGKILL-epoch2", "SIGTERM-validation1"])
def test_own_module_resumes_bit_for_bit(uninterrupted: dict, tmp_path: Path, stop_at: str, returncode: int,
                                        status: str) -> None:
    """Stopped, then ``train --resume``: the module's weights and both optimizers' states equal the
    uninterrupted run's bit for bit (pinned seed), in the same task and run directory."""
    hparams = copy_with_stopper(tmp_path)
    stopped = run_cli("train", hparams, "--offline", *SMALL, env={"STOP_AT": stop_at})
    assert stopped.returncode == returncode, stopped.stderr
    [run] = runs(tmp_path)
    assert record(run)["status"] == status and last_state(run)["epoch"] == 1
    resumed = run_cli("train", hparams, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert runs(tmp_path) == [run] and record(run)["status"] == "completed"
    state = last_state(run)
    assert state["global_step"] == uninterrupted["global_step"] == 24
    assert same(state["state_dict"], uninterrupted["state_dict"])
    assert len(state["optimizer_states"]) == 2
    assert same(state["optimizer_states"], uninterrupted["optimizer_states"])
    assert [row["epoch"] for row in csv.DictReader(open(run / "history.csv"))] == ["0", "1", "2"]


@pytest.mark.slow
def test_own_module_sweep_of_two_trials(tmp_path: Path) -> None:
    """The example's sweep file, two trials, each a completed run scored on the module's gap/val."""
    result = run_cli("train", GAN / "hparams.py", "--sweep", GAN / "sweep.py", "--trials", "2", "--offline", *SMALL,
                     timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [record(run) for run in runs(tmp_path)]
    assert sorted(r["sweep"]["trial"] for r in records) == [0, 1]
    assert all(r["status"] == "completed" and r["best"]["monitor"] == "gap/val" for r in records)
    best = json.loads((tmp_path / "data" / "artifacts" / "sweeps" / "02_gan-hparams-sweep" / "best.json").read_text())
    assert best["objective"] == min(r["best"]["value"] for r in records)
