"""Loading an experiment folder: every contract mistake is one UserError naming file and key."""

from pathlib import Path

import pytest

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
         "experiments/01_toy/__main__.py: train_config: 'module' must be a torch_lab.modules.TrainLabModule, got int"),
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
    broken_main(toy, main.replace("val_dataloaders=DataLoader(points(32, 1), batch_size=16)",
                                  "val_dataloaders=[points(32, 1)]"))
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
