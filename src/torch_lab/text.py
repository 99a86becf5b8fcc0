"""Plain-text helpers shared by every command's output: aligned tables, short names for dotted
hparams keys, numbers and durations. Standard library only."""

from __future__ import annotations

from typing import Any, Sequence


def table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """``rows`` (the first one the header) as aligned columns, two spaces apart; the columns
    numbered in ``right`` are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    return "\n".join(lines)


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
