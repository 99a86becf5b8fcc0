"""On a real SLURM cluster (two nodes on this machine, ``tests/cluster/slurm.sh``): the docs' (how-to/cluster.md)
sbatch script, srun with two tasks on one node, and pre-emption that continues the run."""

import csv
import json
import re
import time
from pathlib import Path

import pytest
import torch

from cluster.fixtures import REQUIRE_ENV, Cluster, slurm, unavailable  # noqa: F401  (the fixture)
from conftest import REPO, run_cli, session_scalars


def test_no_cluster_skips_but_fails_where_slurm_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no SLURM cluster: not root"):
        unavailable("not root")
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_ENV} is set.*not root"):
        unavailable("not root")


def readme_script() -> str:
    """The docs' sbatch script (several nodes, with SLURM), as the cluster page has it."""
    text = (REPO / "docs" / "how-to" / "cluster.md").read_text()
    return re.search(r"With SLURM, one task per GPU:\n\n\s*<!--.*?-->\n\s*```bash\n(.*?)```", text, re.S).group(1)


def cpu_values(script: str, root: Path) -> str:
    """The docs' script with this machine's values: one CPU process per node (gloo), the toy
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


#: A deterministic toy run whose training draws from the global generator at every sample, with
#: a StatefulDataLoader: a resume from a mid-epoch last.ckpt gives the same weights, bit for bit.
EXACT = ["--set", "seed=0", "--set", "trainer.init.deterministic=True", "--set", "trainer.init.max_epochs=6",
         "--set", "config.stateful_loader=True", "--set", "config.noise=0.1"]


def weights(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def wait_for(what: str, condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f} s"
        time.sleep(0.2)


def history_rows(root: Path) -> int:
    files = list((root / "artifacts").glob("*/history.csv"))
    return len(files[0].read_text().splitlines()) - 1 if files else 0


@pytest.mark.slow
def test_a_requeued_job_continues_its_run(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """``scontrol requeue`` (what pre-emption does) mid-epoch, twice: each attempt of the job goes
    on with the same run from its last.ckpt, with no --resume in the script; the run ends
    completed in one task with the weights of an uninterrupted run."""
    reference = run_cli("train", toy, "--offline", *EXACT, env={"TORCH_LAB_ARTIFACTS": str(tmp_path / "reference"),
                                                                 "CLEARML_CACHE_DIR": str(tmp_path / "reference")})
    assert reference.returncode == 0, reference.stderr
    [expected] = (tmp_path / "reference").glob("*/checkpoints/last.ckpt")
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH --nodes=1 --ntasks=1 --requeue --open-mode=append\n"
                      f"export TORCH_LAB_ARTIFACTS={tmp_path}/artifacts CLEARML_CACHE_DIR={tmp_path}/clearml-cache\n"
                      "echo \"attempt ${SLURM_RESTART_COUNT:-0}\"\n"
                      f"srun train experiments/01_toy/hparams.py {' '.join(EXACT)} --set config.batch_sleep=0.3\n")
    job = slurm.sbatch(script, "--output", str(tmp_path / "slurm-%j.out"), cwd=tmp_path)
    output = tmp_path / f"slurm-{job}.out"
    for attempt, rows in ((0, 1), (1, 3)):  # requeued in epoch 1, then in epoch 3
        wait_for(f"epoch {rows - 1} in attempt {attempt}",
                 lambda: slurm.job(job)["Restarts"] == str(attempt) and history_rows(tmp_path) >= rows)
        slurm.run("scontrol", "requeue", job)
    fields = slurm.wait(job)
    assert fields["JobState"] == "COMPLETED" and fields["Restarts"] == "2", output.read_text()
    run, record = one_run(tmp_path)
    assert_completed(run, record, 6)
    assert len(record["resumed"]) == 2
    assert record["slurm"] == {"job_id": job, "array_job_id": None, "array_task_id": None, "restart_count": 2,
                               "started_at_restart": 0}
    text = output.read_text()
    assert text.count("was requeued: resuming its run") == 2 and text.count(" started; run directory") == 3
    got, want = weights(run), torch.load(expected, weights_only=True)["state_dict"]
    assert all(torch.equal(got[key], want[key]) for key in want)


@pytest.mark.slow
def test_a_time_limit_requeues_the_job_and_it_continues(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """``--time=3 --signal=TERM@90``: before each time limit SLURM sends SIGTERM, torch-lab saves
    and requeues the job (``scontrol requeue``), and each start goes on with the same run until
    it completes with the weights of an uninterrupted run. SLURM sends the notice up to ~30 s
    late (90 to 120 s after a start here), so the run is long enough (108 s of batches) to get it,
    and what is left finishes within the next start's limit (typically 2 starts, ~3 minutes)."""
    reference = run_cli("train", toy, "--offline", *EXACT, env={"TORCH_LAB_ARTIFACTS": str(tmp_path / "reference"),
                                                                 "CLEARML_CACHE_DIR": str(tmp_path / "reference")})
    assert reference.returncode == 0, reference.stderr
    [expected] = (tmp_path / "reference").glob("*/checkpoints/last.ckpt")
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH --nodes=1 --ntasks=1 --time=3 --signal=TERM@90 --open-mode=append\n"
                      f"export TORCH_LAB_ARTIFACTS={tmp_path}/artifacts CLEARML_CACHE_DIR={tmp_path}/clearml-cache\n"
                      f"srun train experiments/01_toy/hparams.py {' '.join(EXACT)} --set config.batch_sleep=4.5\n")
    job = slurm.sbatch(script, "--output", str(tmp_path / "slurm-%j.out"), cwd=tmp_path)
    fields = slurm.wait(job, timeout=480)
    text = (tmp_path / f"slurm-{job}.out").read_text()
    assert fields["JobState"] == "COMPLETED" and int(fields["Restarts"]) >= 1, text
    run, record = one_run(tmp_path)
    assert_completed(run, record, 6)
    assert len(record["resumed"]) == int(fields["Restarts"]) == text.count(f"SLURM job {job} requeued:")
    got, want = weights(run), torch.load(expected, weights_only=True)["state_dict"]
    assert all(torch.equal(got[key], want[key]) for key in want)


