"""Loading an experiment folder: every contract mistake is one UserError naming file and key."""

import json
from pathlib import Path

import pytest

from conftest import run_cli
from torch_lab.errors import UserError
from torch_lab.experiment import load_experiment


def broken_main(toy: Path, text: str) -> Path:
    (toy.parent / "__main__.py").write_text(text)
    return toy


def test_loads_validates_and_overrides(toy: Path) -> None:
    experiment = load_experiment(toy, ["config.lr=0.5"])
    assert experiment.name == "01_toy-hparams"
    assert experiment.hparams["config"]["lr"] == 0.5
    assert experiment.hparams["checkpoint"]["checkpoint_name"] == "last"
    config = experiment.train_config()
    assert set(config) >= {"module", "train_dataloaders", "val_dataloaders", "callbacks"}


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda toy: toy.parent / "absent.py", "experiments/01_toy/absent.py: no such file"),
        (lambda toy: toy.parent, "experiments/01_toy: is a directory"),
        (lambda toy: toy.rename(toy.with_suffix(".txt")), "experiments/01_toy/hparams.txt: not a Python script"),
        (lambda toy: (toy.write_text("x = 1\n"), toy)[1], "experiments/01_toy/hparams.py: defines no 'hparams' dict"),
        (lambda toy: (toy.write_text("hparams = {\n"), toy)[1],
         "experiments/01_toy/hparams.py: syntax error at line 1"),
        (lambda toy: (toy.write_text("raise ValueError('bad idea')\n"), toy)[1],
         "experiments/01_toy/hparams.py: raised ValueError: bad idea"),
        (lambda toy: ((toy.parent / "__main__.py").unlink(), toy)[1],
         "experiments/01_toy/__main__.py: missing"),
        (lambda toy: broken_main(toy, "import not_a_module_anywhere\n"),
         "experiments/01_toy/__main__.py: raised ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    ],
)
def test_load_errors(toy: Path, setup, message) -> None:
    path = setup(toy)
    with pytest.raises(UserError) as error:
        load_experiment(path)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    "main, message",
    [
        ("", "experiments/01_toy/__main__.py: no function 'train_config' defined"),
        ("def train_config(h):\n    return [1]\n", "experiments/01_toy/__main__.py: train_config must return a dict, got list"),
        ("def train_config(h):\n    return {'module': 1, 'train_dataloader': 2}\n",
         "experiments/01_toy/__main__.py: train_config returned unknown key 'train_dataloader'"),
        ("def train_config(h):\n    return {'module': 1}\n",
         "experiments/01_toy/__main__.py: train_config returned no 'train_dataloaders'"),
        ("def train_config(h):\n    return {'module': 1, 'train_dataloaders': 2, 'val_dataloaders': 3}\n",
         "experiments/01_toy/__main__.py: train_config: 'module' must be a pytorch_lightning LightningModule "
         "(e.g. torch_lab.modules.TrainLabModule), got int"),
        ("def train_config(h):\n    return h['config']['missing']\n",
         "experiments/01_toy/__main__.py: train_config raised KeyError: 'missing'"),
    ],
)
def test_train_config_contract(toy: Path, main: str, message: str) -> None:
    experiment = load_experiment(broken_main(toy, main))
    with pytest.raises(UserError) as error:
        experiment.train_config()
    assert str(error.value).startswith(message)


def test_train_config_dataloaders_must_be_dataloaders(toy: Path) -> None:
    main = (toy.parent / "__main__.py").read_text()
    broken_main(toy, main.replace("else DataLoader(points(32, 1), batch_size=16)", "else [points(32, 1)]"))
    with pytest.raises(UserError, match="'val_dataloaders' must be a DataLoader or a list of them"):
        load_experiment(toy).train_config()


def test_infer_config_arguments_are_checked_against_its_signature(toy: Path) -> None:
    experiment = load_experiment(toy)
    assert len(experiment.infer_config(["5"])["predict_dataloaders"].dataset) == 5
    with pytest.raises(UserError) as error:
        experiment.infer_config([])
    assert str(error.value) == (
        "experiments/01_toy/__main__.py: infer_config(hparams, count) takes different arguments "
        "than the 0 given after the hparams path: []"
    )


def test_empty_predict_dataloaders_are_refused(toy: Path) -> None:
    experiment = load_experiment(toy)
    with pytest.raises(UserError) as error:
        experiment.infer_config(["0"])
    assert str(error.value) == (
        "experiments/01_toy/__main__.py: infer_config's predict_dataloaders is empty (0 batches)"
    )


