"""``runs diff A B``: what differs between two runs, to tell why their results differ: the hparams
(dotted keys, old -> new), the final and best metrics side by side, the lineage (started from,
sweep, ``train --seeds`` group), the environment run.json recorded (``environment``) and a
unified diff of the experiment's sources (each run's source.zip). Standard library only."""

from __future__ import annotations

import difflib
import json
import zipfile
from typing import Any

from torch_lab.runs.records import MISSING, Run
from torch_lab.runs.report import metric_text, value_text
from torch_lab.storage.atomic import plain_json
from torch_lab.text import printable, table


def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as dotted keys (``machine.hostname``)."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    found: dict[str, Any] = {}
    for key, value in tree.items():
        found.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def changed(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """The keys whose values differ (MISSING where one lacks the key), in a's order then b's."""
    keys = list(dict.fromkeys([*a, *b]))
    return [{"key": key, "a": a.get(key, MISSING), "b": b.get(key, MISSING)}
            for key in keys if a.get(key, MISSING) != b.get(key, MISSING)]


def sources(run: Run) -> dict[str, str] | None:
    """The text of each file in the run's source.zip; None when it has none or it cannot be read."""
    try:
        with zipfile.ZipFile(run.path / "source.zip") as zipped:
            return {name: zipped.read(name).decode("utf-8", "replace") for name in sorted(zipped.namelist())}
    except (OSError, zipfile.BadZipFile, KeyError):
        return None


def sources_diff(a: Run, b: Run) -> dict[str, Any]:
    """``same`` (the files equal in both), ``changed`` (a unified diff per file that differs or is
    in one only) and ``missing`` (the runs without a readable source.zip)."""
    files_a, files_b = sources(a), sources(b)
    missing = [run.task_id for run, files in ((a, files_a), (b, files_b)) if files is None]
    files_a, files_b = files_a or {}, files_b or {}
    same, diffs = [], {}
    for name in sorted({*files_a, *files_b}) if not missing else ():
        old, new = files_a.get(name), files_b.get(name)
        if old == new:
            same.append(name)
            continue
        diffs[name] = "".join(difflib.unified_diff(
            (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
            f"a/{name}" if old is not None else "/dev/null", f"b/{name}" if new is not None else "/dev/null"))
    return {"same": same, "changed": diffs, "missing": missing}


def lineage_of(run: Run) -> dict[str, Any]:
    """Where the run came from: the run or file it started from, its sweep and trial, its group."""
    started = run.record.get("started_from") or {}
    sweep = run.record.get("sweep") or {}
    return {"started from": started.get("task_id") or started.get("path"),
            "checkpoint": started.get("checkpoint"),
            "sweep": f"{sweep.get('name')} (trial {sweep.get('trial')})" if sweep else None,
            "group": run.record.get("group")}


def metrics_of(run: Run) -> dict[str, Any]:
    """The best value (as ``best <monitor>``) and every final metric."""
    best = run.best
    found = {f"best {best.get('monitor', '?')}": best["value"]} if best.get("value") is not None else {}
    return {**found, **{name: value for name, value in sorted((run.record.get("metrics") or {}).items())}}


def diff(a: Run, b: Run) -> dict[str, Any]:
    """Everything ``runs diff`` shows, as plain data (``--json``)."""
    return {"a": summary(a), "b": summary(b),
            "hparams": changed(a.hparams, b.hparams),
            "metrics": [{"name": name, "a": metrics_of(a).get(name), "b": metrics_of(b).get(name)}
                        for name in dict.fromkeys([*metrics_of(a), *metrics_of(b)])],
            "lineage": {key: {"a": value, "b": lineage_of(b)[key]} for key, value in lineage_of(a).items()},
            "environment": changed(flat(a.record.get("environment")), flat(b.record.get("environment")))
            if a.record.get("environment") and b.record.get("environment") else None,
            "sources": sources_diff(a, b)}


def summary(run: Run) -> dict[str, Any]:
    return {"task_id": run.task_id, "task_name": run.task_name, "status": run.status,
            "started": run.record.get("started"), "path": str(run.path),
            "environment": run.record.get("environment")}


def diff_json(a: Run, b: Run) -> str:
    """``runs diff --json``: ``diff`` with a key a run lacks as null and NaN as null."""
    data = diff(a, b)
    for row in [*data["hparams"], *(data["environment"] or [])]:
        row.update({side: None if row[side] is MISSING else row[side] for side in ("a", "b")})
    return json.dumps(plain_json(data), indent=2, default=str, allow_nan=False)


def diff_text(a: Run, b: Run) -> str:
    """``runs diff A B`` as a terminal shows it."""
    data = diff(a, b)
    parts = [f"a: {a.task_name} {a.task_id} ({a.status})\nb: {b.task_name} {b.task_id} ({b.status})"]
    parts.append(_changes("hparams", data["hparams"]))
    numbers = [["metrics", "a", "b", "b - a"]]
    for row in data["metrics"]:
        both = row["a"] is not None and row["b"] is not None
        numbers.append([f"  {row['name']}", metric_text(row["a"]), metric_text(row["b"]),
                        f"{row['b'] - row['a']:+.6g}" if both else "-"])
    parts.append(table(numbers).rstrip() if len(numbers) > 1 else "metrics: none")
    rows = [["lineage", "a", "b"]] + [[f"  {key}", str(pair["a"] or "-"), str(pair["b"] or "-")]
                                      for key, pair in data["lineage"].items()]
    parts.append(table(rows).rstrip())
    parts.append(_changes("environment", data["environment"]) if data["environment"] is not None else
                 "environment: not recorded by " + " and ".join(
                     run.task_id for run in (a, b) if not run.record.get("environment")) + " (older torch-lab)")
    found = data["sources"]
    if found["missing"]:
        parts.append(f"sources: no readable source.zip in {' and '.join(found['missing'])}")
    elif not found["changed"]:
        parts.append(f"sources: the same ({len(found['same'])} files)")
    else:
        parts.append(f"sources: {len(found['changed'])} files differ, {len(found['same'])} the same\n"
                     + "".join(found["changed"].values()).rstrip("\n"))
    return printable_lines("\n\n".join(parts))


def _changes(title: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f"{title}: the same"
    lines = table([[f"  {row['key']}", f"{value_text(row['a'])} -> {value_text(row['b'])}"] for row in rows])
    return f"{title} ({len(rows)} differ):\n{lines.rstrip()}"


def printable_lines(text: str) -> str:
    """``text`` with control characters escaped line by line (a diff's lines are the users')."""
    return "\n".join(printable(line) for line in text.split("\n"))
