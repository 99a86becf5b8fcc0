"""A sweep of the GAN example: ``train hparams.py --sweep sweep.py`` (see docs/how-to/sweeps.md)."""

sweep = {
    "trials": 4,
    "metric": "gap/val",
    "direction": "minimize",
    "space": {
        "config.lr_generator": {"low": 5e-4, "high": 5e-3, "log": True},
        "config.hidden": [16, 32],
    },
    "sampler": "tpe",
    "pruner": "none",
    "seed": 0,
}
