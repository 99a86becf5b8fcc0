"""Regression example: an MLP on synthetic data, MSE loss, plateau schedule on the monitor."""

hparams = {
    "task": {"project_name": "example_project"},
    "trainer": {"init": {"max_epochs": 8, "accelerator": "cpu", "devices": 1}},
    "monitor": {"metric": "mse/val", "mode": "min", "patience": 3},
    "seed": 0,
    "config": {
        "train_size": 4096,
        "val_size": 512,
        "batch_size": 64,
        "model": {"hidden": 64, "layers": 2},
        "learning_rate": 1e-2,
    },
}
