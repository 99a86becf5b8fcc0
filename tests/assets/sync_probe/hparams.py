hparams = {
    "task": {"project_name": "torch-lab-tests"},
    "trainer": {"init": {"max_epochs": 2, "accelerator": "cpu", "devices": 1}},
    "config": {"report": None},
}
