"""Custom-module example: a tiny GAN on synthetic 2-D points, manual optimisation, two optimizers."""

hparams = {
    "task": {"project_name": "example_project"},
    "trainer": {"init": {"max_epochs": 6, "accelerator": "cpu", "devices": 1}},
    "monitor": {"metric": "gap/val", "mode": "min"},  # a metric the module logs itself
    "seed": 0,
    "config": {
        "train_size": 2048,
        "val_size": 512,
        "batch_size": 64,
        "latent": 4,
        "hidden": 32,
        "lr_generator": 2e-3,
        "lr_discriminator": 2e-3,
    },
}