@pytest.mark.slow
def test_scancel_ends_the_job_and_keeps_the_run_interrupted(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """``scancel`` is the end: the run stops, saves and stays interrupted; torch-lab does not
    requeue the job (only a still-running job's SIGTERM, a time limit's notice, does that)."""
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n#SBATCH --nodes=1 --ntasks=1 --requeue\n"
                      f"export TORCH_LAB_ARTIFACTS={tmp_path}/artifacts CLEARML_CACHE_DIR={tmp_path}/clearml-cache\n"
                      f"srun train experiments/01_toy/hparams.py {' '.join(EXACT)} --set config.batch_sleep=0.5\n")
    job = slurm.sbatch(script, "--output", str(tmp_path / "slurm-%j.out"), cwd=tmp_path)
    wait_for("epoch 0", lambda: history_rows(tmp_path) >= 1)
    slurm.run("scancel", job)
    fields = slurm.wait(job)
    text = (tmp_path / f"slurm-{job}.out").read_text()
    assert fields["JobState"] == "CANCELLED" and fields["Restarts"] == "0", text
    assert "requeued" not in text
    [record_path] = (tmp_path / "artifacts").glob("*/run.json")
    wait_for("the interrupted record", lambda: json.loads(record_path.read_text())["status"] == "interrupted",
             timeout=30)  # (the job is CANCELLED at once; its step has KillWait, 30 s, to finish)
    assert (record_path.parent / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_a_requeued_job_of_two_nodes_continues_its_run(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """The docs' script (2 nodes x 1 task, gloo), requeued mid-run: both ranks of the next
    start resume the run from rank zero's last.ckpt; one run, one task, each epoch once. (Not to
    the bit: after a mid-epoch stop its weights differ from the job left alone by ~1e-3 here.)"""
    script = tmp_path / "job.sh"
    script.write_text(cpu_values(readme_script(), tmp_path).replace(
        "hparams.py", f"hparams.py {' '.join(EXACT)} --set config.batch_sleep=0.5"))
    job = slurm.sbatch(script, "--output", str(tmp_path / "slurm.out"), "--open-mode=append", cwd=tmp_path)
    wait_for("epoch 1", lambda: history_rows(tmp_path) >= 2, timeout=240)
    slurm.run("scontrol", "requeue", job)
    fields = slurm.wait(job, timeout=300)
    text = (tmp_path / "slurm.out").read_text()
    assert (fields["JobState"], fields["Restarts"]) == ("COMPLETED", "1"), text
    run, record = one_run(tmp_path)
    assert_completed(run, record, 6)
    assert len(record["resumed"]) == 1 and text.count("resuming the training state") == 2  # both ranks


def submitted(slurm: Cluster, *args: str | Path) -> tuple[str, Path]:
    """``train ... --slurm`` through the real console script and sbatch: the job id it printed and
    the job script it kept."""
    result = run_cli("train", *args, "--slurm", env=slurm.env, timeout=120)
    assert result.returncode == 0, result.stderr
    found = re.search(r"torch-lab: SLURM job (\d+) submitted .*; script (\S+); output (\S+)", result.stdout)
    assert found, result.stdout
    return found[1], Path(found[2]).absolute()  # (printed relative to the working directory)


@pytest.mark.slow
def test_train_slurm_submits_a_job_that_runs(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """``train --slurm``: a job script kept under the artifacts root, submitted; the job runs
    the same command under srun with the requeue settings, and leaves an ordinary run."""
    job, script = submitted(slurm, toy, "--offline", "--time", "00:10:00", "--sbatch-arg=--comment=from-test")
    assert script.parent.parent == tmp_path / "data" / "artifacts" / "slurm"
    text = script.read_text()
    assert all(f"#SBATCH {option}" in text for option in ("--signal=TERM@120", "--requeue", "--open-mode=append"))
    assert text.splitlines()[-1].endswith(f"train {toy} --offline")
    fields = slurm.wait(job)
    output = (script.parent / f"slurm-{job}.out").read_text()
    assert (fields["JobState"], fields["TimeLimit"], fields["Comment"]) == ("COMPLETED", "00:10:00", "from-test"), output
    [record_path] = (tmp_path / "data" / "artifacts").glob("*/run.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "completed" and record["slurm"]["job_id"] == job
    assert output.count(f"task {record['task_id']} started") == 1


@pytest.mark.slow
def test_seeds_with_slurm_are_one_job_array(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """``--seeds 0,1 --slurm``: one job array of two tasks, each one seed's run, in one group."""
    job, script = submitted(slurm, toy, "--offline", "--seeds", "0,1", "--max-parallel", "2")
    assert "#SBATCH --array=0-1%2" in script.read_text()
    for task in (0, 1):
        fields = slurm.wait(f"{job}_{task}")
        assert fields["JobState"] == "COMPLETED", (script.parent / f"slurm-{job}_{task}.out").read_text()
    runs = {path.parent: json.loads(path.read_text()) for path in (tmp_path / "data" / "artifacts").glob("*/run.json")}
    records = list(runs.values())
    seeds = {record["slurm"]["array_task_id"]: json.loads((run / "hparams.json").read_text())["seed"]
             for run, record in runs.items()}
    assert seeds == {"0": 0, "1": 1} and {r["slurm"]["array_job_id"] for r in records} == {job}
    group = {record["group"] for record in records}
    assert len(group) == 1 and group.pop().startswith("01_toy-hparams-seeds-")
    assert all(record["status"] == "completed" for record in records)


@pytest.mark.slow
def test_a_rejected_submission_is_one_line_and_leaves_nothing(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    result = run_cli("train", toy, "--offline", "--slurm", "--partition", "nope", env=slurm.env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "train: error: --slurm: sbatch refused the job: invalid partition specified: nope; "
        "Batch job submission failed: Invalid partition name specified"]
    assert not list((tmp_path / "data" / "artifacts").glob("slurm/*"))


@pytest.mark.slow
def test_runs_shows_a_running_jobs_id_and_state(slurm: Cluster, toy: Path, tmp_path: Path) -> None:
    """``runs`` of a run in a job not finished: its job id and the state squeue gives (RUNNING);
    once the job ended, the id only (no sacct here: accounting is off)."""
    job, _ = submitted(slurm, toy, "--offline", *EXACT, "--set", "config.batch_sleep=0.5")
    artifacts = tmp_path / "data" / "artifacts"
    wait_for("the run's record", lambda: list(artifacts.glob("*/run.json")))
    listed = run_cli("runs", "--json", env=slurm.env)
    [shown] = json.loads(listed.stdout)
    assert (shown["status"], shown["slurm"]["job"], shown["slurm"]["state"]) == ("running", job, "RUNNING")
    table = run_cli("runs", env=slurm.env).stdout.splitlines()
    assert table[0].split()[5:7] == ["slurm", "job"] and f" {job} RUNNING " in table[1]
    slurm.run("scancel", job)
    slurm.wait(job)
    [record_path] = artifacts.glob("*/run.json")
    wait_for("the interrupted record", lambda: json.loads(record_path.read_text())["status"] == "interrupted", 60)
    [shown] = json.loads(run_cli("runs", "--json", env=slurm.env).stdout)
    assert (shown["status"], shown["slurm"]["job"], shown["slurm"]["state"]) == ("interrupted", job, None)
