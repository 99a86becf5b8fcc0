"""Console script ``runs``: list, show, compare and plot the runs under the artifacts root.

    runs [PATTERN] [--status S ...] [--project P] [--sweep NAME] [--last N] [--columns KEY,...]
         [--json | --csv] [--group]
    runs show ID
    runs compare ID ID ... [--group]
    runs plot ID ... [--metric M ...] [--steps] [--out FILE.png] [--group]
    runs sync [ID ...]

Imports neither torch nor clearml nor Lightning (matplotlib only for ``plot``). Exit codes: 0,
2 for a mistake (an unknown or ambiguous task id, no run matching), with one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from torch_lab.cli.parsers import ShowVersion, positive_int
from torch_lab.errors import UserError
from torch_lab.storage.run_dir import artifacts_root
from torch_lab.runs.records import read_runs, resolve, select

EXIT_OK, EXIT_USAGE = 0, 2
COMMANDS = ("show", "compare", "plot", "sync")
#: Options that take a value (their value is never the command).
VALUED = {"--root", "--status", "--project", "--sweep", "--last", "--metric", "--out", "--columns"}
ID_HELP = "a task id, or the start of one (with or without 'offline-')"


def _root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, metavar="DIR",
                        help="the artifacts root (default: $TORCH_LAB_ARTIFACTS, else ./data/artifacts)")


def _group(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--group", action="store_true", help=f"{what}: groups of runs whose hparams differ "
                        "only in seed (whether or not train --seeds started them)")


def list_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runs", description="List the runs under the artifacts root, newest last, with the hparams "
        "that differ among them. Also: 'runs show ID', 'runs compare ID ID ...', 'runs plot ID ...' "
        "(see 'runs plot --help'), 'runs sync [ID ...]'.")
    parser.add_argument("pattern", nargs="?", metavar="PATTERN",
                        help="a shell pattern on the run directory name (<task name>-<task id>), "
                        "or a part of it")
    parser.add_argument("--status", action="append", metavar="S[,S...]",
                        help="only these statuses (running, completed, failed, interrupted, pruned), "
                        "comma-separated or repeated")
    parser.add_argument("--project", metavar="P", help="only this ClearML project (a shell pattern)")
    parser.add_argument("--sweep", metavar="NAME", help="only the trials of this sweep")
    parser.add_argument("--last", type=positive_int, metavar="N", help="only the N newest (of those selected)")
    parser.add_argument("--columns", metavar="KEY[,KEY...]", help="these hparams columns (a dotted key "
                        "or its unique end, e.g. lr) instead of those that differ")
    printed = parser.add_mutually_exclusive_group()
    printed.add_argument("--json", action="store_true", help="print JSON instead of a table")
    printed.add_argument("--csv", action="store_true", help="print CSV: a row per run, with the hparams as "
                         "dotted keys, best and the final metrics (for pandas or a spreadsheet)")
    _group(parser, "one line per group, with n, statuses and mean ± std (min-max) of the best value")
    parser.add_argument("--version", action=ShowVersion)
    _root(parser)
    return parser


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of ``runs show``, ``runs compare`` or ``runs plot``."""
    if command == "show":
        parser = argparse.ArgumentParser(prog="runs show", description="One run in full: hparams, "
                                         "metrics, lineage, files and its offline session.")
        parser.add_argument("ids", nargs=1, metavar="ID", help=ID_HELP)
    elif command == "compare":
        parser = argparse.ArgumentParser(prog="runs compare", description="Runs side by side: the "
                                         "hparams that differ and their metrics.")
        parser.add_argument("ids", nargs="+", metavar="ID", help=ID_HELP)
        _group(parser, "the groups of the runs given side by side, with mean ± std of each metric")
    elif command == "sync":
        parser = argparse.ArgumentParser(prog="runs sync", description="Import offline runs' sessions "
                                         "into the configured ClearML server (all not yet imported, "
                                         "or those given); run.json records the server's task id.")
        parser.add_argument("ids", nargs="*", metavar="ID", help=ID_HELP)
    else:
        parser = argparse.ArgumentParser(prog="runs plot", description="Plot runs' curves: one panel "
                                         "per metric, a line per run.")
        parser.add_argument("ids", nargs="+", metavar="ID", help=ID_HELP)
        parser.add_argument("--metric", nargs="+", action="extend", metavar="M",
                            help="only these metrics: loss/val, or loss for all its stages")
        parser.add_argument("--steps", action="store_true",
                            help="per-step values from the offline sessions instead of history.csv")
        parser.add_argument("--out", type=Path, default=Path("runs.png"), metavar="FILE.png",
                            help="where to write the picture (default: runs.png); its suffix picks the "
                            "format (png, pdf, svg, jpg, ...)")
        _group(parser, "a line per group of the runs given: the mean of its runs in a min-max band")
    _root(parser)
    return parser


