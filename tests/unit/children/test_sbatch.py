"""``train --slurm``'s job script: the resources asked, the requeue settings the cluster page
documents, one ``srun train`` per run (picked by the array task), and options refused without
``--slurm``. (Submitted to a real SLURM in tests/scenarios/test_slurm.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from torch_lab.children import sbatch
from torch_lab.cli.parsers import train_parser


def parsed(*argv: str):
    return train_parser().parse_intermixed_args(["exp/hparams.py", *argv])


def test_one_run_on_two_nodes_of_four_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/train", "exp/hparams.py", "--slurm"])
    args = parsed("--slurm", "--nodes", "2", "--gpus-per-node", "4", "--time", "24:00:00", "--partition", "gpu",
                  "--account", "lab", "--sbatch-arg=--mem=40G", "--sbatch-arg=--signal=TERM@300")
    script = sbatch.job_script(args, [("exp/hparams.py", ["exp/hparams.py", "--offline"])], "exp-hparams", tmp_path)
    sbatch_lines = [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH")]
    assert sbatch_lines == [
        "--job-name=exp-hparams", "--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--time=24:00:00",
        "--partition=gpu", "--account=lab", "--signal=TERM@120", "--requeue", "--open-mode=append",
        f"--chdir={Path.cwd()}", f"--output={tmp_path}/slurm-%j.out", "--mem=40G", "--signal=TERM@300"]
    assert script.splitlines()[-1] == ("srun /venv/bin/train exp/hparams.py --offline "
                                       "--set trainer.init.num_nodes=2 --devices 4")
    assert f"export TORCH_LAB_ARTIFACTS={Path('data/artifacts').absolute()}" in script


def test_seeds_are_one_array_whose_tasks_pick_their_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/train"])
    args = parsed("--slurm", "--max-parallel", "2", "--devices", "2")
    runs = [("a seed=0", ["a.py", "--set", "seed=0"]), ("a seed=1", ["a.py", "--set", "seed=1"]),
            ("b", ["b's.py"])]
    script = sbatch.job_script(args, runs, "x", tmp_path, group="x-seeds-1")
    assert "#SBATCH --array=0-2%2" in script and "#SBATCH --ntasks-per-node=2" in script
    assert f"#SBATCH --output={tmp_path}/slurm-%A_%a.out" in script
    assert "export TORCH_LAB_GROUP=x-seeds-1" in script
    for task, expected in ((1, "a.py --set seed=1"), (2, "b's.py")):  # bash picks the task's arguments
        body = script.split('case "$SLURM_ARRAY_TASK_ID"')[1].replace("srun /venv/bin/train", "echo")
        shown = subprocess.run(["bash", "-c", 'case "$SLURM_ARRAY_TASK_ID"' + body], capture_output=True,
                               text=True, env={"SLURM_ARRAY_TASK_ID": str(task)}).stdout.strip()
        assert shown == expected


@pytest.mark.parametrize("argv, line", [
    (["--nodes", "2"], "train: error: --nodes is a SLURM job's setting: add --slurm to submit the run as a job, "
                       "or leave it out"),
    (["--time", "1:00:00"], "train: error: --time is a SLURM job's setting: add --slurm to submit the run as a "
                            "job, or leave it out"),
    (["--slurm", "--queue", "gpu"], "train: error: --queue gpu with --slurm: run it through a ClearML agent "
                                    "(--queue) or as a SLURM job (--slurm), not both")])
def test_options_refused(argv: list[str], line: str, capsys: pytest.CaptureFixture) -> None:
    parser = train_parser()
    with pytest.raises(SystemExit) as stop:
        sbatch.check_options(parser, parser.parse_intermixed_args(["a.py", *argv]))
    assert stop.value.code == 2 and capsys.readouterr().err.strip() == line
