"""Default hparams of the MNIST demo: a small CNN, AdamW with a one-cycle schedule, 5 epochs."""

hparams = {
    "task": {
        "project_name": "example_project",  # ClearML project
    },
    "checkpoint": {
        "checkpoint_task_id": None,  # start from an earlier task's checkpoint
        "checkpoint_name": "last",
        "weights_only": False,
    },
    "trainer": {
        "init": {"max_epochs": 5, "accelerator": "auto", "devices": 1},
        "fit": {},
        "predict": {},
    },
    "seed": 0,  # recorded either way; fixed here so the demo's numbers repeat
    "config": {
        "data_dir": "data",  # relative to where the command runs; MNIST is read from <data_dir>/MNIST/raw
        "val_size": 5000,  # images held out of the 60,000 training images for validation
        "split_seed": 0,
        "batch_size": 128,
        "num_workers": 0,  # the data are in memory already: workers would only add IPC
        "model": {"width": 8, "hidden": 128, "dropout": 0.25},
        "optimizer": "AdamW",  # a class of torch.optim
        "learning_rate": 3e-3,
        "weight_decay": 1e-4,
        "debug_images": 8,  # misclassified validation images sent to ClearML per epoch (0: none)
    },
}
