"""Start-up cost of ``train``: ``train --help``, ``train <layered demo variant> --print-hparams
--set ...``, a full ``train <demo> --dev-run 1 --offline`` vs a
bare Lightning script training the same batches, and where the extra seconds go (imports, ClearML
``Task.init`` and close, the rest from a profile of the real dev run).

    python benchmarks/startup.py [--repeats 5] [--smoke]

--smoke skips the two slowest parts (the ClearML-defaults task, whose close alone takes seconds, and
the profiled dev run); their results are null.

Every measurement runs in a fresh subprocess (``_probes.py`` for the pieces), so imports are cold
for Python (warm for the disk cache, as on any second run).
"""

from __future__ import annotations

import json
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import common

PROBES = Path(__file__).with_name("_probes.py")
IMPORTS = ("torch", "pytorch_lightning", "clearml")
TASK_TIMEOUT_S = 90  # ClearML's default close can hang for minutes
#: Functions of the profiled dev run: label -> (end of the file path, function name).
PROFILED = {
    "load experiment (its __main__.py imports torch, Lightning)": ("torch_lab/experiment.py",
                                                                   "load_experiment"),
    "import torch_lab.launch.train (ClearML, rest of torch-lab)": ("torch_lab/launch/train.py", "<module>"),
    "trainer argument checks (throwaway Trainer)": ("torch_lab/trainer_args.py", "check_kwargs"),
    "train_config (data, model)": ("torch_lab/experiment.py", "train_config"),
    "tracking.start_task (Task.init)": ("torch_lab/tracking.py", "start_task"),
    "tracking.connect_hparams": ("torch_lab/tracking.py", "connect_hparams"),
    "tracking.store_sources": ("torch_lab/tracking.py", "store_sources"),
    "Trainer.fit": ("pytorch_lightning/trainer/trainer.py", "fit"),
    "Trainer.test": ("pytorch_lightning/trainer/trainer.py", "test"),
    "tracking.record_checkpoints": ("torch_lab/tracking.py", "record_checkpoints"),
    "tracking.finish_task (tags, run.json, close)": ("torch_lab/tracking.py", "finish_task"),
    "total (cli._main)": ("torch_lab/cli.py", "_main"),
}


