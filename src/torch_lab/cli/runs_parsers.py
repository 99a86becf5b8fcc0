"""The parsers of the ``runs`` console script: the listing's (``runs [PATTERN] [options]``) and
one per subcommand, each made by its own function. argparse only: ``runs --help`` imports nothing
more."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from torch_lab.cli.completion import PrintCompletion
from torch_lab.cli.parsers import Parser, ShowVersion, positive_int

ID_HELP = "a task id, or the start of one (with or without 'offline-')"
USAGE = "runs [PATTERN] [options]\n       runs COMMAND ... (runs COMMAND --help for its options)"
#: A subcommands' parsers: (add_subparsers' action) -> the command's parser.
Commands = argparse._SubParsersAction


def _root(parser: argparse.ArgumentParser, default: object = None) -> None:
    parser.add_argument("--root", type=Path, metavar="DIR", default=default,
                        help="the artifacts root (default: $TORCH_LAB_ARTIFACTS, else ./data/artifacts)")


def _pattern(parser: argparse.ArgumentParser) -> None:
    # no default: runs' own PATTERN, left empty after a command, keeps the command's (see ``parse``)
    parser.add_argument("pattern", nargs="?", metavar="PATTERN", default=argparse.SUPPRESS,
                        help="a shell pattern on the run directory name (<task name>-<task id>), "
                        "or a part of it")


def _status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="append", metavar="S[,S...]",
                        help="only these statuses (running, completed, failed, interrupted, pruned, "
                        "dead), comma-separated or repeated")


def _group(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--group", action="store_true", help=f"{what}: groups of runs whose hparams differ "
                        "only in seed (whether or not train --seeds started them)")


def _command(commands: Commands, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand's parser; its ``--root`` leaves one given before the command alone."""
    parser = commands.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}"
                                 f"{description}")
    _root(parser, argparse.SUPPRESS)
    return parser


def list_options(parser: argparse.ArgumentParser) -> None:
    """The listing's filters and output formats (``runs [PATTERN] ...``)."""
    _status(parser)
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


def show_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "show", "one run in full", ": hparams, metrics, lineage, files, size "
                      "on disk and its offline session.")
    parser.add_argument("ids", nargs=1, metavar="ID", help=ID_HELP)
    return parser


def compare_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "compare", "runs side by side", ": the hparams that differ and their metrics.")
    parser.add_argument("ids", nargs="+", metavar="ID", help=ID_HELP)
    _group(parser, "the groups of the runs given side by side, with mean ± std of each metric, the "
           "95%% intervals of the means and Welch's t-test between groups")
    parser.add_argument("--format", choices=("text", "markdown", "latex"), default="text",
                        help="with --group: a table for a paper, a row per group with n and mean ± std "
                        "of each metric, the best in bold (default: text, side by side)")
    parser.add_argument("--columns", metavar="M[,M...]", help="with --format: only these metrics, in this "
                        "order ('best' for the best monitored value)")
    parser.add_argument("--digits", type=digits, default=3, metavar="N",
                        help="with --format: decimals of each number (default: 3)")
    parser.add_argument("--json", action="store_true", help="print JSON: the runs as runs --json prints "
                        "them; with --group, each group with n, mean, std, min, max and the 95%% interval "
                        "of each statistic, and each group's difference from the first with Welch's test")
    return parser