def test_an_experiment_folder_as_the_user_named_it(toy: Path, tmp_path: Path) -> None:
    """One dev run covers how a folder is found and run: a name with glob characters is taken
    literally; a symlinked hparams file runs the ``__main__.py`` of the folder it is in (not its
    target's); that ``__main__.py`` imports a sibling module both ways; a task name with path
    separators stays one directory below the artifacts root (and is a dev run's: ``dev_...``); a small
    fraction is one batch."""
    folder = tmp_path / "experiments" / "02_net[v2]"
    folder.mkdir()
    (folder / "hparams.py").symlink_to(toy)
    (folder / "signals.py").symlink_to(toy.parent / "signals.py")  # a module of the toy's
    (folder / "models.py").write_text("from torch import nn\n\n\ndef make_model():\n"
                                      "    return nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))\n")
    main = (toy.parent / "__main__.py").read_text()
    main = main.replace("        nn.Linear(4, 2),\n        loss_function", "        make_model(),\n        loss_function")
    (folder / "__main__.py").write_text("import models  # the folder is on sys.path\n"
                                        "from .models import make_model  # and a package\n" + main)
    assert "make_model()" in (folder / "__main__.py").read_text()
    result = run_cli("train", "experiments/02_net[v2]/hparams.py", "--offline", "--dev-run", "0.01",
                     "--set", "task.task_name='../../escape'")
    assert result.returncode == 0, result.stderr
    [run] = [p.parent for p in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    assert run.name.startswith("dev_.._.._escape-offline-")
    # the real one, a dev run's even when named (issue 30, item 33: no dev_ prefix then)
    assert json.loads((run / "run.json").read_text())["task_name"] == "dev_../../escape"
    assert "Sequential" in (run / "model_summary.txt").read_text()  # 02_net[v2]'s model
    assert json.loads((run / "hparams.json").read_text())["trainer"]["init"]["limit_train_batches"] == 1
    assert not list(tmp_path.glob("escape*")) and not list((tmp_path / "data").glob("escape*"))


#: A LightningModule of the user's own, with the steps ``STEPS`` says (and a DataLoader of 4 points).
OWN_MODULE = '''import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

LOADER = DataLoader(torch.zeros(4, 2), batch_size=2)


class Own(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
{methods}

def train_config(hparams):
    return dict(module=Own(), train_dataloaders=LOADER, val_dataloaders=LOADER{extra})


def infer_config(hparams):
    return dict(module=Own(), predict_dataloaders=LOADER)
'''
STEP = "\n    def {0}(self, batch, batch_idx=0):\n        return self.layer(batch).sum()\n"


@pytest.mark.parametrize("methods, extra, message", [
    (["training_step", "validation_step"], "", None),
    (["validation_step"], "", "train_config: 'module' (Own) has no training_step; train fits with it"),
    (["training_step"], "", "train_config: 'module' (Own) has no validation_step; val_dataloaders need it"),
    (["training_step", "validation_step"], ", test_dataloaders=LOADER",
     "train_config: 'module' (Own) has no test_step; test_dataloaders need it"),
])
def test_any_lightning_module_with_the_steps_train_runs(toy: Path, methods, extra, message) -> None:
    experiment = load_experiment(broken_main(toy, OWN_MODULE.format(
        methods="".join(STEP.format(name) for name in methods), extra=extra)))
    if message is None:
        assert type(experiment.train_config()["module"]).__name__ == "Own"
        return
    with pytest.raises(UserError) as error:
        experiment.train_config()
    assert str(error.value) == f"experiments/01_toy/__main__.py: {message}"


@pytest.mark.parametrize("methods, message", [
    (["predict_step"], None),
    (["forward"], None),  # Lightning's default predict_step calls it
    ([], "infer_config: 'module' (Own) has no predict_step (nor forward, which Lightning's default calls); "
         "infer predicts with it"),
])
def test_infer_takes_any_lightning_module_that_predicts(toy: Path, methods, message) -> None:
    experiment = load_experiment(broken_main(toy, OWN_MODULE.format(
        methods="".join(STEP.format(name) for name in methods), extra="")))
    if message is None:
        assert type(experiment.infer_config([])["module"]).__name__ == "Own"
        return
    with pytest.raises(UserError) as error:
        experiment.infer_config([])
    assert str(error.value) == f"experiments/01_toy/__main__.py: {message}"