def probe(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> dict[str, float]:
    """Run ``_probes.py`` with ``args``; the seconds it reports."""
    _, out = common.run_command([sys.executable, PROBES, *args], env=env, timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    """The per-key median of a list of measurements."""
    return {key: common.median([s[key] for s in samples]) for key in samples[0]}


def repeated(count: int, measure: Callable[[int], Any]) -> list[Any]:
    """``measure(i)`` for i in range(count)."""
    return [measure(i) for i in range(count)]


def task_probe(settings: str, count: int, scratch: Path) -> dict[str, float]:
    """Median seconds of ``count`` offline-task probes, each with its own ClearML cache; a probe
    still running after ``TASK_TIMEOUT_S`` is killed and counted as ``hung``."""
    finished, hung = [], 0
    for i in range(count):
        try:
            finished.append(probe("task", settings, timeout=TASK_TIMEOUT_S,
                                  env=common.tracking_env(scratch / f"task-{settings}-{i}")))
        except subprocess.TimeoutExpired:
            hung += 1
    return {**(medians(finished) if finished else {}), "hung": hung}


def dev_run_command(data: common.Data) -> list[str | Path]:
    """``train <demo hparams> --dev-run 1 --offline``, pointed at ``data``."""
    return [common.console_script("train"), common.DEMO_HPARAMS, "--dev-run", "1", "--offline",
            *common.demo_overrides(data)]


def print_hparams_command() -> list[str | Path]:
    """``train <demo's layered variant> --print-hparams`` with two ``--set``."""
    return [common.console_script("train"), common.DEMO_HPARAMS.with_name("hparams_modified.py"),
            "--print-hparams", "--set", "config.batch_size=64", "--set", "trainer.init.max_epochs=1"]


def dev_run_wall(data: common.Data, folder: Path) -> float:
    """Wall seconds of the real dev run, with its artifacts and ClearML cache in ``folder``."""
    folder.mkdir()
    seconds, _ = common.run_command(dev_run_command(data), env=common.tracking_env(folder), cwd=folder)
    return seconds


def profiled_dev_run(data: common.Data, folder: Path) -> dict[str, float]:
    """Cumulative seconds of the ``PROFILED`` functions in one real dev run under cProfile."""
    folder.mkdir()
    output = folder / "dev-run.prof"
    command = [sys.executable, "-m", "cProfile", "-o", output, *dev_run_command(data)]
    common.run_command(command, env=common.tracking_env(folder), cwd=folder)
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(output)).stats  # type: ignore[attr-defined]
    result = {}
    for label, (suffix, function) in PROFILED.items():
        result[label] = sum(row[3] for (path, _, name), row in stats.items()
                            if path.endswith(suffix) and name == function)
    return result


def extra_breakdown(extra: float, torch_lab_task: dict[str, float]) -> dict[str, float]:
    """Split the dev run's extra seconds over the bare script into ClearML's import (after torch and
    Lightning), Task.init, close, and the rest."""
    known = {"import clearml (after torch, Lightning)": torch_lab_task["clearml"],
             "Task.init (torch-lab settings)": torch_lab_task["configure"] + torch_lab_task["task_init"],
             "Task.close (torch-lab settings)": torch_lab_task["close"]}
    return {**known, "rest = extra - the above (run directory, checkpoints, artifacts, noise)":
            extra - sum(known.values())}


def main() -> None:
    parser = common.parser("startup", __doc__.splitlines()[0])
    parser.set_defaults(repeats=5)
    args = parser.parse_args()
    count = common.repeats(args)
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch_name:
        scratch = Path(scratch_name)
        data = common.prepare_data(args.data_dir, scratch, args.smoke)
        print("timing train --help, the dev run and the bare Lightning script ...", flush=True)
        help_seconds = repeated(count, lambda i: common.run_command(
            [common.console_script("train"), "--help"])[0])
        print_seconds = repeated(count, lambda i: common.run_command(print_hparams_command())[0])
        # Pairs, one after the other, so that drifting machine speed hits both alike.
        pairs = repeated(count, lambda i: (dev_run_wall(data, scratch / f"dev-run-{i}"), common.timed(
            lambda: probe("bare-dev-run", str(common.DEMO_HPARAMS), str(data.data_dir),
                          str(data.val_size)))))
        dev_run = [seconds for seconds, _ in pairs]
        bare = [timed for _, timed in pairs]
        print("timing imports and ClearML tasks ...", flush=True)
        imports = medians(repeated(count, lambda i: {m: probe("import", m)[m] for m in IMPORTS}))
        tasks = {settings: task_probe(settings, count, scratch)
                 for settings in (("torch-lab",) if args.smoke else ("torch-lab", "defaults"))}
        print("profiling one dev run ...", flush=True)
        profile = None if args.smoke else profiled_dev_run(data, scratch / "profiled")
    wall = {"train_help": common.median(help_seconds),
            "train_print_hparams": common.median(print_seconds), "train_dev_run": common.median(dev_run),
            "bare_lightning_dev_run": common.median([seconds for seconds, _ in bare])}
    wall["extra"] = common.median([d - b for d, (b, _) in zip(dev_run, bare)])  # of the pairs
    breakdown = extra_breakdown(wall["extra"], tasks["torch-lab"])

    common.print_table(f"wall seconds, median of {count}",
                       [{"what": k, "seconds": v} for k, v in wall.items()])
    common.print_table("where the extra seconds go (estimated from the probes below)",
                       [{"part": k, "seconds": v} for k, v in breakdown.items()])
    common.print_table("import seconds, each alone in a fresh process",
                       [{"module": k, "seconds": v} for k, v in imports.items()])
    common.print_table("offline ClearML task, seconds: torch-lab settings vs ClearML defaults "
                       "(imports in order, after one another)",
                       [{"step": k, **{s: t.get(k, "-") for s, t in tasks.items()}}
                        for k in tasks["torch-lab"]])
    if profile is not None:
        common.print_table("profiled dev run, cumulative seconds (cProfile inflates Python-heavy "
                           "parts)", [{"function": k, "seconds": v} for k, v in profile.items()])
    common.write_json(args.out, {
        "benchmark": "startup",
        "settings": {"repeats": count, "synthetic_data": data.synthetic, "smoke": args.smoke},
        "environment": common.environment(),
        "wall_seconds": wall,
        "extra_breakdown": breakdown,
        "bare_lightning_phases": medians([phases for _, phases in bare]),
        "imports_alone": imports,
        "task_offline": {"torch_lab": tasks["torch-lab"], "clearml_defaults": tasks.get("defaults")},
        "profiled_dev_run": profile,
    })


if __name__ == "__main__":
    main()
