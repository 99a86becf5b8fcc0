"""Runs grouped over seeds (``runs --group``, ``runs compare --group``, ``runs plot --group``,
``load_groups``): a group is the runs of one task name whose hparams are equal but for ``seed``,
whether ``train --seeds`` started them or not; its statistics are n, the statuses, and mean ± std
(min-max) of the best monitored value and of each final metric. Standard library only."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from typing import Any

from torch_lab.runs import significance
from torch_lab.runs.records import Key, Run, differing
from torch_lab.runs.report import pick_columns, short_ids, short_value, value_text
from torch_lab.storage.atomic import plain_json
from torch_lab.text import csv_table, cut, finite_number, printable, short_names, stats_text, table

#: The hparams keys that tell a group's runs apart (experiment/hparams.py's ``seed``).
SEED_KEYS = ("seed",)
LIST_COLUMNS = ("task name", "first run", "n", "statuses", "seeds", "best: mean ± std (min-max)")


class Group:
    """The runs (oldest first) of one configuration; ``config`` is the first run with its
    hparams but the seed, for ``differing`` and ``hparam``."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = runs
        first = runs[0]
        self.config = Run(first.path, first.record, unseeded(first.tree), first.epochs)

    @property
    def task_id(self) -> str:
        """The first run's task id: any of the group's ids selects it."""
        return self.runs[0].task_id

    @property
    def name(self) -> str | None:
        """The ``train --seeds`` group all its runs were started in, if one."""
        names = {run.record.get("group") for run in self.runs}
        return str(names.pop()) if len(names) == 1 and None not in names else None

    @property
    def seeds(self) -> list[Any]:
        return [run.tree.get("seed") for run in self.runs]

    @property
    def statuses(self) -> dict[str, int]:
        """How many runs have each status, the most frequent first."""
        return dict(Counter(run.status for run in self.runs).most_common())

    @property
    def bests(self) -> list[float]:
        """The runs' best monitored values (the runs without one are left out)."""
        return [float(run.best["value"]) for run in self.runs if finite_number(run.best.get("value"))]

    @property
    def monitor(self) -> str:
        """The monitored metric(s) of the runs' bests (``""`` when none has one)."""
        return "/".join(sorted({str(run.best["monitor"]) for run in self.runs if run.best.get("monitor")}))

    def metric(self, name: str) -> list[float]:
        """The runs' final values of metric ``name`` (those without one left out)."""
        return [float(v) for run in self.runs if finite_number(v := (run.record.get("metrics") or {}).get(name))]

    @property
    def metric_names(self) -> list[str]:
        return sorted({name for run in self.runs for name in run.record.get("metrics") or {}})


def unseeded(tree: dict[str, Any]) -> dict[str, Any]:
    """An hparams tree without its ``SEED_KEYS``."""
    return {key: value for key, value in tree.items() if key not in SEED_KEYS}


def config_key(task_name: str, tree: dict[str, Any]) -> str:
    """What the runs of one group share: the task name and the hparams but the seed."""
    return json.dumps([task_name, unseeded(tree)], sort_keys=True, default=repr)


def group_runs(runs: list[Run]) -> list[Group]:
    """``runs`` grouped by task name and hparams but the seed, in the order of their first runs."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(config_key(run.task_name, run.tree), []).append(run)
    return [Group(members) for members in groups.values()]


def groups_of(chosen: list[Run], runs: list[Run]) -> list[Group]:
    """The groups (of all ``runs``) that the ``chosen`` runs belong to, in the order chosen."""
    found: list[Group] = []
    for group in group_runs(runs):
        if any(run in group.runs for run in chosen):
            found.append(group)
    return sorted(found, key=lambda group: min(chosen.index(run) for run in group.runs if run in chosen))


#: The statistics of a group's values, as ``stats`` gives them.
STATS = ("n", "mean", "std", "min", "max", "ci95_low", "ci95_high")


def stats(values: list[float]) -> dict[str, Any] | None:
    """n, mean, sample std (None for one value), min, max and the mean's 95% interval
    (``ci95_low``, ``ci95_high``: None for one value or without scipy) of ``values``; None for none."""
    if not values:
        return None
    low, high = significance.interval(values) or (None, None)
    return {"n": len(values), "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None, "min": min(values), "max": max(values),
            "ci95_low": low, "ci95_high": high}


def statuses_text(group: Group) -> str:
    """``3 completed`` or ``2 completed, 1 failed``."""
    return ", ".join(f"{count} {status}" for status, count in group.statuses.items())


def seeds_text(group: Group) -> str:
    return ",".join(value_text(seed) if seed is not None else "-" for seed in group.seeds)


def best_text(group: Group) -> str:
    """``<monitor>=mean ± std (min-max)`` of the runs' best values, or ``-``."""
    bests = group.bests
    return f"{group.monitor or 'best'}={stats_text(bests)}" if bests else "-"


def listing(groups: list[Group], columns: list[str] | None = None) -> str:
    """One line per group: task name, first run, n, statuses, seeds, the best value's statistics
    and its mean's 95% interval (with scipy), and the hparams that differ between groups (or those
    ``columns`` names), as ``runs`` prints them."""
    configs = [group.config for group in groups]
    keys = pick_columns(configs, columns) if columns else differing(configs)
    intervals = significance.scipy_special() is not None
    header = [*LIST_COLUMNS, *(["best: 95% interval"] * intervals), *short_names([".".join(key) for key in keys])]
    rows = [header] + [[printable(group.runs[0].task_name), group.task_id, str(len(group.runs)),
                        statuses_text(group), seeds_text(group), printable(best_text(group)),
                        *([significance.interval_text(group.bests)] * intervals),
                        *(printable(short_value(group.config.hparam(key))) for key in keys)]
                       for group in groups]
    return table(rows, right=[2])


