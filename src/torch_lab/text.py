"""Plain-text helpers shared by every command's output: aligned tables, CSV, short names for
dotted hparams keys, numbers, statistics and durations. Standard library only."""

from __future__ import annotations

import csv
import io
import math
import statistics
import unicodedata
from typing import Any, Sequence


def table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """``rows`` (the first one the header) as aligned columns, two spaces apart, control characters
    escaped (see ``printable``) and wide characters counted as two; the columns numbered in
    ``right`` are right-aligned."""
    rows = [[cell if cell.isprintable() else printable(cell) for cell in row] for row in rows]
    if all(cell.isascii() for row in rows for cell in row):  # the common case, at a third of the cost
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                           for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    else:
        widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(pad(cell, w, i in right) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
                 for row in rows]
    return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` with its control characters (escape sequences, BEL, newlines) escaped as Python
    writes them (``\\x1b``), so a name cannot move the cursor, retitle or clear the terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def display_width(text: str) -> int:
    """The columns ``text`` takes on a terminal: wide (CJK, emoji) characters two, combining
    marks none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` display columns (on the left when ``right``)."""
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


def cut(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` display columns, ending with ``…`` when cut."""
    if len(text) <= width and text.isascii() or display_width(text) <= width:
        return text
    kept = ""
    for ch in text:
        if display_width(kept + ch) > width - 1:
            break
        kept += ch
    return kept + "…"


def short_names(keys: list[str]) -> list[str]:
    """The shortest dotted ending of each key that no other key of ``keys`` ends with:
    ``config.lr`` -> ``lr``, unless another key also ends with ``.lr``."""
    names = []
    for key in keys:
        parts = key.split(".")
        for size in range(1, len(parts) + 1):
            name = ".".join(parts[-size:])
            if not any(other != key and (other == name or other.endswith(f".{name}")) for other in keys):
                break
        names.append(name)
    return names


def number_text(value: Any, digits: int = 4) -> str:
    """A float to ``digits`` significant digits, anything else as ``str``; ``-`` for None."""
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def duration_text(seconds: float | None) -> str:
    """``h:mm:ss``, or ``-`` when unknown."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(max(seconds, 0.0))), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool), and finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for one value) of ``values`` (not empty)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def stats_text(values: list[float]) -> str:
    """``mean ± std (min-max)`` to 4 significant digits (the sample standard deviation, ``-`` for
    one value); ``-`` for none."""
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{number_text(mean)} ± {number_text(std) if std is not None else '-'} ({number_text(min(values))}-{number_text(max(values))})"


def csv_table(rows: list[dict[str, Any]]) -> str:
    """CSV text: a header (the union of the rows' keys, in order of appearance), then each row;
    None as an empty cell, lists and dicts as Python literals, control characters escaped (see
    ``printable``: the text goes to a terminal as often as to a file)."""
    if not rows:
        return ""
    columns: dict[str, None] = {}
    for one in rows:
        columns.update(dict.fromkeys(one))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[printable(str(key)) for key in columns], lineterminator="\n")
    writer.writeheader()
    writer.writerows({printable(str(key)): _cell(value) for key, value in one.items()} for one in rows)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    value = "" if value is None else repr(value) if isinstance(value, (list, dict, tuple)) else value
    return printable(value) if isinstance(value, str) else value


def size_text(size: float) -> str:
    """A number of bytes for people, in powers of 1000: ``512 B``, ``18.3 kB``, ``1.2 GB``."""
    unit = "B"
    for bigger in ("kB", "MB", "GB", "TB"):
        if size < 1000:
            break
        size, unit = size / 1000, bigger
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