def split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    """The command (``show``, ``compare``, ``plot``; None to list) and the other arguments: the
    command is the first argument that is neither an option nor an option's value."""
    index = 0
    while index < len(argv):
        if argv[index] in VALUED:
            index += 2
        elif argv[index].startswith("-"):
            index += 1
        else:
            break
    if index < len(argv) and argv[index] in COMMANDS:
        return argv[index], argv[:index] + argv[index + 1:]
    return None, argv


def _run(argv: list[str]) -> int:
    command, argv = split_command(argv)
    args = (command_parser(command) if command else list_parser()).parse_args(argv)
    root = args.root if args.root is not None else artifacts_root()
    if not root.is_dir():
        raise UserError(f"no artifacts root {root} (give --root DIR, or set TORCH_LAB_ARTIFACTS)")
    runs = read_runs(root)
    from torch_lab.runs import report as runs_report

    if command is None:
        statuses = [s for given in args.status or [] for s in given.split(",") if s]
        chosen = select(runs, args.pattern, statuses, args.project, args.sweep, args.last)
        columns = [c.strip() for c in (args.columns or "").split(",") if c.strip()] or None
        if args.group and chosen:
            from torch_lab.runs import groups

            found = groups.group_runs(chosen)
            print(groups.listing_json(found) if args.json else groups.csv_text(found).rstrip("\n") if args.csv
                  else groups.listing(found, columns))
        elif args.json:
            print(runs_report.listing_json(chosen))
        elif args.csv:
            from torch_lab.runs.data import csv_text

            sys.stdout.write(csv_text(chosen))
        elif chosen:
            text, dropped = runs_report.listing(chosen, terminal_width(), columns)
            print(text)
            if dropped:
                print(f"runs: {len(dropped)} hparams columns left out to fit the terminal "
                      f"({', '.join(dropped)}); pick columns with --columns KEY,...", file=sys.stderr)
        else:
            print(f"no runs under {root}{' match' if len(runs) else ''}", file=sys.stderr)
        return EXIT_OK
    chosen = [resolve(runs, ident, root) for ident in args.ids]
    if command == "sync":
        from torch_lab.tracking.offline_import import sync_runs

        return sync_runs([run.path for run in chosen or runs if chosen or run.record.get("offline")])
    if command == "show":
        print(runs_report.show(chosen[0], runs))
    elif command == "compare" and args.group:
        from torch_lab.runs import groups

        print(groups.compare(groups.groups_of(chosen, runs)))
    elif command == "compare":
        print(runs_report.compare(chosen))
    elif args.group:
        from torch_lab.runs.groups import groups_of
        from torch_lab.runs.plot import plot_groups

        print(f"runs: wrote {plot_groups(groups_of(chosen, runs), args.out, args.metric, args.steps)}")
    else:
        from torch_lab.runs.plot import plot_runs

        print(f"runs: wrote {plot_runs(chosen, args.out, args.metric, args.steps)}")
    return EXIT_OK


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
