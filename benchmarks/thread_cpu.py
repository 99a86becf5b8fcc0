"""Whose threads use the CPU while ``train`` trains the MNIST CNN: the training thread, torch's
native pool, ClearML's threads (its reporter, resource monitor, stream capture), over the second
of two epochs (training and validation), from ``/proc/self/task/*/stat``:

    train          the real ``train --offline``, torch-lab's ClearML settings
    train_quiet    the same with ClearML's resource monitor and stream capture off
                   (``task.auto_resource_monitoring`` / ``task.auto_connect_streams`` False)

    python benchmarks/thread_cpu.py [--repeats 5] [--max-batches 200] [--smoke]

Each run is a fresh process; the variants are interleaved, each round in another order. Reports
CPU seconds per owner, ClearML's share of the process's CPU, median and range over the rounds.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import common

EXPERIMENT = Path(__file__).parent / "thread_cpu_experiment"
VARIANTS = {"train": {}, "train_quiet": {"task.auto_resource_monitoring": False,
                                         "task.auto_connect_streams": False}}


def run(variant: str, data: common.Data, max_batches: int, folder: Path) -> dict[str, Any]:
    """One ``train --offline`` of the variant; its timed epoch's clocks and threads."""
    timing_file = folder / "timing.json"
    overrides = {"config.data_dir": str(data.data_dir), "config.val_size": data.val_size,
                 "config.timing_file": str(timing_file), "trainer.init.limit_train_batches": max_batches,
                 **VARIANTS[variant]}
    common.run_command([common.console_script("train"), EXPERIMENT / "hparams.py", "--offline",
                        *(part for key, value in overrides.items() for part in ("--set", f"{key}={value!r}"))],
                       env=common.tracking_env(folder))
    return json.loads(timing_file.read_text())


def spread(values: list[float]) -> str:
    values = sorted(values)
    return f"{common.median(values):.3g} ({values[0]:.3g}-{values[-1]:.3g})"


def main() -> None:
    parser = common.parser("thread_cpu", __doc__.splitlines()[0])
    parser.add_argument("--max-batches", type=int, default=200, help="training batches per epoch (default 200)")
    parser.set_defaults(repeats=5)
    args = parser.parse_args()
    max_batches = common.SMOKE_BATCHES if args.smoke else args.max_batches
    names = list(VARIANTS)
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="torch-lab-bench-") as scratch:
        data = common.prepare_data(args.data_dir, Path(scratch), args.smoke)
        for repeat in range(common.repeats(args)):
            order = names[repeat % 2:] + names[:repeat % 2]
            print(f"round {repeat + 1}: {', '.join(order)} ...", flush=True)
            rounds.append({name: run(name, data, max_batches, Path(scratch) / f"{name}-{repeat}")
                           for name in order})
    rows, summary = [], {}
    for name in names:
        timings = [r[name] for r in rounds]
        owners = sorted({owner for t in timings for owner in t["threads"]})
        share = [100 * t["threads"].get("clearml", 0.0) / t["cpu_seconds"] for t in timings]
        summary[name] = {
            "process_cpu_s": [t["cpu_seconds"] for t in timings], "wall_s": [t["seconds"] for t in timings],
            "training_thread_cpu_s": [t["thread_cpu_seconds"] for t in timings],
            "owners_cpu_s": {o: [t["threads"].get(o, 0.0) for t in timings] for o in owners},
            "clearml_percent_of_process_cpu": share}
        rows.append({"variant": name, "process CPU s": spread(summary[name]["process_cpu_s"]),
                     "training thread CPU s": spread(summary[name]["training_thread_cpu_s"]),
                     **{f"{o} CPU s": spread(v) for o, v in summary[name]["owners_cpu_s"].items() if o != "training"},
                     "ClearML % of CPU": spread(share), "wall s": spread(summary[name]["wall_s"])})
    common.print_table(f"second epoch, {max_batches} training batches + validation, median (range) of "
                       f"{len(rounds)} rounds", rows)
    common.write_json(args.out, {
        "benchmark": "thread_cpu",
        "settings": {"max_batches": max_batches, "repeats": len(rounds), "synthetic_data": data.synthetic,
                     "smoke": args.smoke},
        "environment": common.environment(),
        "variants": summary,
    })


if __name__ == "__main__":
    main()
