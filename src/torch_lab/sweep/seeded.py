"""A sweep trial over several seeds (the sweep's ``seeds``): its runs, one after another, are those
``train --seeds`` would start (``torch_lab.children.seeds``), tagged as one group; their outcomes
make the trial's, whose objective is the mean of the seeds' best values.

Only the first seed's run reports to Optuna's pruner (see ``trial_env``): Optuna keeps one
intermediate value per step of a trial, so a later seed could not report its epochs again.
"""

from __future__ import annotations

import math
from typing import Any

from torch_lab.children.seeds import jobs
from torch_lab.text import mean_std


def trial_runs(argv: list[str], seeds: list[int] | None) -> list[tuple[int | None, list[str]]]:
    """The ``train`` arguments of a trial's runs: ``argv`` once (no seeds), or once per seed
    with ``--set seed=<seed>`` as ``train --seeds`` adds it."""
    if not seeds:
        return [(None, argv)]
    return [(seed, args) for seed, (_, args) in zip(seeds, jobs(argv[:1], seeds, argv[1:]))]


def group(name: str, number: int) -> str:
    """The group of a trial's seed runs: ``<sweep name>-trial-<n>``."""
    return f"{name}-trial-{number}"


def trial_env(env: dict[str, Any], seed: int | None, first: bool) -> dict[str, Any]:
    """A run's ``TORCH_LAB_SWEEP_TRIAL``: the trial's, plus its seed; a seed run after the first
    gets no pruner (the first seed's epochs are the trial's intermediate values)."""
    if seed is None:
        return env
    return {**env, "seed": seed, **({} if first else {"pruner": {"type": "none"}})}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def combine(outcomes: list[tuple[int, dict[str, Any]]], seeds: list[int], direction: str) -> dict[str, Any]:
    """The trial's result from its seed runs' results, in order: the first that did not complete
    (failed, pruned, interrupted) makes the trial's status; else ``best.value`` is the mean of
    the seeds' best values, ``task_id`` and ``best.path`` the best seed's, ``seeds`` each seed's
    ``seed``, ``status``, ``value``, ``task_id``, ``checkpoint``."""
    runs = [{"seed": seed, "status": result.get("status", "failed"), "task_id": result.get("task_id"),
             "value": (result.get("best") or {}).get("value"), "checkpoint": (result.get("best") or {}).get("path")}
            for seed, result in outcomes]
    for (seed, result), run in zip(outcomes, runs):
        if run["status"] != "completed":
            error = result.get("error")
            return {**result, "status": run["status"], "error": f"seed {seed}: {error}" if error else None,
                    "seeds": runs}
        if not _number(run["value"]):
            monitor = (result.get("best") or {}).get("monitor") or "metric"
            return {**result, "status": "failed", "error": f"seed {seed}: the run logged no {monitor}", "seeds": runs}
    if len(runs) < len(seeds):
        return {"status": "interrupted", "task_id": runs[-1]["task_id"] if runs else None, "seeds": runs,
                "error": f"the sweep stopped before seed {seeds[len(runs)]}"}
    best = (min if direction == "minimize" else max)(runs, key=lambda run: run["value"])
    mean, _ = mean_std([run["value"] for run in runs])
    monitor = (outcomes[0][1].get("best") or {}).get("monitor")
    return {"status": "completed", "task_id": best["task_id"], "seeds": runs,
            "best": {"monitor": monitor, "value": mean, "path": best["checkpoint"]}}