def compare(groups: list[Group]) -> str:
    """Groups side by side: their runs, n, statuses, the hparams that differ, mean ± std
    (min-max) of the best value and of each final metric, their means' 95% intervals and each
    group's difference from the first (see ``significance.rows``)."""
    keys = differing([group.config for group in groups])
    rows = [["", *(group.runs[0].task_name for group in groups)],
            ["group", *(group.name or "-" for group in groups)],
            ["runs", *(" ".join(short_ids([run.task_id for run in group.runs])) for group in groups)],
            ["n", *(str(len(group.runs)) for group in groups)],
            ["statuses", *(statuses_text(group) for group in groups)],
            ["seeds", *(seeds_text(group) for group in groups)],
            ["hparams that differ" if keys else "hparams: all the same", *("" for _ in groups)]]
    rows += [[f"  {'.'.join(key)}", *(value_text(group.config.hparam(key)) for group in groups)] for key in keys]
    rows.append(["mean ± std (min-max)", *("" for _ in groups)])
    best = f"best {'/'.join(dict.fromkeys(filter(None, (group.monitor for group in groups))))}".rstrip()
    names = sorted({name for group in groups for name in group.metric_names})
    series = [(best, [group.bests for group in groups]),
              *((name, [group.metric(name) for group in groups]) for name in names)]
    rows += [[f"  {label}", *(stats_text(values) for values in per_group)] for label, per_group in series]
    return table(rows + significance.rows(series))


def group_dict(group: Group) -> dict[str, Any]:
    """A group as plain data (``load_groups``, ``runs --json --group``)."""
    return {"task_name": group.runs[0].task_name, "group": group.name,
            "task_ids": [run.task_id for run in group.runs], "n": len(group.runs),
            "statuses": group.statuses, "seeds": group.seeds, "hparams": group.config.tree,
            "hparams_dotted": group.config.hparams,
            "best": {"monitor": group.monitor or None, **stats(group.bests)} if group.bests else None,
            "metrics": {name: stats(group.metric(name)) for name in group.metric_names}}


def listing_json(groups: list[Group]) -> str:
    """``runs --json --group``: each group's ``group_dict`` (NaN and infinities as null)."""
    return json.dumps(plain_json([group_dict(group) for group in groups]), indent=2, default=str, allow_nan=False)


def compare_json(groups: list[Group]) -> str:
    """``runs compare --group --json``: each group's ``group_dict``; from the second group on,
    ``minus_first``: its difference from the first (``diff``, its 95% interval ``low`` and
    ``high``, ``df`` and Welch's ``p``; None for n < 2 or without scipy) for ``best`` and each
    final metric."""
    first = groups[0]
    found = [group_dict(group) for group in groups]
    for data, group in zip(found[1:], groups[1:]):
        data["minus_first"] = {"best": significance.welch(first.bests, group.bests),
                               "metrics": {name: significance.welch(first.metric(name), group.metric(name))
                                           for name in group.metric_names}}
    return json.dumps(plain_json(found), indent=2, default=str, allow_nan=False)


def csv_text(groups: list[Group]) -> str:
    """``runs --csv --group``: a flat row per group: summary, ``best.*``, dotted hparams and
    ``<metric>.mean`` / ``<metric>.std`` of each final metric."""
    rows = []
    for group in groups:
        data = group_dict(group)
        best = data["best"] or {}
        rows.append({"task_name": data["task_name"], "group": data["group"], "first_run": group.task_id,
                     "task_ids": " ".join(data["task_ids"]), "n": data["n"], "statuses": statuses_text(group),
                     "seeds": seeds_text(group), "best.monitor": best.get("monitor"),
                     **{f"best.{key}": best.get(key) for key in STATS},
                     **data["hparams_dotted"],
                     **{f"{name}.{key}": (values or {}).get(key) for name, values in data["metrics"].items()
                        for key in ("mean", "std")}})
    return csv_table(rows)


def group_labels(groups: list[Group]) -> list[str]:
    """Each group's legend entry: the task name when they differ and the first three hparams
    that differ between groups (else the first run's id start), then ``(n=3)``."""
    keys: list[Key] = differing([group.config for group in groups])[:3]
    names = short_names([".".join(key) for key in keys])
    same_name = len({group.runs[0].task_name for group in groups}) == 1
    texts = [" ".join([*([] if same_name else [cut(group.runs[0].task_name, 24)]),
                       *(f"{name}={cut(short_value(group.config.hparam(key)), 16)}" for name, key in zip(names, keys))])
             for group in groups]
    ids = short_ids([group.task_id for group in groups])
    unique = all(texts) and len(set(texts)) == len(texts)
    return [printable(f"{text if unique else ' '.join(filter(None, [short, text]))} (n={len(group.runs)})")
            for text, short, group in zip(texts, ids, groups)]


def spread(curves: list[tuple[list[float], list[float]]]) -> tuple[list[float], list[float], list[float], list[float]]:
    """Curves of several runs as one: at each x any of them has, the mean, min and max over those
    that have it. Returns xs, means, lows, highs."""
    at: dict[float, list[float]] = {}
    for xs, ys in curves:
        for x, y in zip(xs, ys):
            at.setdefault(x, []).append(y)
    xs = sorted(at)
    return xs, [statistics.fmean(at[x]) for x in xs], [min(at[x]) for x in xs], [max(at[x]) for x in xs]

