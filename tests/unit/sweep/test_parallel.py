"""parallel_coordinate.png as torch-lab draws it, on an Optuna study of known trials: the axis
names whole under their axes, few labels in the parameters' own units, no near-white line, the
best trial black and on top."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
from matplotlib.colors import to_rgb

from torch_lab.figures import save_pyplot
from torch_lab.sweep.parallel import parallel_axes


def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    found = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    space = {"config.learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
             "config.model.hidden": optuna.distributions.CategoricalDistribution([16, 32, 64]),
             "config.model.layers": optuna.distributions.IntDistribution(1, 4)}
    values = random.Random(0)
    for _ in range(12):
        trial = found.ask(space)
        trial.set_user_attr("status", "completed")
        found.tell(trial, values.random())
    failed = found.ask(space)  # not drawn
    failed.set_user_attr("status", "failed")
    found.tell(failed, state=optuna.trial.TrialState.FAIL)
    return found


def test_it_reads(tmp_path: Path) -> None:
    drawn = study()
    axes = parallel_axes(drawn, "mse/val")
    figure = axes.figure
    figure.tight_layout()
    names = [label.get_text() for label in axes.get_xticklabels()]
    assert names == ["learning_rate", "hidden", "layers", "mse/val"]
    texts = [text.get_text() for text in axes.texts]
    assert texts[:3] == ["0.0001", "0.00316", "0.1"]  # a log range: its low, geometric middle and high
    assert texts[3:9] == ["16", "32", "64", "1", "2", "4"]  # choices by name; an int range in whole numbers
    values = [t.value for t in drawn.get_trials() if t.value is not None]
    assert texts[9:] == [f"{min(values):.4g}", f"{(min(values) + max(values)) / 2:.4g}", f"{max(values):.4g}"]
    lines = axes.get_lines()
    trials = [line for line in lines if len(line.get_xdata()) == 4]
    assert len(trials) == 12 and to_rgb(trials[-1].get_color()) == (0, 0, 0)  # the best, drawn last
    assert trials[-1].get_ydata()[-1] == 0.0  # at the objective axis' bottom: the lowest value
    assert all(sum(to_rgb(line.get_color())) / 3 < 0.75 for line in trials)  # no near-white line
    renderer = figure.canvas.get_renderer()
    box = figure.bbox
    for artist in [*axes.get_xticklabels(), *axes.texts, axes.title]:  # nothing cut at the edges
        extent = artist.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1
    save_pyplot(figure, tmp_path / "parallel_coordinate.png", dpi=100)
    assert (tmp_path / "parallel_coordinate.png").stat().st_size > 10_000
