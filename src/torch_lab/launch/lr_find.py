"""``train HPARAMS.py --lr-find [STEPS]``: Lightning's learning-rate range test (``Tuner.lr_find``)
over the experiment's module and dataloaders, tracked as a task of its own (``lr_find_...``, tagged
``lr-find``). Its plot (``lr_find.png``) and result (run.json ``lr_find``) go into its run
directory and onto the task; the suggestion is printed with the ``--set`` that uses it."""

from __future__ import annotations

import random
from contextlib import contextmanager
from functools import partial
from typing import Any, Iterator

import pytorch_lightning as pl
from pytorch_lightning.tuner import Tuner

from torch_lab import console
from torch_lab.callbacks.progress import interactive
from torch_lab.tracking import task as tracking
from torch_lab.errors import UserError, display_path
from torch_lab.figures import pyplot, save_pyplot
from torch_lab.experiment import Experiment
from torch_lab.storage.run_dir import RunDirectory
from torch_lab.launch.tracked import TrackedRun

DEFAULT_STEPS = 100
#: The range test's first points skipped when looking for the steepest fall (Lightning skips
#: as many: its smoothed loss starts biased there).
SKIP_BEGIN = 10
PLOT_NAME = "lr_find.png"


def optimizer_lr(module: Any) -> float | None:
    """The learning rate the module's ``optimizer_config`` gives its optimizer, if it names one."""
    config = getattr(module, "optimizer_config", None)
    kwargs = config.get("optimizer_kwargs") if isinstance(config, dict) else None
    lr = kwargs.get("lr") if isinstance(kwargs, dict) else None
    return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def _leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, dict):
        return [leaf for key, value in tree.items() for leaf in _leaves(value, f"{prefix}{key}.")]
    return [(prefix[:-1], tree)]


def lr_key(hparams: dict[str, Any], lr: float | None) -> str | None:
    """The hparams key holding the optimizer's learning rate: the leaf equal to ``lr``, preferring
    one named like a learning rate; None when no leaf (or more than one) matches."""
    if lr is None:
        return None
    equal = [key for key, value in _leaves(hparams) if isinstance(value, (int, float))
             and not isinstance(value, bool) and float(value) == lr]
    named = [key for key in equal if key.rsplit(".", 1)[-1] in ("lr", "learning_rate") or "lr" in key]
    matches = named or equal
    return matches[0] if len(matches) == 1 else None


def steepest_log_descent(lrs: list[float], losses: list[float], skip_begin: int = SKIP_BEGIN) -> float | None:
    """The learning rate where the loss falls fastest against log(lr), before the loss minimum;
    None when the loss never falls there.

    Lightning's suggestion is the steepest fall against the rate itself; on the logarithmic grid
    of the range test that divides each step's fall by a step width growing with the rate, so the
    tiny rates of the flat start win. Measured against log(lr) (the plot's own axis) every grid
    step weighs the same, and the pick is where the curve visibly drops fastest. Only the points
    up to the loss minimum count (a dip past it is noise of a diverging run), and the first
    ``skip_begin`` ones are skipped as Lightning skips them (its smoothing starts biased there).
    The other common rule, a tenth of the rate at the minimum, was not taken: it depends on how
    far past the minimum the loss is allowed to run and can fall below the searched range."""
    import numpy as np

    lr, loss = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    keep = np.isfinite(lr) & np.isfinite(loss) & (lr > 0)
    keep[:skip_begin] = False
    lr, loss = lr[keep], loss[keep]
    if len(loss) < 2:
        return None
    end = int(np.argmin(loss)) + 1
    if end < 2:
        return None
    slope = np.gradient(loss[:end], np.log10(lr[:end]))
    best = int(np.argmin(slope))
    return float(lr[best]) if slope[best] < 0 else None


def _save_plot(results: dict[str, list[float]], run: RunDirectory, suggestion: float | None,
               alternative: float | None) -> Any:
    """loss against learning rate, Lightning's suggestion a red dot, the alternative a dashed line."""
    figure, axes = pyplot().subplots(figsize=(6.4, 4.2))
    lrs, losses = results["lr"], results["loss"]
    axes.plot(lrs, losses, color="tab:blue", label="loss (Lightning's smoothing)")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    if suggestion is not None:
        at = min(range(len(lrs)), key=lambda i: abs(lrs[i] - suggestion))
        axes.plot([suggestion], [losses[at]], "o", color="red", markersize=9,
                  label=f"Lightning: steepest against lr, {suggestion:.3g}")
    if alternative is not None:
        axes.axvline(alternative, color="tab:green", linestyle="--",
                     label=f"steepest against log lr, {alternative:.3g}")
    axes.set_title("learning-rate range test")
    axes.legend(loc="best", fontsize="small")
    return save_pyplot(figure, run.path / PLOT_NAME, dpi=80, bbox_inches="tight")


