"""``train HPARAMS.py --seeds 0,1,2``: the same hparams once per seed, each an ordinary run (its own
process, task and run directory) tagged as one group; then each seed's outcome, and n, mean ± std
(min-max) of the best monitored value and of every final metric."""

from __future__ import annotations

import random
import time
from typing import Any

from torch_lab.text import finite_number, number_text, stats_text, table

#: The seed of a job's label: ``<hparams path> seed=<seed>``.
SEED_MARK = " seed="


def resolve_seeds(spec: list[int] | int) -> tuple[list[int], bool]:
    """The seeds asked for: the list given, or ``spec`` seeds drawn (recorded by the runs, printed
    here); whether they were drawn."""
    if isinstance(spec, list):
        return spec, False
    draw = random.SystemRandom()
    return [draw.randrange(2**31) for _ in range(spec)], True


def group_name(paths: list[str]) -> str:
    """A name for one ``--seeds`` command's runs: the first file's experiment and a time stamp."""
    first = paths[0].rstrip("/").split("/")
    stem = first[-1].removesuffix(".py")
    folder = first[-2] if len(first) > 1 else "experiment"
    return f"{folder}-{stem}-seeds-{time.strftime('%Y%m%d-%H%M%S')}"


def announce(paths: list[str], spec: list[int] | int) -> tuple[list[int], str]:
    """The seeds of one ``--seeds`` command and its group's name, printed (drawn seeds too)."""
    chosen, drawn = resolve_seeds(spec)
    group = group_name(paths)
    print(f"torch-lab: group {group}: seeds {', '.join(map(str, chosen))}{' (drawn)' if drawn else ''}",
          flush=True)
    return chosen, group


def jobs(paths: list[str], seeds: list[int], child_args: list[str]) -> list[tuple[str, list[str]]]:
    """Each file once per seed: ``(label, train arguments)``."""
    return [(f"{path}{SEED_MARK}{seed}", [path, *child_args, "--set", f"seed={seed}"])
            for path in paths for seed in seeds]


def summary(results: list[tuple[str, dict[str, Any]]]) -> str:
    """One row per run (file, seed, task id, status, best), then per file n, mean ± std (min-max)
    of the best value and of each final metric over its completed runs."""
    rows = [("hparams", "seed", "task id", "status", "best")]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for label, result in results:
        path, _, seed = label.rpartition(SEED_MARK)
        best = result.get("best") or {}
        value = best.get("value")
        shown = f"{best.get('monitor')}={number_text(float(value))}" if finite_number(value) else "-"
        rows.append((path, seed, result.get("task_id") or "-", result.get("status", "?"), shown))
        by_file.setdefault(path, []).append(result)
    lines = [table(rows)]
    for path, runs in by_file.items():
        done = [run for run in runs if run.get("status") == "completed"]
        lines.append(f"{path}: n={len(done)} of {len(runs)} completed")
        stats = [("metric", "mean ± std (min-max)")]
        monitors = {(run.get("best") or {}).get("monitor") for run in done} - {None}
        bests = [float(run["best"]["value"]) for run in done if finite_number((run.get("best") or {}).get("value"))]
        if bests:
            stats.append((f"best {'/'.join(sorted(monitors))}", stats_text(bests)))
        names = sorted({name for run in done for name, v in (run.get("metrics") or {}).items() if finite_number(v)})
        for name in names:
            stats.append((name, stats_text([float(run["metrics"][name]) for run in done
                                         if finite_number((run.get("metrics") or {}).get(name))])))
        if len(stats) > 1:
            lines.append(table(stats))
    return "\n".join(lines)
