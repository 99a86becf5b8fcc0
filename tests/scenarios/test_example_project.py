"""The MNIST demo end to end: tiny idx files through torchvision's real loader (fast), and the
full dataset when this checkout has it (slow)."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import DEMO, run_cli, sets, shared_mnist
from example_project.preprocess import mnist
from torch_lab.experiment import load_experiment


def flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_modified_hparams_differ_only_where_they_say() -> None:
    base = flatten(load_experiment(DEMO / "hparams.py").hparams)
    modified = flatten(load_experiment(DEMO / "hparams_modified.py").hparams)
    changed = {k for k in base.keys() | modified.keys() if base.get(k) != modified.get(k)}
    assert changed == {"config.learning_rate", "config.model.width"}
    assert modified["config.learning_rate"] == 1e-3 and modified["config.model.width"] == 16


def test_preprocess_builds_processed_tensors(tiny_mnist: Path) -> None:
    mnist.main(["--data-dir", str(tiny_mnist)])
    train = torch.load(tiny_mnist / "processed" / "mnist" / "train.pt", weights_only=True)
    assert train["images"].shape == (512, 28, 28) and train["images"].dtype == torch.uint8
    assert mnist.load(tiny_mnist, "test")["labels"].shape == (128,)


def predictions(path: Path) -> list[tuple[int, int]]:
    return [(int(r["index"]), int(r["prediction"])) for r in csv.DictReader(open(path))]


def test_demo_trains_and_infers_on_tiny_mnist(tiny_mnist: Path, tmp_path: Path) -> None:
    data = sets(f"config.data_dir='{tiny_mnist}'", "config.val_size=64", "trainer.init.max_epochs=2")
    result = run_cli("train", DEMO / "hparams.py", "--offline", *data)
    assert result.returncode == 0, result.stderr
    [run] = (tmp_path / "data" / "artifacts").glob("00_mnist_demo-hparams-*")
    record = json.loads((run / "run.json").read_text())
    test_accuracy = record["metrics"]["accuracy/test"]

    by_task = run_cli("infer", DEMO / "hparams.py", record["task_id"], "by_task.csv", "--offline", *data)
    assert by_task.returncode == 0, by_task.stderr
    rows = predictions(tmp_path / "by_task.csv")
    assert [index for index, _ in rows] == list(range(128))
    labels = mnist.load(tiny_mnist, "test")["labels"].tolist()
    accuracy = sum(prediction == labels[index] for index, prediction in rows) / len(rows)
    assert accuracy == pytest.approx(test_accuracy, abs=1e-6)  # infer used the best checkpoint too

    by_path = run_cli("infer", DEMO / "hparams.py", run / "checkpoints" / "best.ckpt", "by_path.csv",
                      "--offline", *data)
    assert by_path.returncode == 0, by_path.stderr
    assert predictions(tmp_path / "by_path.csv") == rows


def test_demo_without_data_says_where_to_put_it(tmp_path: Path) -> None:
    pytest.importorskip("torchvision")
    result = run_cli("train", DEMO / "hparams.py", "--offline", "--set", f"config.data_dir='{tmp_path / 'empty'}'")
    if result.returncode == 0:
        pytest.skip("this machine downloaded MNIST")
    assert result.returncode == 2
    assert "MNIST not found in" in result.stderr and "put the four MNIST .gz files there" in result.stderr


@pytest.mark.slow
def test_full_demo_reaches_99_percent_and_infer_matches(tmp_path: Path) -> None:
    """The quickstart (docs/tutorials/first-experiment.md) on the real MNIST files: at least 99.0% test accuracy."""
    source = shared_mnist()
    if source is None:
        pytest.skip("the four MNIST files are not in ./data/MNIST/raw or ../shared/data")
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (source / "MNIST" / "raw").glob("*.gz"):
        shutil.copy(path, raw / path.name)
    result = run_cli("train", DEMO / "hparams.py", "--offline", timeout=900)
    assert result.returncode == 0, result.stderr
    [run] = (tmp_path / "data" / "artifacts").glob("00_mnist_demo-hparams-*")
    record = json.loads((run / "run.json").read_text())
    assert record["metrics"]["accuracy/test"] >= 0.99
    assert len(list(csv.DictReader(open(run / "history.csv")))) == 5

    inferred = run_cli("infer", DEMO / "hparams.py", record["task_id"], "preds.csv", "--offline")
    assert inferred.returncode == 0, inferred.stderr
    rows = predictions(tmp_path / "preds.csv")
    labels = mnist.load(tmp_path / "data", "test")["labels"].tolist()
    assert len(rows) == 10_000
    accuracy = sum(prediction == labels[index] for index, prediction in rows) / len(rows)
    assert accuracy == pytest.approx(record["metrics"]["accuracy/test"], abs=1e-6)


@pytest.mark.slow
def test_demo_chain_offline(tiny_mnist: Path, tmp_path: Path) -> None:
    """A trains the demo for 1 epoch (of its 5-epoch one-cycle schedule); B starts from A's
    weights (its validation before training equals A's last); C continues A's schedule."""
    data = sets(f"config.data_dir='{tiny_mnist}'", "config.val_size=64")
    assert run_cli("train", DEMO / "hparams.py", "--offline", *data, "--set", "trainer.init.max_steps=4").returncode == 0
    [a] = (tmp_path / "data" / "artifacts").glob("*")
    a_id = json.loads((a / "run.json").read_text())["task_id"]
    a_last_val = float(list(csv.DictReader(open(a / "history.csv")))[-1]["loss/val"])

    start = sets(f"checkpoint.checkpoint_task_id='{a_id}'", "trainer.init.max_epochs=1")
    b = run_cli("train", DEMO / "hparams.py", "--offline", *data, *start, "--set", "checkpoint.weights_only=True")
    assert b.returncode == 0, b.stderr
    [b_run] = [r for r in (tmp_path / "data" / "artifacts").glob("*") if r != a]
    b_record = json.loads((b_run / "run.json").read_text())
    assert b_record["start_metrics"]["loss/val"] == pytest.approx(a_last_val, rel=1e-5)
    assert b_record["started_from"]["task_id"] == a_id

    c = run_cli("train", DEMO / "hparams.py", "--offline", *data, "--set", f"checkpoint.checkpoint_task_id='{a_id}'")
    assert c.returncode == 0, c.stderr
    [c_run] = [r for r in (tmp_path / "data" / "artifacts").glob("*") if r not in (a, b_run)]
    assert [row["epoch"] for row in csv.DictReader(open(c_run / "history.csv"))] == ["1", "2", "3", "4"]
    state = torch.load(c_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["lr_schedulers"][0]["last_epoch"] == 5 * 4  # A's 4 steps + C's 16: one schedule


@pytest.mark.slow  # moved to the slow stage: the default suite stays under 10 minutes
def test_demo_reports_confusion_matrix_and_misclassified_images(tiny_mnist: Path, tmp_path: Path) -> None:
    import zipfile

    result = run_cli("train", DEMO / "hparams.py", "--offline", *sets(f"config.data_dir='{tiny_mnist}'",
                     "config.val_size=64", "trainer.init.max_epochs=2",
                     "config.learning_rate=0.0"))  # an untrained model: misclassifications for sure
    assert result.returncode == 0, result.stderr
    [run] = (tmp_path / "data" / "artifacts").glob("*")
    with zipfile.ZipFile(json.loads((run / "run.json").read_text())["offline_session"]) as zipped:
        events = [e for line in zipped.read("metrics.jsonl").decode().splitlines() for e in json.loads(line)]
        names = zipped.namelist()
    plots = [e for e in events if e["type"] == "plot" and e.get("metric") == "confusion matrix"]
    assert sorted(e["iter"] for e in plots) == [0, 1]
    images = [e for e in events if e["type"] == "training_debug_image" and e.get("metric") == "misclassified"]
    assert len(images) == 2 * 8 and {e["iter"] for e in images} == {0, 1}
    assert "true" in images[0]["variant"] and "predicted" in images[0]["variant"]
    assert sum("/metrics/misclassified/" in name for name in names) == 16  # the images travel in the zip


REGRESSION = DEMO.parent / "01_regression"


def test_regression_variant_two_levels_deep_differs_only_where_it_says() -> None:
    base = flatten(load_experiment(REGRESSION / "hparams.py").hparams)
    wide = flatten(load_experiment(REGRESSION / "hparams_wide.py").hparams)
    long = flatten(load_experiment(REGRESSION / "hparams_wide_long.py").hparams)
    assert {k for k in base if base[k] != wide[k]} == {"config.model.hidden"}
    assert {k for k in base if base[k] != long[k]} == {"config.model.hidden", "config.learning_rate",
                                                       "trainer.init.max_epochs"}
    assert load_experiment(REGRESSION / "hparams.py").hparams["config"]["model"]["hidden"] == 64


@pytest.mark.slow
def test_regression_example_trains_and_infers_with_extra_args(tmp_path: Path) -> None:
    """MeanSquaredError (an in-place metric) per stage, (x, metadata) batches, a plateau scheduler
    following the monitor block, and an infer_config with three extra arguments."""
    result = run_cli("train", REGRESSION / "hparams.py", "--offline", *sets("trainer.init.max_epochs=2",
                     "config.train_size=512"))
    assert result.returncode == 0, result.stderr
    [run] = (tmp_path / "data" / "artifacts").glob("*")
    record = json.loads((run / "run.json").read_text())
    assert {"mse/train", "mse/val", "mae/val", "loss/val"} <= set(record["metrics"])
    assert record["best"]["monitor"] == "mse/val"

    inferred = run_cli("infer", REGRESSION / "hparams.py", record["task_id"], "preds.csv", "50", "--offline")
    assert inferred.returncode == 0, inferred.stderr
    rows = list(csv.DictReader(open(tmp_path / "preds.csv")))
    assert [int(r["index"]) for r in rows] == list(range(50))
    assert all(isinstance(float(r["prediction"]), float) for r in rows)

    wrong = run_cli("infer", REGRESSION / "hparams.py", record["task_id"], "preds.csv", "--offline")
    assert wrong.returncode == 2
    assert "infer_config(hparams: 'dict[str, Any]', checkpoint: 'str', output_csv: 'str', count: 'str')" \
        in wrong.stderr