@contextmanager
def _no_bar_in_a_pipe() -> Iterator[None]:
    """Lightning's range test draws a tqdm bar of its own, whatever the Trainer's progress bar: off
    when the console is no terminal (a pipe or file would get every redraw)."""
    from pytorch_lightning.tuner import lr_finder

    drawn = lr_finder.tqdm
    if not interactive():
        lr_finder.tqdm = partial(drawn, disable=True)
    try:
        yield
    finally:
        lr_finder.tqdm = drawn


def lr_find(experiment: Experiment, steps: int | None, offline: bool) -> RunDirectory:
    """Run the range test over ``steps`` learning rates (``DEFAULT_STEPS`` when None)."""
    from torch_lab.launch.trainer_args import check_kwargs, default_scheduler_monitor

    hparams = experiment.hparams
    if hparams["seed"] is None:  # draw one and record it, so the test can be repeated
        hparams = {**hparams, "seed": random.SystemRandom().randrange(2**31)}
    experiment.config_function("train_config")
    check_kwargs(experiment, hparams, "init", pl.Trainer)
    pl.seed_everything(hparams["seed"], workers=True, verbose=False)
    config = experiment.train_config(hparams)
    if not config["module"].automatic_optimization:
        raise UserError(f"--lr-find: {display_path(experiment.main_path)}: train_config's module optimises by "
                        "hand (automatic_optimization is False); Lightning's learning-rate range test needs "
                        "one optimizer that Lightning steps itself")
    tracked = TrackedRun(experiment, hparams, f"lr_find_{experiment.name}", "training", ["lr-find"],
                         tracking.select_offline(offline))
    with tracked:
        run = tracked.run
        module = config["module"]
        default_scheduler_monitor(module, tracked.hparams["monitor"]["metric"])
        key = lr_key(tracked.hparams, optimizer_lr(module))
        trainer = tracked.evaluation_trainer(config["callbacks"])
        with _no_bar_in_a_pipe():
            finder = Tuner(trainer).lr_find(module, train_dataloaders=config["train_dataloaders"],
                                            val_dataloaders=config["val_dataloaders"],
                                            num_training=steps or DEFAULT_STEPS, update_attr=False)
        suggestion = finder.suggestion() if finder is not None else None
        alternative = steepest_log_descent(finder.results["lr"], finder.results["loss"])
        plot = _save_plot(finder.results, run, suggestion, alternative)
        tracking.record_file(tracked.task, plot)
        tracked.task.get_logger().report_image("lr_find", "loss vs learning rate", iteration=0,
                                               local_path=str(plot))
        run.update(lr_find={"suggestion": suggestion, "steepest_log_lr": alternative, "key": key, "plot": str(plot),
                            "steps": len(finder.results["lr"]),
                            "lr": finder.results["lr"], "loss": finder.results["loss"]})
        use = (lambda lr: f"use it with: train {display_path(experiment.hparams_path)} --set {key}={lr:.3g}"
               if key is not None else "no hparams key holds optimizer_config's lr: set it where train_config reads it")
        if suggestion is None:
            console.say(f"torch-lab: no suggestion (too few steps, or the loss never fell); see {plot}")
        else:
            console.say(f"torch-lab: suggested learning rate {suggestion:.3g} (Lightning's: the steepest fall "
                        f"against the rate, the red dot on {plot}); {use(suggestion)}")
        if alternative is not None:
            console.say(f"torch-lab: steepest fall against log(learning rate) {alternative:.3g} (the dashed "
                        f"line; often the better start when Lightning's sits on the flat start); {use(alternative)}")
        else:
            console.say("torch-lab: no steepest fall against log(learning rate): the smoothed loss never fell "
                        f"between its first {SKIP_BEGIN} points and its minimum (more steps, or a wider range, "
                        "may show one)")
    return run
