import pytest

from conftest import REPO
from torch_lab.errors import UserError
from torch_lab.experiment.hparams import apply_overrides, parse_value, validate

MINIMAL = {"task": {"project_name": "p"}}


def test_defaults_are_filled_in() -> None:
    assert validate(MINIMAL, "h.py") == {
        "task": {"project_name": "p"},
        "checkpoint": {"checkpoint_task_id": None, "checkpoint_name": "last", "weights_only": False,
                       "every_n_train_steps": None},
        "trainer": {"init": {}, "fit": {}, "predict": {}},
        "monitor": {"metric": "loss/val", "mode": "min", "patience": None, "min_delta": 0.0},
        "seed": None,
        "config": {},
    }


def test_validate_does_not_change_its_input() -> None:
    original = {"task": {"project_name": "p"}}
    validate(original, "h.py")
    assert original == {"task": {"project_name": "p"}}


@pytest.mark.parametrize(
    "hparams, message",
    [
        ([], "h.py: hparams must be a dict, got list"),
        ({**MINIMAL, "trainr": {}}, "h.py: unknown top-level key 'trainr' (did you mean 'trainer'?)"),
        ({**MINIMAL, "zzz": {}}, "h.py: unknown top-level key 'zzz' (valid keys: task, checkpoint, trainer, monitor, seed, config)"),
        ({"config": {}}, "h.py: missing key 'task' (needs at least task.project_name)"),
        ({"task": {}}, "h.py: task.project_name must be a non-empty string"),
        ({**MINIMAL, "checkpoint": {"checkpoint_nam": "x"}},
         "h.py: unknown key 'checkpoint.checkpoint_nam' (did you mean 'checkpoint_name'?)"),
        ({**MINIMAL, "checkpoint": {"weights_only": "yes"}}, "h.py: checkpoint.weights_only must be True or False"),
        ({**MINIMAL, "trainer": {"init": []}}, "h.py: trainer.init must be a dict, got list"),
        ({**MINIMAL, "trainer": {"fitt": {}}}, "h.py: unknown key 'trainer.fitt' (did you mean 'fit'?)"),
        ({**MINIMAL, "config": {"opt": object}}, "h.py: hparams.config.opt is a type; hparams hold plain data only"),
        ({**MINIMAL, "monitor": {"metrc": "x"}}, "h.py: unknown key 'monitor.metrc' (did you mean 'metric'?)"),
        ({**MINIMAL, "monitor": {"mode": "maximum"}}, "h.py: monitor.mode must be 'min' or 'max', got 'maximum'"),
        ({**MINIMAL, "monitor": {"patience": -1}}, "h.py: monitor.patience must be an int >= 0 or None"),
        ({**MINIMAL, "seed": 1.5}, "h.py: seed must be an int in [0, 2**32) (NumPy's range) or None"),
        ({**MINIMAL, "seed": 2**32}, "h.py: seed must be an int in [0, 2**32) (NumPy's range) or None"),
    ],
)
def test_invalid_hparams_name_the_key(hparams, message) -> None:
    with pytest.raises(UserError) as error:
        validate(hparams, "h.py")
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    "text, value",
    [("3e-3", 3e-3), ("10", 10), ("True", True), ("None", None), ("[1, 2]", [1, 2]),
     ("{'a': 1}", {"a": 1}), ("'quoted'", "quoted"), ("adamw", "adamw"), ("", "")],
)
def test_set_values_parse_as_literals_or_raw_strings(text, value) -> None:
    assert parse_value(text) == value


def test_overrides_change_nested_keys_and_revalidate() -> None:
    hparams = validate({**MINIMAL, "config": {"model": {"width": 8}, "lr": 0.1}}, "h.py")
    result = apply_overrides(hparams, ["config.model.width=16", "config.lr=3e-3",
                                       "trainer.init.max_epochs=2", "task.tags=['a']"], "h.py")
    assert result["config"] == {"model": {"width": 16}, "lr": 3e-3}
    assert result["trainer"]["init"] == {"max_epochs": 2}
    assert result["task"]["tags"] == ["a"]
    assert hparams["config"]["lr"] == 0.1


@pytest.mark.parametrize(
    "override, message",
    [
        ("config.lr", "--set 'config.lr': expected KEY=VALUE"),
        ("=3", "--set '=3': expected KEY=VALUE"),
        ("config.lrr=1", "--set config.lrr: no key 'config.lrr' in h.py (did you mean 'lr'?)"),
        ("confg.lr=1", "--set confg.lr: no key 'confg' in h.py (did you mean 'config'?)"),
        ("config.lr.x=1", "--set config.lr.x: config.lr in h.py is not a dict"),
        ("config.lr=[1, 2", "--set config.lr: cannot parse '[1, 2' as a Python literal"),
        ("checkpoint.weights_only=2", "h.py: checkpoint.weights_only must be True or False"),
    ],
)
def test_bad_overrides_are_one_clear_error(override, message) -> None:
    hparams = validate({**MINIMAL, "config": {"lr": 0.1}}, "h.py")
    with pytest.raises(UserError) as error:
        apply_overrides(hparams, [override], "h.py")
    assert str(error.value).startswith(message)


def test_docs_reference_lists_exactly_the_validated_keys() -> None:
    """The docs' hparams reference (docs/reference/hparams.md) and the validator's schema are the same set of keys."""
    import re
    from pathlib import Path

    from torch_lab.experiment.hparams import SCHEMA_KEYS

    section = (REPO / "docs" / "reference" / "hparams.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE))
    assert documented == set(SCHEMA_KEYS)
