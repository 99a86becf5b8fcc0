"""A sweep's parallel_coordinate.png drawn to be read (Optuna's own overlaps its log ticks, draws
the best trials in near-white and cuts the axis names): an axis per parameter and one for the
objective, each with at most five labels in the parameter's own units (log ranges on a log
scale, choices by name), the axis names under them, a line per completed trial coloured from a
colour map with no near-white end, the best trial drawn last, thick and black."""

from __future__ import annotations

import math
from typing import Any

from torch_lab.figures import pyplot
from torch_lab.text import number_text, short_names

#: The colour map's part lines are drawn from (viridis without its pale yellow end).
SHADES = (0.0, 0.8)
MAX_LABELS = 5


def position(value: Any, distribution: Any) -> float:
    """Where ``value`` sits on its axis, from 0 (low) to 1 (high)."""
    if hasattr(distribution, "choices"):
        count = len(distribution.choices)
        return distribution.choices.index(value) / (count - 1) if count > 1 else 0.5
    low, high = distribution.low, distribution.high
    if getattr(distribution, "log", False):
        value, low, high = math.log(value), math.log(low), math.log(high)
    return (value - low) / (high - low) if high > low else 0.5


def labels(distribution: Any) -> list[tuple[float, str]]:
    """An axis's labels: each choice (at most ``MAX_LABELS``), else low, middle and high (the
    geometric middle on a log axis)."""
    if hasattr(distribution, "choices"):
        choices = distribution.choices
        step = max(1, math.ceil(len(choices) / MAX_LABELS))
        return [(position(choice, distribution), str(choice)) for choice in choices[::step]]
    low, high = distribution.low, distribution.high
    middle = math.sqrt(low * high) if getattr(distribution, "log", False) else (low + high) / 2
    if isinstance(low, int):  # an int range: whole numbers
        return [(position(value, distribution), str(value)) for value in dict.fromkeys((low, round(middle), high))]
    return [(position(value, distribution), number_text(float(value), 3)) for value in (low, middle, high)]


def parallel_axes(study: Any, metric: str) -> Any:
    """The picture of ``study``'s completed trials (the axes of a pyplot figure)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("status") == "completed"
              and t.value is not None]
    if not trials:
        raise ValueError("no completed trial to draw")
    keys = sorted({key for trial in trials for key in trial.params})
    distributions = {key: next(t.distributions[key] for t in trials if key in t.distributions) for key in keys}
    values = [trial.value for trial in trials]
    low, high = min(values), max(values)
    objective = [(value - low) / (high - low) if high > low else 0.5 for value in values]
    plt = pyplot()
    fig, axes = plt.subplots(figsize=(1.7 * (len(keys) + 1) + 1.6, 4.0), dpi=100)
    shades = plt.get_cmap("viridis")
    minimise = study.direction.name == "MINIMIZE"
    best = min(range(len(trials)), key=lambda i: values[i] if minimise else -values[i])
    for index in sorted(range(len(trials)), key=lambda i: i == best):
        trial = trials[index]
        ys = [position(trial.params[key], distributions[key]) if key in trial.params else math.nan for key in keys]
        shade = SHADES[0] + (SHADES[1] - SHADES[0]) * (1 - objective[index] if minimise else objective[index])
        axes.plot(range(len(keys) + 1), [*ys, objective[index]], linewidth=2.5 if index == best else 1.2,
                  color="black" if index == best else shades(shade), alpha=1.0 if index == best else 0.8,
                  zorder=3 if index == best else 2)
    axis_labels = [*[labels(distributions[key]) for key in keys],
                   [(at, number_text(low + at * (high - low), 4)) for at in (0.0, 0.5, 1.0)]]
    for x, found in enumerate(axis_labels):
        axes.axvline(x, color="#888888", linewidth=0.8, zorder=1)
        for y, text in found:
            axes.text(x + 0.04, y, text, fontsize=8, va="center", ha="left", zorder=4,
                      bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    axes.set_xticks(range(len(keys) + 1), [*short_names(keys), metric], fontsize=9)
    axes.set_xlim(-0.3, len(keys) + 0.7)
    axes.set_ylim(-0.06, 1.06)
    axes.set_yticks([])
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)
    axes.set_title(f"{len(trials)} completed trials; the best in black", fontsize=10)
    return axes
