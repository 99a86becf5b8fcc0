"""``runs report [PATTERN] [--status S] --out report.html``: one self-contained HTML page to send
without a server or the internet (no script, no link: the style and the curves, as SVG, are
inline): the runs table, the seed groups with mean ± std, each sweep's trials with its best, the
curves and each run in full (hparams, metrics, lineage). matplotlib only for the curves."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from typing import Any

from torch_lab.errors import UserError
from torch_lab.runs import groups as grouping
from torch_lab.runs import report, significance
from torch_lab.runs.records import Run, differing
from torch_lab.text import duration_text

STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:.2em .7em;border-bottom:1px solid #ddd;
text-align:left;white-space:nowrap}th{background:#f3f3f3}td.num{text-align:right}
tr.best td{font-weight:bold}pre{background:#f7f7f7;padding:.7em;overflow:auto}
details{margin:.3em 0}summary{cursor:pointer}svg{max-width:100%;height:auto}"""


def cells_row(cells: list[Any], tag: str = "td", css: str = "") -> str:
    inner = "".join(f"<{tag}>{html.escape(str(cell))}</{tag}>" for cell in cells)
    classes = f' class="{css}"' if css else ""
    return f"<tr{classes}>{inner}</tr>"


def html_table(header: list[str], rows: list[list[Any]], best: set[int] = frozenset(), name: str = "") -> str:
    """A table; the rows whose index is in ``best`` in bold."""
    body = "".join(cells_row(row, css="best" if index in best else "") for index, row in enumerate(rows))
    named = f' id="{html.escape(name)}"' if name else ""
    return f"<table{named}><thead>{cells_row(header, 'th')}</thead><tbody>{body}</tbody></table>"


def runs_section(runs: list[Run]) -> str:
    keys = differing(runs)
    header = ["task name", "task id", "status", "started", "duration", "epochs", "best",
              *(".".join(key) for key in keys)]
    rows = [[run.task_name, run.task_id, run.status, report.time_text(run), duration_text(run.duration),
             run.epochs, report.best_text(run, 6), *(report.short_value(run.hparam(key)) for key in keys)]
            for run in runs]
    return f"<h2>Runs ({len(runs)})</h2>" + html_table(header, rows, name="runs")


def groups_section(runs: list[Run]) -> str:
    """The seed groups of more than one run, if any."""
    found = [group for group in grouping.group_runs(runs) if len(group.runs) > 1]
    if not found:
        return ""
    intervals = significance.scipy_special() is not None
    keys = differing([group.config for group in found])
    header = ["task name", "first run", "n", "statuses", "seeds", "best: mean ± std (min-max)",
              *(["best: 95% interval"] * intervals), *(".".join(key) for key in keys)]
    rows = [[group.runs[0].task_name, group.task_id, len(group.runs), grouping.statuses_text(group),
             grouping.seeds_text(group), grouping.best_text(group),
             *([significance.interval_text(group.bests)] * intervals),
             *(report.short_value(group.config.hparam(key)) for key in keys)] for group in found]
    return "<h2>Seed groups</h2>" + html_table(header, rows, name="groups")


def sweeps_section(runs: list[Run]) -> str:
    """Each sweep's trials among ``runs``, its best (by the runs' monitor mode) in bold."""
    sweeps: dict[str, list[Run]] = {}
    for run in runs:
        if isinstance(run.record.get("sweep"), dict):
            sweeps.setdefault(str(run.record["sweep"].get("name")), []).append(run)
    parts = []
    for name, trials in sweeps.items():
        trials.sort(key=lambda run: run.record["sweep"].get("trial", -1))
        keys = differing(trials)
        scored = [(run.best["value"], index) for index, run in enumerate(trials)
                  if run.status == "completed" and run.best.get("value") is not None]
        pick = max if any(run.best.get("mode") == "max" for run in trials) else min
        best = {pick(scored)[1]} if scored else set()
        rows = [[run.record["sweep"].get("trial"), run.task_id, run.status, report.best_text(run, 6),
                 *(report.short_value(run.hparam(key)) for key in keys)] for run in trials]
        parts.append(f"<h2>Sweep {html.escape(name)} ({len(trials)} trials)</h2>"
                     + html_table(["trial", "task id", "status", "best", *(".".join(k) for k in keys)], rows, best,
                                  f"sweep-{name}"))
    return "".join(parts)


def curves_section(runs: list[Run]) -> str:
    """The runs' curves (``runs plot``'s figure) as inline SVG; a line when there are none."""
    from torch_lab.figures import figure_bytes
    from torch_lab.runs.plot import runs_figure

    try:
        svg = figure_bytes(runs_figure(runs, None, False), "svg").decode()
    except UserError as error:
        return f"<h2>Curves</h2><p>{html.escape(str(error))}</p>"
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg"):], flags=re.S)  # matplotlib's RDF
    return "<h2>Curves</h2>" + svg


def page(runs: list[Run], all_runs: list[Run]) -> str:
    """The whole report of ``runs`` (``all_runs``: for their lineage)."""
    made = datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    details = "".join(f"<details><summary>{html.escape(run.task_name)} {html.escape(run.task_id)}</summary>"
                      f"<pre>{html.escape(report.show(run, all_runs))}</pre></details>" for run in runs)
    groups = groups_section(runs)
    body = [f"<h1>torch-lab runs</h1><p>{len(runs)} runs, made {html.escape(made)}</p>", runs_section(runs),
            groups, sweeps_section(runs), curves_section(runs), f"<h2>Each run</h2>{details}"]
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>torch-lab runs</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")

