"""The static checks made before __main__.py runs: the same messages as the runtime checks, and
silence whenever the source is too dynamic to be sure."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from conftest import REPO
from torch_lab.errors import UserError
from torch_lab.experiment import load_experiment
from torch_lab.experiment.precheck import check_main, trainer_parameters


def write_main(toy: Path, text: str) -> Path:
    main = toy.parent / "__main__.py"
    main.write_text(text)
    return main


def static_and_runtime_messages(toy: Path, args: list[str]) -> tuple[str, str]:
    main = toy.parent / "__main__.py"
    with pytest.raises(UserError) as static:
        check_main(main, "infer_config", args)
    with pytest.raises(UserError) as runtime:
        load_experiment(toy).check_infer_args(args)
    return str(static.value), str(runtime.value)


FUTURE = "from __future__ import annotations\n\n"


@pytest.mark.parametrize("head, signature, args", [
    ("", "(hparams, count)", ["1", "2"]),
    ("", "(hparams, count, out='preds.csv')", []),
    ("", "(hparams, /, count=3, *, scale=1.0)", ["1", "2"]),
    (FUTURE, "(hparams: dict[str, Any], *paths: 'Path | None', n: int, **kw: Any) -> dict", []),
])
def test_infer_signature_messages_match_the_runtime_ones(toy: Path, head: str, signature: str,
                                                         args: list[str]) -> None:
    write_main(toy, f"{head}def train_config(hparams):\n    pass\n\ndef infer_config{signature}:\n    pass\n")
    static, runtime = static_and_runtime_messages(toy, args)
    assert static == runtime


@pytest.mark.parametrize("experiment", ["00_mnist_demo", "01_regression"])
def test_the_examples_infer_signatures_are_read_statically(experiment: str) -> None:
    hparams = REPO / "src" / "example_project" / "experiments" / experiment / "hparams.py"
    with pytest.raises(UserError) as static:
        check_main(hparams.parent / "__main__.py", "infer_config", ["a"])
    with pytest.raises(UserError) as runtime:
        load_experiment(hparams).check_infer_args(["a"])
    assert str(static.value) == str(runtime.value)


@pytest.mark.parametrize("text", [
    "from somewhere import *\n",                                   # may bind anything
    "def setup():\n    global train_config\n    train_config = print\nsetup()\n",
    "globals()['train_config'] = print\n",
    "from toy_helpers import train_config\n",
    "if True:\n    train_config = print\n",
    "try:\n    import x\nexcept ImportError as train_config:\n    pass\n",
])
def test_dynamic_or_indirect_bindings_are_not_reported_missing(toy: Path, text: str) -> None:
    check_main(write_main(toy, text), "train_config")


@pytest.mark.parametrize("text", [
    "def infer_config(hparams, *args):\n    pass\n",
    "import functools\n@functools.lru_cache\ndef infer_config(hparams):\n    pass\n",
    "def infer_config(hparams: dict):\n    pass\n",
    "def infer_config(hparams, count=DEFAULT):\n    pass\n",
    "def infer_config(hparams):\n    pass\ninfer_config = print\n",
])
def test_signatures_it_cannot_read_exactly_are_left_to_the_runtime_check(toy: Path, text: str) -> None:
    check_main(write_main(toy, text), "infer_config", ["1", "2", "3"])


def test_missing_function_and_syntax_error(toy: Path) -> None:
    main = write_main(toy, "def infer_config(hparams):\n    pass\n")
    with pytest.raises(UserError, match=r"__main__.py: no function 'train_config' defined$"):
        check_main(main, "train_config")
    write_main(toy, "def train_config(hparams):\n    return {\n")
    with pytest.raises(UserError, match=r"__main__.py: syntax error at line 2: '\{' was never closed$"):
        check_main(main, "train_config")


@pytest.mark.parametrize("block", ["init", "fit", "predict"])
def test_trainer_parameters_read_from_source_are_lightnings(block: str) -> None:
    import pytorch_lightning as pl

    function = {"init": pl.Trainer, "fit": pl.Trainer.fit, "predict": pl.Trainer.predict}[block]
    assert trainer_parameters(block) == [p for p in inspect.signature(function).parameters if p != "self"]


@pytest.mark.parametrize("block", ["init", "fit", "predict"])
def test_trainer_hints_read_from_source_are_lightnings(block: str) -> None:
    """Every hint built from Lightning's source without a name of Lightning's own is the live
    hint (as ``typing.get_type_hints`` gives it); the others check nothing (``Any`` in them)."""
    import typing

    import pytorch_lightning as pl

    from torch_lab.experiment.precheck import _trainer_method, _trainer_module
    from torch_lab.experiment.value_types import hint_text, source_hints

    function = {"init": pl.Trainer.__init__, "fit": pl.Trainer.fit, "predict": pl.Trainer.predict}[block]
    live = typing.get_type_hints(function)
    static = source_hints(_trainer_method(block), _trainer_module()[0])
    assert set(static) == set(live) - {"return"}
    exact = {name for name, hint in static.items() if "Any" not in str(hint)}
    assert {"max_epochs", "enable_progress_bar", "limit_train_batches"} <= exact or block != "init"
    for name in exact:  # as sets: typing caches Union[int, float] and Union[float, int] as one
        assert set(hint_text(static[name]).split(" or ")) == set(hint_text(live[name]).split(" or ")), name
