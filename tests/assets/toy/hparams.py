hparams = {
    "task": {"project_name": "torch-lab-tests"},
    "trainer": {"init": {"max_epochs": 3, "enable_progress_bar": False}},
    "config": {"lr": 0.1, "crash_at_epoch": None, "crash_rank": None, "batch_sleep": 0, "stateful_loader": False,
               "nan_at_step": None, "nan_val_at_epoch": None, "val_worker_raises": False,
               "setup_sleep": 0, "val_batch_sleep": 0, "noise": 0,
               "schedule": "step"},
}
