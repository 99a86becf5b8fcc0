"""The experiment's own Lightning loggers beside ClearML's, through the real ``train`` script: every
epoch's metrics in their files, each scalar once on the offline task, ``--resume`` appending."""

import csv
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from conftest import run_cli, session_scalars
from torch_lab.runs.records import flatten

LOGGERS = '''
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
    result["loggers"] = [
        CSVLogger("csv_logs", name="toy", version="fixed"),  # an explicit directory
        lambda run: TensorBoardLogger(run, name="tensorboard", version=""),  # in the run directory
    ]
'''


TENSORBOARD = '''
    from pytorch_lightning.loggers import TensorBoardLogger
    result["loggers"] = [lambda run: TensorBoardLogger(run, name="tensorboard", version="")]
'''


def with_loggers(toy: Path, loggers: str = LOGGERS) -> None:
    """The toy experiment returning ``loggers`` (a CSVLogger and a TensorBoardLogger); its task
    block turns ClearML's framework bindings on (all but matplotlib), TensorBoard's included."""
    main = toy.parent / "__main__.py"
    main.write_text(main.read_text().replace('    result["callbacks"] = callbacks\n',
                                             '    result["callbacks"] = callbacks\n' + loggers))
    toy.write_text(toy.read_text().replace('"task": {"project_name": "torch-lab-tests"}',
                                           '"task": {"project_name": "torch-lab-tests", '
                                           '"auto_connect_frameworks": {"matplotlib": False}}'))


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the event files of ``folder``, as (step, value) by tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def tensorboard_hparams(folder: Path) -> tuple[dict[str, object], list[str]]:
    """What TensorBoard's HParams tab reads from the event files of ``folder``: the run's hparams
    and the tags of its metrics."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    plugin = {tag: plugin_data_pb2.HParamsPluginData.FromString(events.SummaryMetadata(tag).plugin_data.content)
              for tag in ("_hparams_/session_start_info", "_hparams_/experiment")}
    values = plugin["_hparams_/session_start_info"].session_start_info.hparams
    return ({key: getattr(value, value.WhichOneof("kind")) for key, value in values.items()},
            [info.name.tag for info in plugin["_hparams_/experiment"].experiment.metric_infos])


def board_link(root: Path, run: Path) -> Path:
    """The one link under ``root``'s tensorboard/ folder to ``run``'s TensorBoard folder."""
    [link] = [path for path in (root / "tensorboard").rglob("*") if path.is_symlink()
              and path.resolve() == (run / "tensorboard").resolve()]
    return link


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
    assert scalars["best/loss/val"][-1][1] == pytest.approx(record["best"]["value"])  # the HParams tab's value
    values, metrics = tensorboard_hparams(run / "tensorboard")
    assert metrics == ["best/loss/val"]
    assert values["config.lr"] == 0.1 and values["trainer.init.max_epochs"] == 3  # dotted, as --set names them
    assert values["monitor.metric"] == "loss/val" and values["seed"] == record_seed(run)
    assert set(values) == set(flatten(json.loads((run / "hparams.json").read_text())))

    link = board_link(tmp_path / "data" / "artifacts", run)  # TensorBoard's run name, once after the resume
    stamp = datetime.fromisoformat(record["started"]).strftime("%Y%m%d-%H%M%S")
    assert link.relative_to(tmp_path / "data" / "artifacts" / "tensorboard").as_posix() == (
        f"01_toy/hparams/{stamp}-{record['task_id'].removeprefix('offline-')[:8]}")
    assert tensorboard_scalars(link) == scalars

    stored = session_scalars(Path(record["offline_session"]))
    assert stored and max(stored.values()) == 1, {k: n for k, n in stored.items() if n > 1}
    assert sorted(i for m, s, i in stored if (m, s) == ("loss", "val")) == steps  # same steps


def record_seed(run: Path) -> int:
    return json.loads((run / "hparams.json").read_text())["seed"]


@pytest.mark.slow  # two real runs
def test_tensorboard_names_the_seeds_of_a_group_and_forgets_a_removed_run(toy: Path, tmp_path: Path) -> None:
    with_loggers(toy, TENSORBOARD)  # in each run directory
    result = run_cli("train", toy, "--seeds", "0,1", "--set", "trainer.init.max_epochs=1")
    assert result.returncode == 0, result.stderr
    root = tmp_path / "data" / "artifacts"
    runs = {record_seed(path.parent): path.parent for path in root.glob("*/run.json")}
    links = {seed: board_link(root, run) for seed, run in runs.items()}
    group = json.loads((runs[0] / "run.json").read_text())["group"].removeprefix("01_toy-hparams-")
    assert {seed: link.relative_to(root / "tensorboard").as_posix() for seed, link in links.items()} == {
        0: f"01_toy/hparams/{group}/seed-0", 1: f"01_toy/hparams/{group}/seed-1"}
    for seed, run in runs.items():
        best = json.loads((run / "run.json").read_text())["best"]["value"]
        assert tensorboard_scalars(links[seed])["best/loss/val"][-1][1] == pytest.approx(best)
        assert tensorboard_hparams(links[seed])[0]["seed"] == seed

    removed = run_cli("runs", "rm", runs[0].name.rsplit("-", 1)[1], "--yes", "--root", root)
    assert removed.returncode == 0, removed.stderr
    assert not os.path.lexists(links[0]) and links[1].resolve() == (runs[1] / "tensorboard").resolve()
