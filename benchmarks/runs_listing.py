"""Wall time of the real ``runs`` console script over many run directories (1,000 by default),
against a bare Python start measured in the same invocation.

    python benchmarks/runs_listing.py [--runs 1000] [--epochs 20] [--repeats 5] [--smoke]

The run directories are written like torch-lab's (run.json, hparams.json with the demo's ~30
hparams keys, history.csv, checkpoints/), with differing learning rates and seeds, a mix of
statuses and a sweep. Every command runs in a fresh process, interleaved in rotating order.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
from pathlib import Path

import common

BAR_S = 0.5  # the bar for `runs` over 1,000 run directories
STATUSES = ("completed", "completed", "completed", "failed", "interrupted", "pruned")


def write_runs(root: Path, count: int, epochs: int) -> list[str]:
    """``count`` run directories under ``root``; their task ids, oldest first."""
    base = common.demo_hparams()
    ids = []
    for index in range(count):
        task_id = f"offline-{index:032x}"
        path = root / f"00_mnist_demo-hparams-{task_id}"
        (path / "checkpoints").mkdir(parents=True)
        status = STATUSES[index % len(STATUSES)]
        hparams = {**base, "seed": 1000 + index,
                   "config": {**base["config"], "learning_rate": 10 ** -(1 + index % 4)}}
        minute = f"2026-01-{1 + index // 1440 % 28:02d}T{index // 60 % 24:02d}:{index % 60:02d}"
        record = {"task_id": task_id, "task_name": "00_mnist_demo-hparams", "project_name": "bench",
                  "offline": True, "status": status, "started": f"{minute}:00+00:00",
                  "finished": f"{minute}:30+00:00",
                  "metrics": {"loss/val": 0.1, "accuracy/val": 0.97},
                  "best": {"monitor": "loss/val", "mode": "min", "value": 0.1 + index / count, "epoch": 3,
                           "path": str(path / "checkpoints" / "best.ckpt")},
                  **({"sweep": {"name": "lr", "trial": index}} if status == "pruned" else {})}
        (path / "run.json").write_text(json.dumps(record, indent=2) + "\n")
        (path / "hparams.json").write_text(json.dumps(hparams, indent=2, default=str) + "\n")
        rows = "".join(f"{e},0.9,0.5,0.95,0.2,0.001,12.5,1.5\n" for e in range(epochs))
        (path / "history.csv").write_text("epoch,accuracy/train,loss/train,accuracy/val,loss/val,"
                                          f"lr-AdamW,train_seconds,val_seconds\n{rows}")
        ids.append(task_id)
    return ids


def cpu_of_children() -> float:
    """User and system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = common.parser("runs_listing", __doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="run directories (default 1000)")
    parser.add_argument("--epochs", type=int, default=20, help="history.csv rows per run (default 20)")
    args = parser.parse_args()
    count = 50 if args.smoke else args.runs
    repeats = 1 if args.smoke else max(1, args.repeats)
    runs = str(common.console_script("runs"))
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        root = Path(scratch) / "artifacts"
        ids = write_runs(root, count, args.epochs)
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "runs": [runs, "--root", root],
            "runs --json": [runs, "--root", root, "--json"],
            "runs --status pruned": [runs, "--root", root, "--status", "pruned"],
            "runs show ID": [runs, "--root", root, "show", ids[-1]],
        }
        names = list(commands)
        seconds: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for repeat in range(repeats):
            for name in names[repeat % len(names):] + names[:repeat % len(names)]:  # rotating order
                before = cpu_of_children()
                wall, stdout = common.run_command(commands[name])
                seconds[name].append(wall)
                cpu[name].append(cpu_of_children() - before)
                if name == "runs":
                    assert len(stdout.splitlines()) == count + 1, "one line per run and a header"
    wall = {name: common.median(values) for name, values in seconds.items()}
    cpu_median = {name: common.median(values) for name, values in cpu.items()}
    baseline = wall["python -c pass (baseline)"]
    common.print_table(f"`runs` over {count} run directories ({args.epochs} epochs each), "
                       f"median of {repeats}", [
                           {"command": name, "wall s": value, "over bare Python s": value - baseline,
                            "CPU s": cpu_median[name]} for name, value in wall.items()])
    print(f"runs over {count} run directories: {wall['runs']:.3f} s wall, {cpu_median['runs']:.3f} s CPU "
          f"(bar {BAR_S} s for 1,000); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    common.write_json(args.out, {
        "benchmark": "runs_listing",
        "settings": {"runs": count, "epochs": args.epochs, "repeats": repeats, "smoke": args.smoke,
                     "synthetic_data": True},
        "environment": common.environment(),
        "wall_seconds": wall,
        "per_repeat_seconds": seconds,
        "cpu_seconds": cpu_median,
        "bar_s": BAR_S,
        "under_bar": wall["runs"] < BAR_S,
    })


if __name__ == "__main__":
    main()
