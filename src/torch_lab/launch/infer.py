"""``infer``: ``trainer.predict`` on ``infer_config(hparams, *args)``, with the weights of the
hparams checkpoint block or those ``infer_config`` says it loaded, as a task of its own. With a
checkpoint task, the model is built from the hparams that task recorded (plus ``--set``), as it
was trained; the ``trainer`` and ``checkpoint`` blocks (how and from what to predict) are the
command's."""

from __future__ import annotations

import time

import pytorch_lightning as pl  # before clearml (see torch_lab.tracking.task)

from torch_lab.experiment import Experiment, infer_weights
from torch_lab.launch.options import RunOptions
from torch_lab.launch.start_points import check_start, from_task, task_hparams
from torch_lab.launch.tracked import TrackedRun
from torch_lab.launch.trainer_args import check_kwargs
from torch_lab.storage.run_dir import RunDirectory
from torch_lab.tracking import task as tracking


def infer(experiment: Experiment, options: RunOptions) -> RunDirectory:
    """Run ``infer``: ``trainer.predict`` on ``infer_config(hparams, *extra_args)``."""
    hparams = experiment.hparams
    experiment.check_infer_args(options.extra_args)
    check_kwargs(experiment, hparams, "init", pl.Trainer)
    check_kwargs(experiment, hparams, "predict", pl.Trainer.predict)
    start = from_task(hparams)
    recorded = task_hparams(experiment, start.parent["task_id"], options.overrides) if start else None
    if recorded is not None:
        hparams = {**recorded, "trainer": hparams["trainer"], "checkpoint": hparams["checkpoint"]}
    config = experiment.infer_config(options.extra_args, hparams)
    if start is not None:
        start.weights_only = True  # prediction needs the weights only
        check_start(config["module"], start)
    weights = infer_weights(experiment, config, start.label if start is not None else None)

    offline = tracking.select_offline(options.offline)
    tracked = TrackedRun(experiment, hparams, f"infer_{experiment.name}", "inference", ["infer"],
                         offline)
    with tracked:
        tracked.stop.check()
        if tracked.hparams != hparams:
            config = experiment.infer_config(options.extra_args, tracked.hparams)
            if start is not None:
                check_start(config["module"], start)
        if start is not None:
            tracking.record_parent(tracked.task, start.parent)
            tracked.run.update(started_from=start.parent)
        tracked.run.update(weights=weights)
        print(f"torch-lab: predicting with the weights of {weights}", flush=True)
        trainer = tracked.evaluation_trainer(config["callbacks"])
        began = time.perf_counter()
        # The writers in config["callbacks"] keep the predictions; Lightning need not hold them all.
        trainer.predict(config["module"], config["predict_dataloaders"],
                        **{"return_predictions": False, **tracked.hparams["trainer"]["predict"]})
        tracked.run.update(predict_seconds=round(time.perf_counter() - began, 3))
    return tracked.run
