"""Console script ``runs``: list, show, compare, plot, sync and tidy the runs under the artifacts
root (the parsers: ``torch_lab.cli.runs_parsers``).

    runs [PATTERN] [--status S ...] [--project P] [--sweep NAME] [--last N] [--columns KEY,...]
         [--json | --csv] [--group]
    runs show ID
    runs compare ID ID ... [--group] [--json | --format markdown|latex]
    runs diff A B [--json]
    runs plot ID ... [--metric M ...] [--steps] [--out FILE.png] [--group]
    runs report [PATTERN] [--status S ...] [--out FILE.html]
    runs sync [ID ...]
    runs du [PATTERN] [--status S ...]
    runs rm ID ... [--yes]
    runs prune [PATTERN] [--keep best|last] [--status S ...] [--dry-run] [--yes]

Imports neither torch nor clearml nor Lightning (matplotlib only for ``plot``). Exit codes: 0,
2 for a mistake (an unknown or ambiguous task id, no run matching, a run in use, removing
without a terminal to ask on and without ``--yes``), with one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Callable

from torch_lab.cli.runs_parsers import parse
from torch_lab.errors import UserError
from torch_lab.runs.choose import resolve, select, statuses
from torch_lab.runs.records import Run, read_runs
from torch_lab.storage.run_dir import artifacts_root
from torch_lab.text import size_text

EXIT_OK, EXIT_USAGE = 0, 2


def _run(argv: list[str]) -> int:
    args = parse(argv)
    root = args.root if args.root is not None else artifacts_root()
    wanted = statuses(getattr(args, "status", None))  # a typo is refused before anything is read
    if not root.is_dir():
        raise UserError(f"no artifacts root {root} (give --root DIR, or set TORCH_LAB_ARTIFACTS)")
    runs = read_runs(root)
    if args.command in (None, "du", "prune", "report"):
        chosen = select(runs, args.pattern, wanted, *(
            (args.project, args.sweep, args.last) if args.command is None else ()))
        if not chosen and not (args.command is None and (args.json or args.csv)):
            print(f"no runs under {root}{' match' if len(runs) else ''}", file=sys.stderr)
            return EXIT_OK
    else:  # an id given twice counts once
        chosen = list(dict.fromkeys(resolve(runs, ident, root) for ident in args.ids))
    return COMMANDS[args.command](args, chosen, runs)


def _list(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    from torch_lab.runs import report

    columns = [c.strip() for c in (args.columns or "").split(",") if c.strip()] or None
    if args.group and chosen:
        from torch_lab.runs import groups

        found = groups.group_runs(chosen)
        print(groups.listing_json(found) if args.json else groups.csv_text(found).rstrip("\n") if args.csv
              else groups.listing(found, columns))
        if not (args.json or args.csv):
            note_scipy()
    elif args.json:
        print(report.listing_json(chosen))
    elif args.csv:
        from torch_lab.runs.data import csv_text

        sys.stdout.write(csv_text(chosen))
    else:
        text, dropped = report.listing(chosen, terminal_width(), columns)
        print(text)
        if dropped:
            print(f"runs: {len(dropped)} hparams columns left out to fit the terminal "
                  f"({', '.join(dropped)}); pick columns with --columns KEY,...", file=sys.stderr)
    return EXIT_OK


def _show(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    from torch_lab.runs import report

    print(report.show(chosen[0], runs))
    return EXIT_OK


def _compare(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    if args.format != "text" and not args.group:
        raise UserError(f"--format {args.format}: tables are of seed groups; add --group")
    if args.format == "text" and (args.columns is not None or args.digits != 3):
        raise UserError("--columns and --digits are for --format markdown or latex")
    if args.json and args.format != "text":
        raise UserError(f"--json or --format {args.format}: give one")
    if args.group:
        from torch_lab.runs import groups

        found = groups.groups_of(chosen, runs)
        if args.json:
            print(groups.compare_json(found))
            return EXIT_OK
        if args.format != "text":
            from torch_lab.runs.tables import paper_table

            columns = [c.strip() for c in (args.columns or "").split(",") if c.strip()] or None
            print(paper_table(found, args.format, columns, args.digits))
            return EXIT_OK
        print(groups.compare(found))
        note_scipy()
        return EXIT_OK
    from torch_lab.runs import report

    print(report.listing_json(chosen) if args.json else report.compare(chosen))
    return EXIT_OK


def _diff(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    from torch_lab.runs.diff import diff_json, diff_text

    if len(chosen) != 2:
        raise UserError(f"runs diff: {args.ids[0]} and {args.ids[1]} are the same run; give two")
    print((diff_json if args.json else diff_text)(*chosen))
    return EXIT_OK


def _plot(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    if args.group:
        from torch_lab.runs.groups import groups_of
        from torch_lab.runs.plot import plot_groups

        print(f"runs: wrote {plot_groups(groups_of(chosen, runs), args.out, args.metric, args.steps)}")
        return EXIT_OK
    from torch_lab.runs.plot import plot_runs

    print(f"runs: wrote {plot_runs(chosen, args.out, args.metric, args.steps)}")
    return EXIT_OK


def _report(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    from torch_lab.runs.report_html import page
    from torch_lab.storage.atomic import write_atomic

    if args.out.is_dir():
        raise UserError(f"--out {args.out}: is a directory; give a file, e.g. {args.out / 'report.html'}")
    try:
        write_atomic(args.out, page(chosen, runs))
    except OSError as error:
        raise UserError(f"--out {args.out}: cannot write it ({error.strerror or error})") from None
    print(f"runs: wrote {args.out} ({len(chosen)} run{'s' * (len(chosen) != 1)})")
    return EXIT_OK


def _sync(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    from torch_lab.tracking.offline_import import sync_runs

    return sync_runs([run.path for run in chosen or runs if chosen or run.record.get("offline")])


def _du(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    from torch_lab.runs import tidy

    text, notes = tidy.du_text(chosen)
    print(text)
    for note in notes:
        print(f"runs: {note}", file=sys.stderr)
    return EXIT_OK


def _rm(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    from torch_lab.runs import tidy

    plan, size = tidy.removal(chosen)
    what = f"{len(chosen)} run{'s' * (len(chosen) != 1)} ({size_text(size)})"
    if not confirmed(args.yes, plan, f"remove {what}"):
        return EXIT_OK
    notes = tidy.remove_runs(chosen)
    print(f"runs: removed {what}; their offline sessions, if any, stay in ClearML's cache")
    for note in notes:
        print(f"runs: {note}")
    return EXIT_OK


def _prune(args: argparse.Namespace, chosen: list[Run], runs: list[Run]) -> int:
    from torch_lab.runs import tidy

    plan = tidy.pruning(chosen, args.keep)
    for note in plan.notes:
        print(f"runs: {note}", file=sys.stderr)
    what = f"{plan.count} checkpoint file{'s' * (plan.count != 1)} of {len(plan.files)} run" \
        f"{'s' * (len(plan.files) != 1)} ({size_text(plan.size)})"
    if not plan.files:
        print(f"runs: no checkpoints to prune (keeping {tidy.KEPT[args.keep]})")
    elif args.dry_run:
        print(f"{plan.text()}\nruns: would remove {what}; a dry run: nothing removed")
    elif confirmed(args.yes, plan.text(), f"remove {what}"):
        freed, notes = tidy.prune(plan)
        for note in notes:
            print(f"runs: {note}", file=sys.stderr)
        print(f"runs: freed {size_text(freed)}")
    return EXIT_OK


def note_scipy() -> None:
    """Say on stderr that the groups' intervals and tests were left out, when scipy is missing."""
    from torch_lab.runs import significance

    if significance.scipy_special() is None:
        print(f"runs: {significance.NO_SCIPY}", file=sys.stderr)


