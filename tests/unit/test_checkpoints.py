"""Finding checkpoints by task id or path, and loading them safely."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import run_cli
from torch_lab.checkpoints import load_checkpoint, load_weights, resolve_checkpoint
from torch_lab.errors import UserError


def fake_run(root: Path, task_id: str, names: list[str]) -> Path:
    run = root / "data" / "artifacts" / f"exp-hparams-{task_id}"
    (run / "checkpoints").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"task_id": task_id}))
    for name in names:
        torch.save({"state_dict": nn.Linear(4, 2).state_dict()}, run / "checkpoints" / f"{name}.ckpt")
    return run


def test_path_and_task_id_references(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "abc", ["best", "last"])
    assert resolve_checkpoint(run / "checkpoints" / "last.ckpt") == run / "checkpoints" / "last.ckpt"
    assert resolve_checkpoint("abc").name == "best.ckpt"
    assert resolve_checkpoint("abc", "last").name == "last.ckpt"
    (run / "checkpoints" / "best.ckpt").unlink()
    assert resolve_checkpoint("abc").name == "last.ckpt"


def test_missing_references_name_what_was_looked_for(tmp_path: Path) -> None:
    fake_run(tmp_path, "abc", ["last"])
    with pytest.raises(UserError, match=r"^checkpoint nope/x\.ckpt: no such file$"):
        resolve_checkpoint("nope/x.ckpt")
    with pytest.raises(UserError, match=r"^checkpoint task 'abc': no checkpoint 'best' found"):
        resolve_checkpoint("abc", "best")
    with pytest.raises(UserError, match=r"^checkpoint task 'zzz': no checkpoint 'best' or 'last' found"):
        resolve_checkpoint("zzz")


def test_task_checkpoint_comes_from_the_offline_session_zip(toy: Path, tmp_path: Path) -> None:
    """With its run directory gone, a task's checkpoint is extracted from its offline session."""
    assert run_cli("train", toy, "--offline").returncode == 0
    [run] = (tmp_path / "data" / "artifacts").glob("*")
    record = json.loads((run / "run.json").read_text())
    original = (run / "checkpoints" / "best.ckpt").read_bytes()
    shutil.rmtree(run)
    shutil.rmtree(Path(record["offline_session"]).with_suffix(""))  # only the zip is left
    path = resolve_checkpoint(record["task_id"])
    assert path.name == "best.ckpt" and path.read_bytes() == original


def test_corrupt_and_mismatched_checkpoints_are_user_errors(tmp_path: Path) -> None:
    torn = tmp_path / "torn.ckpt"
    torch.save({"state_dict": nn.Linear(4, 2).state_dict()}, torn)
    torn.write_bytes(torn.read_bytes()[:100])
    with pytest.raises(UserError, match=r"^checkpoint torn\.ckpt: truncated \(its end is missing: a "
                       r"copy or a save was cut short\); copy it again or use another checkpoint$"):
        load_checkpoint(torn)
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": nn.Linear(4, 2).state_dict()}, good)
    with pytest.raises(UserError, match=r"^checkpoint good\.ckpt: does not fit the model \(weight is \(2, 4\), the model's \(2, 3\)"):
        load_weights(nn.Linear(3, 2), good)
    model = nn.Linear(4, 2)
    load_weights(model, good)
    assert torch.equal(model.weight, torch.load(good, weights_only=True)["state_dict"]["weight"])


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"optimizer": torch.optim.Adam}}, unsafe)
    with pytest.raises(UserError, match="cannot be loaded"):
        load_checkpoint(unsafe)


def test_a_whole_lightning_modules_checkpoint_loads_back(tmp_path: Path) -> None:
    """A LightningModule of the user's own (two sub-networks, two optimizers), saved by a real
    Trainer through AtomicCheckpointIO: its full state_dict loads into a fresh module (weights
    checked first), with every optimizer's state kept; a module of another shape is refused
    naming the key."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from example_project.gan import NoiseAndSamples, TinyGAN
    from torch_lab.checkpoints import fitting_state_dict
    from torch_lab.storage.checkpoint_io import AtomicCheckpointIO

    trained = TinyGAN(hidden=8)
    trainer = pl.Trainer(max_steps=4, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, limit_val_batches=0, plugins=[AtomicCheckpointIO()])
    trainer.fit(trained, DataLoader(NoiseAndSamples(16, seed=0), batch_size=4))
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    state = load_checkpoint(tmp_path / "last.ckpt")
    assert len(state["optimizer_states"]) == 2 and all(s["state"] for s in state["optimizer_states"])

    fresh = TinyGAN(hidden=8)
    load_weights(fresh, tmp_path / "last.ckpt")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.state_dict().values()))
    with pytest.raises(UserError, match=r"does not fit the model \(discriminator.0.bias is \(8,\), the model's "
                                        r"\(16,\)"):
        fitting_state_dict(TinyGAN(hidden=16), tmp_path / "last.ckpt")
