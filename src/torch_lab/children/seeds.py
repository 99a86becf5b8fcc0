"""``train HPARAMS.py --seeds 0,1,2``: the same hparams once per seed, each an ordinary run (its own
process, task and run directory) tagged as one group; then each seed's outcome, and n, mean ± std
(min-max) of the best monitored value and of every final metric. ``--seeds +3`` adds three
seeds to the group of runs already there with the same hparams (``grown``)."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from torch_lab.text import finite_number, number_text, stats_text, table

#: The seed of a job's label: ``<hparams path> seed=<seed>``.
SEED_MARK = " seed="


class More(NamedTuple):
    """``--seeds +N``: N more seeds for the group already there (see ``grown``)."""

    count: int


def resolve_seeds(spec: list[int] | int) -> tuple[list[int], bool]:
    """The seeds asked for: the list given, or ``spec`` seeds drawn (recorded by the runs, printed
    here); whether they were drawn."""
    if isinstance(spec, list):
        return spec, False
    draw = random.SystemRandom()
    return [draw.randrange(2**31) for _ in range(spec)], True


def grown(path: str, overrides: list[str], more: More, devices: Any = None,
          root: Path | None = None) -> tuple[list[int], str, list[Any]]:
    """``--seeds +N`` of ``path`` with ``overrides`` (and ``--devices``): the group its runs
    would join (``runs --group``'s: the runs under ``root`` of the same task name and hparams
    but the seed), the N smallest seeds none of its runs has, the name of the ``train --seeds``
    group of its latest such run (else a new one) and the seeds it has. No such runs: a
    UserError naming the file."""
    from torch_lab.errors import UserError, display_path
    from torch_lab.experiment import load_hparams
    from torch_lab.experiment.config import default_task_name
    from torch_lab.runs.groups import config_key
    from torch_lab.runs.records import read_runs
    from torch_lab.storage.run_dir import artifacts_root

    resolved, tree = load_hparams(path, overrides)
    if devices is not None:  # as the run sets it (launch.train.make_plan)
        tree["trainer"]["init"]["devices"] = devices
    key = config_key(tree["task"].get("task_name") or default_task_name(resolved), tree)
    root = root or artifacts_root()

    def warn(line: str) -> None:
        print(f"train: warning: {line}", file=sys.stderr)

    runs = [run for run in (read_runs(root, warn) if root.is_dir() else []) if config_key(run.task_name, run.tree) == key]
    if not runs:
        raise UserError(f"--seeds +{more.count}: no runs of {display_path(resolved)} with these hparams under "
                        f"{display_path(root)} to add seeds to; start the group with --seeds N (runs --group "
                        "lists the groups)")
    used = [run.tree.get("seed") for run in runs]
    seeds = [seed for seed in range(len(used) + more.count) if seed not in used][:more.count]
    names = [run.record["group"] for run in runs if isinstance(run.record.get("group"), str)]
    return seeds, names[-1] if names else group_name([path]), used


def group_name(paths: list[str]) -> str:
    """A name for one ``--seeds`` command's runs: the first file's experiment and a time stamp."""
    first = paths[0].rstrip("/").split("/")
    stem = first[-1].removesuffix(".py")
    folder = first[-2] if len(first) > 1 else "experiment"
    return f"{folder}-{stem}-seeds-{time.strftime('%Y%m%d-%H%M%S')}"


def announce(paths: list[str], spec: list[int] | int | More, overrides: list[str],
             devices: Any = None) -> tuple[list[int], str]:
    """The seeds of one ``--seeds`` command and its group's name, printed (drawn seeds too; with
    ``+N``, the group's seeds so far). ``+N`` takes one file (else a UserError)."""
    if isinstance(spec, More):
        if len(paths) > 1:
            from torch_lab.errors import UserError

            raise UserError(f"--seeds +{spec.count} adds seeds to one group: give one hparams file, "
                            f"got {len(paths)}")
        chosen, group, used = grown(paths[0], overrides, spec, devices)
        print(f"torch-lab: group {group}: {len(used)} runs, seeds {', '.join(map(str, used))}; adding seeds "
              f"{', '.join(map(str, chosen))}", flush=True)
        return chosen, group
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