def confirmed(yes: bool, plan: str, question: str) -> bool:
    """Whether to go ahead with ``question`` (``remove 2 runs (1.2 MB)``) after printing
    ``plan``: yes with ``--yes``, else what the user answers on the terminal. Without a terminal
    to ask on, a UserError: nothing is done."""
    if not yes and not sys.stdin.isatty():
        raise UserError(f"{question}: no terminal to ask on, so nothing removed; add --yes to remove them")
    print(plan, flush=True)
    if yes:
        return True
    print(f"{question}? [y/N] ", end="", flush=True)
    if sys.stdin.readline().strip().lower() in ("y", "yes"):
        return True
    print("runs: nothing removed")
    return False


#: What each command does with the runs chosen (by pattern and filters, or by id) and all runs.
COMMANDS: dict[str | None, Callable[[argparse.Namespace, list[Run], list[Run]], int]] = {
    None: _list, "show": _show, "compare": _compare, "diff": _diff, "plot": _plot, "report": _report,
    "sync": _sync, "du": _du, "rm": _rm, "prune": _prune}


def terminal_width() -> int | None:
    """The display columns the listing may take: ``$COLUMNS``, else the terminal's; None (no
    limit) when printing into a file or pipe."""
    if os.environ.get("COLUMNS", "").strip().isdigit() or sys.stdout.isatty():
        return max(shutil.get_terminal_size().columns, 40)
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``runs``."""
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except UserError as error:
        print(f"runs: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `runs | head`
        sys.stderr.close()
        return EXIT_OK