def digits(text: str) -> int:
    """``--digits``: an int from 0 to 12."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if not 0 <= value <= 12:
        raise argparse.ArgumentTypeError(f"must be from 0 to 12, got {text}")
    return value


def diff_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "diff", "what differs between two runs", ": hparams (old -> new), final "
                      "and best metrics, lineage, the environment recorded and a unified diff of their "
                      "sources (source.zip).")
    parser.add_argument("ids", nargs=2, metavar="ID", help=ID_HELP)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def plot_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "plot", "plot runs' curves", ": one panel per metric, a line per run.")
    parser.add_argument("ids", nargs="+", metavar="ID", help=ID_HELP)
    parser.add_argument("--metric", nargs="+", action="extend", metavar="M",
                        help="only these metrics: loss/val, or loss for all its stages")
    parser.add_argument("--steps", action="store_true",
                        help="per-step values from the offline sessions instead of history.csv")
    parser.add_argument("--out", type=Path, default=Path("runs.png"), metavar="FILE.png",
                        help="where to write the picture (default: runs.png); its suffix picks the "
                        "format (png, pdf, svg, jpg, ...)")
    _group(parser, "a line per group of the runs given: the mean of its runs in a min-max band")
    return parser


def report_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "report", "one self-contained HTML page of runs", ": the runs table, seed "
                      "groups, sweeps' trials, curves and each run in full; no server, no internet.")
    _pattern(parser)
    _status(parser)
    parser.add_argument("--out", type=Path, default=Path("report.html"), metavar="FILE.html",
                        help="where to write it (default: report.html)")
    return parser


def sync_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "sync", "import offline runs' sessions into the ClearML server",
                      " configured (all not yet imported, or those given); run.json records the "
                      "server's task id.")
    parser.add_argument("ids", nargs="*", metavar="ID", help=ID_HELP)
    return parser


def du_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "du", "what each run holds on disk", ": its checkpoints, its offline "
                      "session (in ClearML's cache) and its other files, and the total of all.")
    _pattern(parser)
    _status(parser)
    return parser


def rm_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "rm", "remove whole run directories", " (their offline sessions, in "
                      "ClearML's cache, stay). Lists them and asks first; a run in use is refused.")
    parser.add_argument("ids", nargs="+", metavar="ID", help=ID_HELP)
    parser.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    return parser


def prune_parser(commands: Commands) -> argparse.ArgumentParser:
    parser = _command(commands, "prune", "remove the checkpoints finished runs no longer need",
                      ": all files in checkpoints/ but the kept one, of the completed, failed, "
                      "interrupted and pruned runs. Lists them and asks first.")
    _pattern(parser)
    _status(parser)
    parser.add_argument("--keep", choices=("best", "last"), default="best",
                        help="the checkpoint to keep: best.ckpt (default; the run can no longer "
                        "resume) or last.ckpt")
    parser.add_argument("--dry-run", action="store_true", help="print what it would remove; remove nothing")
    parser.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    return parser


#: The subcommands and the functions making their parsers.
COMMANDS: dict[str, Callable[[Commands], argparse.ArgumentParser]] = {
    "show": show_parser, "compare": compare_parser, "diff": diff_parser, "plot": plot_parser, "report": report_parser,
    "sync": sync_parser, "du": du_parser, "rm": rm_parser, "prune": prune_parser}


def runs_parser(commands: bool = True) -> argparse.ArgumentParser:
    """``runs``' parser: the listing's options, its PATTERN and (unless not ``commands``: to parse
    a listing by pattern) the subcommands."""
    parser = Parser(  # its subcommands' parsers are Parsers too (add_subparsers' parser_class)
        prog="runs", usage=USAGE, description="List the runs under the artifacts root, newest last, "
        "with the hparams that differ among them; or run one of the commands on them.")
    parser.set_defaults(command=None)
    if commands:
        chosen = parser.add_subparsers(dest="command", metavar="COMMAND", prog="runs", title="commands")
        for make in COMMANDS.values():
            make(chosen)
    _pattern(parser)
    list_options(parser)
    parser.add_argument("--version", action=ShowVersion)
    parser.add_argument("--print-completion", action=PrintCompletion, build=runs_parser,
                        default=argparse.SUPPRESS,
                        help="print the shell completion script (bash or zsh) and exit")
    _root(parser)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """``runs``' arguments. The command is the first argument that is neither an option nor an
    option's value, when it names one; else that argument is the listing's PATTERN."""
    parser = runs_parser()
    valued = {option for action in parser._actions for option in action.option_strings if action.nargs != 0}
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in valued else 1
    if index < len(argv) and argv[index] not in COMMANDS:
        parser = runs_parser(commands=False)
    return parser.parse_args(argv, argparse.Namespace(pattern=None))
