"""What a new user trips over, through the real console scripts: quoted globs, ``infer`` without
weights, ``--set`` among extra arguments, ``--print-hparams``."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

VARIANT = ("from pathlib import Path\nfrom torch_lab.utils import import_script_as_module\n"
           "hparams = import_script_as_module(Path(__file__).parent / 'hparams.py').hparams\n"
           "hparams['config']['lr'] = 0.5\n")


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "data" / "artifacts").glob("*") if p.is_dir())


def test_a_glob_selects_hparams_scripts_only(toy: Path, tmp_path: Path) -> None:
    """The experiment folder's __init__.py and __main__.py are never runs; a variant is (the
    run of the glob's one hparams script is in the infer test below)."""
    (toy.parent / "variant.py").write_text(VARIANT)
    (toy.parent / "helpers.py").write_text("def helper():\n    hparams = {}\n")  # no module-level hparams
    printed = run_cli("train", "experiments/01_toy/*.py", "--print-hparams")
    assert printed.returncode == 0, printed.stderr
    assert list(json.loads(printed.stdout)) == ["experiments/01_toy/hparams.py", "experiments/01_toy/variant.py"]

    none = run_cli("train", "experiments/01_toy/__*.py", "--offline")
    assert none.returncode == 2
    assert none.stderr.strip().endswith("train: error: no hparams script matches 'experiments/01_toy/__*.py' "
                                        "(a .py file defining 'hparams'; __init__.py and __main__.py never are)")


def test_print_hparams_resolves_layering_set_and_defaults(toy: Path) -> None:
    (toy.parent / "variant.py").write_text(VARIANT)
    code = ("import sys, time\nfrom torch_lab.cli.main import train_main\nstart = time.perf_counter()\n"
            "code = train_main(sys.argv[1:])\n"
            "heavy = {'torch', 'pytorch_lightning', 'clearml'} & set(sys.modules)\n"
            "assert not heavy, heavy\nsys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", code, str(toy.parent / "variant.py"), "--print-hparams",
                             "--set", "trainer.init.max_epochs=3", "--set", "config.schedule='warmup_cosine'"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    hparams = json.loads(result.stdout)
    assert hparams["config"]["lr"] == 0.5  # the variant's layer
    assert hparams["config"]["schedule"] == "warmup_cosine" and hparams["trainer"]["init"]["max_epochs"] == 3
    assert hparams["monitor"] == {"metric": "loss/val", "mode": "min", "patience": None, "min_delta": 0.0}
    assert hparams["checkpoint"]["checkpoint_name"] == "last" and hparams["trainer"]["predict"] == {}

    infer = run_cli("infer", toy, "6", "--print-hparams", "--set", "seed=3")
    assert infer.returncode == 0 and json.loads(infer.stdout)["seed"] == 3
    bad = run_cli("train", toy, "--print-hparams", "--set", "config.lrr=1")
    assert bad.returncode == 2 and "no key 'config.lrr'" in bad.stderr


def test_set_takes_one_pair_and_mixes_with_extra_arguments(toy: Path) -> None:
    result = run_cli("train", toy, "--print-hparams", "--set", "config.lr=0.3", "seed=1")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("train: error: seed=1: no such file; --set takes one KEY=VALUE "
                                          "each (--set a=1 --set b=2)")


@pytest.mark.slow  # moved to the slow stage: the default suite stays under 10 minutes
def test_infer_says_which_weights_and_refuses_none(toy: Path, tmp_path: Path) -> None:
    """Trained from a quoted glob (the folder's one hparams script), then infer with the task's
    checkpoint, then without any."""
    trained = run_cli("train", "experiments/01_toy/*.py", "--dev-run", "1", "--offline")
    assert trained.returncode == 0, trained.stderr
    assert "__init__" not in trained.stdout + trained.stderr
    [trained] = run_dirs(tmp_path)
    task_id = json.loads((trained / "run.json").read_text())["task_id"]

    # Options and extra arguments in any order.
    result = run_cli("infer", toy, "--set", f"checkpoint.checkpoint_task_id='{task_id}'", "6", "--offline",
                     "--set", "checkpoint.checkpoint_name='best'")
    assert result.returncode == 0, result.stderr
    [inferred] = [p for p in run_dirs(tmp_path) if p != trained]
    said = f"checkpoint task '{task_id}' ('best', {trained / 'checkpoints' / 'best.ckpt'})"
    assert f"torch-lab: predicting with the weights of {said}" in result.stdout
    assert json.loads((inferred / "run.json").read_text())["weights"] == said

    refused = run_cli("infer", toy, "6", "--offline")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "infer: error: experiments/01_toy/hparams.py: no weights to predict with: "
        "checkpoint.checkpoint_task_id is None and infer_config returned no 'weights'; --set "
        "checkpoint.checkpoint_task_id=<task id>, or load them in infer_config and return "
        "'weights': '<where they come from>'")
    assert len(run_dirs(tmp_path)) == 2  # nothing created
