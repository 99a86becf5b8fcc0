"""The experiment's own Lightning loggers beside ClearML's, through the real ``train`` script: every
epoch's metrics in their files, each scalar once on the offline task, ``--resume`` appending."""

import csv
import json
from pathlib import Path

import pytest

from conftest import run_cli, session_scalars

LOGGERS = '''
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
    result["loggers"] = [
        CSVLogger("csv_logs", name="toy", version="fixed"),  # an explicit directory
        lambda run: TensorBoardLogger(run, name="tensorboard", version=""),  # in the run directory
    ]
'''


def with_loggers(toy: Path) -> None:
    """The toy experiment returning a CSVLogger and a TensorBoardLogger; its task block turns
    ClearML's framework bindings on (all but matplotlib), TensorBoard's included."""
    main = toy.parent / "__main__.py"
    main.write_text(main.read_text().replace('    result["callbacks"] = callbacks\n',
                                             '    result["callbacks"] = callbacks\n' + LOGGERS))
    toy.write_text(toy.read_text().replace('"task": {"project_name": "torch-lab-tests"}',
                                           '"task": {"project_name": "torch-lab-tests", '
                                           '"auto_connect_frameworks": {"matplotlib": False}}'))


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files of ``folder``, as (step, value) by tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.slow  # several real runs: the slow stage keeps the default suite short
def test_own_loggers_get_every_metric_once_and_resume_appends(toy: Path, tmp_path: Path) -> None:
    with_loggers(toy)
    crashed = run_cli("train", toy, "--set", "trainer.init.max_epochs=3", "--set", "config.crash_at_epoch=1")
    assert crashed.returncode == 1, crashed.stderr
    [run] = [p.parent for p in (tmp_path / "data" / "artifacts").glob("*/run.json")]
    resumed = run_cli("train", toy, "--resume", "--set", "config.crash_at_epoch=None")
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed"
    history = list(csv.DictReader(open(run / "history.csv")))
    val = {int(row["epoch"]): float(row["loss/val"]) for row in history}
    assert sorted(val) == [0, 1, 2]

    rows = list(csv.DictReader(open(tmp_path / "csv_logs" / "toy" / "fixed" / "metrics.csv")))
    logged = [(int(r["epoch"]), float(r["loss/val"])) for r in rows if r.get("loss/val")]
    assert sorted(logged) == sorted(val.items())  # every epoch once, same values
    hparams = (tmp_path / "csv_logs" / "toy" / "fixed" / "hparams.yaml").read_text()
    assert "lr: 0.1" in hparams and "max_epochs: 3" in hparams

    scalars = tensorboard_scalars(run / "tensorboard")
    steps = [step for step, _ in scalars["loss/val"]]  # each epoch once, the rerun one included
    assert steps == sorted(set(steps)) and len(steps) == 3
    assert [value for _, value in scalars["loss/val"]] == pytest.approx([val[epoch] for epoch in sorted(val)])
    assert "lr-SGD" in scalars and "loss/test" in scalars
    assert "hp_metric" not in scalars  # Lightning's placeholder, once more at each resume

    stored = session_scalars(Path(record["offline_session"]))
    assert stored and max(stored.values()) == 1, {k: n for k, n in stored.items() if n > 1}
    assert sorted(i for m, s, i in stored if (m, s) == ("loss", "val")) == steps  # same steps
