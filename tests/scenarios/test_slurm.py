"""On a real SLURM cluster (two nodes on this machine, ``tests/cluster/slurm.sh``): the README's
sbatch script, srun with two tasks on one node, and pre-emption that continues the run."""

import csv
import json
import re
from pathlib import Path

import pytest

from cluster.fixtures import REQUIRE_ENV, Cluster, slurm, unavailable  # noqa: F401  (the fixture)
from conftest import REPO, session_scalars


def test_no_cluster_skips_but_fails_where_slurm_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no SLURM cluster: not root"):
        unavailable("not root")
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_ENV} is set.*not root"):
        unavailable("not root")


def readme_script() -> str:
    """The README's sbatch script (several nodes, with SLURM), as the README has it."""
    text = (REPO / "README.md").read_text()
    return re.search(r"With SLURM, one task per GPU:\n\n\s*```bash\n(.*?)```", text, re.S).group(1)


def cpu_values(script: str, root: Path) -> str:
    """The README's script with this machine's values: one CPU process per node (gloo), the toy
    experiment, the shared filesystem in ``root``."""
    script = re.sub(r"^ +", "", script, flags=re.M)
    for old, new in (("--ntasks-per-node=4 --gpus-per-node=4", "--ntasks-per-node=1"),
                     ("/shared/$USER", str(root)), ("experiments/01_net/", "experiments/01_toy/"),
                     ("trainer.init.devices=4", "trainer.init.devices=1")):
        assert old in script, old
        script = script.replace(old, new)
    return script


def one_run(root: Path) -> tuple[Path, dict]:
    [record_path] = (root / "artifacts").glob("*/run.json")
    record = json.loads(record_path.read_text())
    sessions = sorted(p.name for p in (root / "clearml-cache" / "offline").iterdir())
    assert sessions == [record["task_id"], f"{record['task_id']}.zip"]
    return record_path.parent, record


def assert_completed(run: Path, record: dict, epochs: int) -> None:
    assert record["status"] == "completed" and set(record["checkpoints"]) == {"best", "last"}
    history = list(csv.DictReader(open(run / "history.csv")))
    assert [row["epoch"] for row in history] == [str(e) for e in range(epochs)]
    assert record["metrics"]["loss/val"] == pytest.approx(float(history[-1]["loss/val"]))
    assert max(session_scalars(Path(record["offline_session"])).values()) == 1


@pytest.mark.slow
def test_the_readmes_sbatch_script_on_two_nodes(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """Two nodes x one task, gloo on CPU, through the real sbatch and srun: one run, one task."""
    script = tmp_path / "job.sh"
    script.write_text(cpu_values(readme_script(), tmp_path))
    job = slurm.sbatch(script, "--output", str(tmp_path / "slurm-%j.out"), cwd=tmp_path)
    fields = slurm.wait(job)
    output = (tmp_path / f"slurm-{job}.out").read_text()
    assert fields["JobState"] == "COMPLETED", output
    assert fields["NodeList"] == "n[1-2]"
    run, record = one_run(tmp_path)
    assert_completed(run, record, 3)
    assert output.count(f"task {record['task_id']} started") == 1


@pytest.mark.slow
def test_srun_with_two_tasks_on_one_node(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """``srun -N1 -n2``: two ranks on one node (ddp over gloo), one run, one task."""
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH --nodes=1 --ntasks-per-node=2\n"
                      f"export TORCH_LAB_ARTIFACTS={tmp_path}/artifacts CLEARML_CACHE_DIR={tmp_path}/clearml-cache\n"
                      "srun train experiments/01_toy/hparams.py --set trainer.init.devices=2 "
                      "--set 'trainer.init.strategy=\"ddp\"' --set 'trainer.init.accelerator=\"cpu\"'\n")
    job = slurm.sbatch(script, "--output", str(tmp_path / "slurm-%j.out"), cwd=tmp_path)
    fields = slurm.wait(job)
    assert fields["JobState"] == "COMPLETED", (tmp_path / f"slurm-{job}.out").read_text()
    assert fields["NumTasks"] == "2" and fields["NodeList"] in ("n1", "n2")
    assert_completed(*one_run(tmp_path), 3)
