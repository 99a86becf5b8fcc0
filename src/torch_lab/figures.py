"""Figures as PNG files with matplotlib's Agg renderer, no display: panels of curves (``runs plot``,
each run's curves.png) and the pictures other libraries draw with pyplot (Optuna's, Lightning's LR
finder). matplotlib is imported only when a figure is made; files are written atomically."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from torch_lab.storage.atomic import atomic_file
from torch_lab.storage.run_dir import NOT_METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: A curve: its label, x values and y values.
Line = tuple[str, list[float], list[float]]
#: Curves with at most this many points get a marker on each point.
MARKED_POINTS = 30


def history_curves(rows: Iterable[dict[str, str | float]]) -> dict[str, tuple[list[float], list[float]]]:
    """Each metric column of history rows as (epochs, values), empty cells skipped."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        for name, value in row.items():
            if name in NOT_METRICS or value in (None, ""):
                continue
            epochs, values = curves.setdefault(name, ([], []))
            epochs.append(float(row["epoch"]))
            values.append(float(value))
    return curves


def figure(panels: int, width: float = 4.2, height: float = 3.0, dpi: int = 100,
           constrained: bool = True, extra_width: float = 0.0) -> Figure:
    """An Agg figure with room for ``panels`` panels, at most three per row, and ``extra_width``
    inches beside them (for a figure legend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(max(panels, 1), 3)
    rows = math.ceil(max(panels, 1) / columns)
    result = Figure(figsize=(width * columns + extra_width, height * rows), dpi=dpi,
                    layout="constrained" if constrained else None)
    FigureCanvasAgg(result)
    return result


def colours(count: int) -> list[tuple[Any, str]]:
    """A colour and a line style for each of ``count`` curves: tab10 up to 10, tab20 up to 20,
    then tab20 again in other line styles."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if count <= 10 else "tab20"].colors
    styles = ("-", "--", ":", "-.")
    return [(palette[i % len(palette)], styles[i // len(palette) % len(styles)]) for i in range(count)]


def draw(fig: Figure, panels: dict[str, list[Line]], xlabel: str, figure_legend: bool = False,
         bands: dict[str, dict[str, tuple[list[float], list[float]]]] | None = None) -> None:
    """One panel per entry of ``panels`` (its title), a line per curve, and under a line the
    band ``bands[title][label]`` (lows, highs at its xs) in its colour, if given. The legend: with
    ``figure_legend`` one for the whole figure, outside every panel at its right, each label in
    one colour in every panel; else one in each panel with more than one line."""
    columns = min(max(len(panels), 1), 3)
    rows = math.ceil(max(len(panels), 1) / columns)
    labels = list(dict.fromkeys(label for lines in panels.values() for label, _, _ in lines))
    styles = dict(zip(labels, colours(len(labels)))) if figure_legend else {}
    handles: dict[str, Any] = {}
    for index, (title, lines) in enumerate(panels.items()):
        axes = fig.add_subplot(rows, columns, index + 1)
        for label, xs, ys in lines:
            colour, style = styles.get(label, (None, "-"))
            [handles[label]] = axes.plot(xs, ys, label=label, color=colour, linestyle=style,
                                         marker="o" if len(xs) <= MARKED_POINTS else None, markersize=3)
            if (band := (bands or {}).get(title, {}).get(label)) is not None:
                axes.fill_between(xs, *band, color=handles[label].get_color(), alpha=0.2, linewidth=0)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel(xlabel, fontsize=8)
        axes.tick_params(labelsize=7)
        axes.xaxis.get_major_locator().set_params(integer=True, nbins=5)  # epochs and steps
        axes.yaxis.get_major_locator().set_params(nbins=5)  # each tick label costs a text layout
        if len(lines) > 1 and not figure_legend:
            axes.legend(fontsize=7)
    if figure_legend and handles:
        fig.legend([handles[label] for label in labels if label in handles],
                   [label for label in labels if label in handles], loc="outside right upper", fontsize=7)


def figure_bytes(fig: Figure, kind: str = "png") -> bytes:
    """``fig`` rendered in format ``kind`` (png, pdf, svg, jpg, ...: matplotlib's)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=kind)
    return buffer.getvalue()


def formats(fig: Figure) -> list[str]:
    """The file formats ``fig`` can be written in (their suffixes)."""
    return sorted(fig.canvas.get_supported_filetypes())


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, for libraries that draw with pyplot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_pyplot(fig: Any, path: Path, **savefig: Any) -> Path:
    """Write a pyplot figure to ``path`` as PNG (atomically), then close it: pyplot keeps every
    open figure alive."""
    with atomic_file(path) as handle:
        fig.savefig(handle, format="png", **savefig)
    pyplot().close(fig)
    return path
