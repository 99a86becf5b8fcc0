"""Paper tables of seed groups (``runs compare --group --format markdown|latex``): a row per
group, labelled by the hparams that differ between the groups, its n, and mean ± std of the
best value and of each final metric (or the ``--columns`` chosen) to ``--digits`` decimals; the
best mean of each column in bold, the lowest or the highest as the runs' monitor mode says.
Standard library only."""

from __future__ import annotations

import statistics
from typing import Callable

from torch_lab.errors import UserError
from torch_lab.runs.groups import Group
from torch_lab.runs.records import differing
from torch_lab.runs.report import short_value
from torch_lab.text import printable, short_names

#: ``--columns``' name of the best monitored value's column.
BEST = "best"
FORMATS = ("markdown", "latex")
LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def metric_columns(groups: list[Group], asked: list[str] | None) -> list[str]:
    """The metric columns: ``best`` (when a run has one) and every final metric, or those
    ``asked`` (``--columns``), each a name the groups have."""
    known = [*([BEST] if any(group.bests for group in groups) else []),
             *sorted({name for group in groups for name in group.metric_names})]
    for name in asked or ():
        if name not in known:
            raise UserError(f"--columns {name}: no metric of these groups (they have: {', '.join(known)})")
    return list(dict.fromkeys(asked)) if asked else known


def values(group: Group, column: str) -> list[float]:
    return group.bests if column == BEST else group.metric(column)


def monitor_modes(groups: list[Group]) -> dict[str, str]:
    """The mode (``min`` / ``max``) the runs recorded for each monitored metric."""
    modes: dict[str, set[str]] = {}
    for group in groups:
        for run in group.runs:
            if run.best.get("monitor") and run.best.get("mode") in ("min", "max"):
                modes.setdefault(str(run.best["monitor"]), set()).add(str(run.best["mode"]))
    return {monitor: found.pop() for monitor, found in modes.items() if len(found) == 1}


def mode_of(column: str, modes: dict[str, str]) -> str | None:
    """Whether a lower or a higher mean is better in ``column``: the best value's and a monitored
    metric's own mode, a metric of the same name before its stage's (``loss/test`` as
    ``loss/val``) the monitor's; None (nothing bold) when unknown or when monitors disagree."""
    if column == BEST:
        return next(iter(modes.values())) if len(modes) == 1 else None
    if column in modes:
        return modes[column]
    found = {mode for monitor, mode in modes.items() if monitor.split("/")[0] == column.split("/")[0]}
    return found.pop() if len(found) == 1 else None


def cells(groups: list[Group], column: str, mode: str | None, digits: int) -> list[tuple[str, bool]]:
    """Each group's ``mean ± std`` text in ``column`` (the mean alone for one value, ``-`` for
    none; `` (n=k)`` when fewer runs than the group's have it) and whether it is the best."""
    means = [statistics.fmean(found) if (found := values(group, column)) else None for group in groups]
    known = [mean for mean in means if mean is not None]
    best = (min if mode == "min" else max)(known) if known and mode else None
    found = []
    for group, mean in zip(groups, means):
        numbers = values(group, column)
        if mean is None:
            found.append(("-", False))
            continue
        text = f"{mean:.{digits}f}" + (f" ± {statistics.stdev(numbers):.{digits}f}" if len(numbers) > 1 else "")
        found.append((text + (f" (n={len(numbers)})" if len(numbers) != len(group.runs) else ""),
                       best is not None and f"{mean:.{digits}f}" == f"{best:.{digits}f}"))
    return found


def paper_table(groups: list[Group], form: str, columns: list[str] | None = None, digits: int = 3) -> str:
    """``groups`` as a Markdown or LaTeX (booktabs) table: the labelling columns, n, and a
    column per metric (see ``cells``)."""
    keys = differing([group.config for group in groups])
    labels = [*(["task name"] * (len({group.runs[0].task_name for group in groups}) > 1)),
              *short_names([".".join(key) for key in keys])]
    texts = [[*([printable(group.runs[0].task_name)] * (labels[:1] == ["task name"])),
              *(printable(short_value(group.config.hparam(key))) for key in keys)] if labels else [group.task_id]
             for group in groups]
    metrics = metric_columns(groups, columns)
    modes = monitor_modes(groups)
    best_name = f"best {'/'.join(sorted(modes))}".rstrip() if modes else BEST
    header = [*(labels or ["first run"]), "n", *(best_name if name == BEST else name for name in metrics)]
    body = [[*text, str(len(group.runs))] for text, group in zip(texts, groups)]
    marks: list[list[tuple[str, bool]]] = [[] for _ in groups]
    for name in metrics:
        for row, cell in zip(marks, cells(groups, name, mode_of(name, modes), digits)):
            row.append(cell)
    return (markdown if form == "markdown" else latex)(header, body, marks, len(header) - len(metrics))


def markdown(header: list[str], body: list[list[str]], marks: list[list[tuple[str, bool]]], plain: int) -> str:
    def escape(text: str) -> str:
        return text.replace("|", r"\|")

    lines = [[*map(escape, header)], ["---"] * (plain - 1) + ["---:"] * (len(header) - plain + 1)]
    lines += [[*map(escape, row), *(f"**{text}**" if bold else text for text, bold in cells)]
              for row, cells in zip(body, marks)]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def latex(header: list[str], body: list[list[str]], marks: list[list[tuple[str, bool]]], plain: int) -> str:
    def number(text: str, bold: bool) -> str:
        if text == "-":
            return "--"
        math = text.replace(" ± ", r" \pm ").replace(" (n=", r"\ (n=")
        return f"$\\mathbf{{{math}}}$" if bold else f"${math}$"

    escape: Callable[[str], str] = lambda text: "".join(LATEX_SPECIAL.get(char, char) for char in text)
    spec = f"{'l' * (plain - 1)}r{'c' * (len(header) - plain)}"
    lines = [r"% needs \usepackage{booktabs}", rf"\begin{{tabular}}{{{spec}}}",
             r"\toprule", " & ".join(map(escape, header)) + r" \\", r"\midrule"]
    lines += [" & ".join([*map(escape, row), *(number(text, bold) for text, bold in cells)]) + r" \\"
              for row, cells in zip(body, marks)]
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"])
