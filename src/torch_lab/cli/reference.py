"""The command reference as Markdown, made from the argparse parsers themselves, so the docs
site's reference (docs/reference/commands.md, filled in by docs/hooks.py) cannot drift from the
commands. argparse only: nothing heavy is imported."""

from __future__ import annotations

import argparse

from torch_lab.cli.parsers import export_parser, infer_parser, train_parser
from torch_lab.cli.runs_parsers import runs_parser


def parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command's parser, ``runs``' subcommands after ``runs``, as (name, parser)."""
    runs = runs_parser()
    chosen = [("train", train_parser()), ("infer", infer_parser()), ("export-model", export_parser()),
              ("runs", runs)]
    for action in runs._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen += [(f"runs {name}", parser) for name, parser in action.choices.items()]
    return chosen


def _cell(text: object) -> str:
    """``text`` fit for one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _option(action: argparse.Action) -> str:
    """The option strings (or the positional's name) with its metavar, as code."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    if action.nargs == 0:
        value = ""
    else:
        metavar = action.metavar or (f"{{{','.join(map(str, action.choices))}}}" if action.choices
                                     else action.dest.upper())
        value = f" [{metavar}]" if action.nargs == "?" else f" {metavar}"
    return ", ".join(f"`{option}{value}`" for option in action.option_strings)


def _default(action: argparse.Action) -> str:
    """The default worth showing: none for switches, suppressed or empty defaults."""
    default = action.default
    if action.nargs == 0 or default in (None, argparse.SUPPRESS, [], False):
        return ""
    return f"`{default}`"


def command_markdown(name: str, parser: argparse.ArgumentParser) -> str:
    """One command's section: its description, usage and a table of every argument."""
    rows = [f"### `{name}`", "", parser.description or "", "", "```text",
            parser.format_usage().strip(), "```", "",
            "| argument | default | meaning |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            rows.append(f"| `COMMAND` | | one of {', '.join(f'`{n}`' for n in action.choices)} |")
            continue
        rows.append(f"| {_option(action)} | {_default(action)} | {_cell(action.help or '')} |")
    return "\n".join(rows) + "\n"


def reference_markdown() -> str:
    """The reference of every command and subcommand."""
    return "\n".join(command_markdown(name, parser) for name, parser in parsers())
