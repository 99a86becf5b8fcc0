"""MkDocs hook: fills the command reference in from the argparse parsers, so it cannot drift."""

from __future__ import annotations

import sys
from pathlib import Path

#: The checkout's own sources, ahead of any installed torch-lab: the reference is of this tree.
SOURCES = str(Path(__file__).resolve().parents[1] / "src")
MARKER = "<!-- commands: generated from the parsers -->"


def on_page_markdown(markdown: str, page: object, **kwargs: object) -> str:
    """Replace the marker with the reference of every command (torch_lab.cli.reference)."""
    if MARKER not in markdown:
        return markdown
    if SOURCES not in sys.path:
        sys.path.insert(0, SOURCES)
    from torch_lab.cli.reference import reference_markdown

    return markdown.replace(MARKER, reference_markdown())
