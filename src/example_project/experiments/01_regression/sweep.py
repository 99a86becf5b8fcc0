"""A sweep of the regression example: ``train hparams.py --sweep sweep.py`` (see docs/how-to/sweeps.md)."""

sweep = {
    "trials": 6,
    "metric": "mse/val",
    "direction": "minimize",
    "space": {
        "config.learning_rate": {"low": 1e-3, "high": 1e-1, "log": True},
        "config.model.hidden": [16, 32, 64],
    },
    "sampler": "tpe",
    "pruner": "none",
    "seed": 0,
}
