"""The tiny experiment of ``benchmarks/step_overhead.py``: a small MLP, batch 32, 2 epochs of
2,000 steps, no validation, no progress bar; the second epoch is timed."""

hparams = {
    "task": {"project_name": "benchmarks"},
    "trainer": {"init": {"max_epochs": 2, "limit_val_batches": 0, "enable_progress_bar": False,
                         "enable_model_summary": False, "accelerator": "cpu", "devices": 1}},
    "monitor": {"metric": "loss/train"},
    "seed": 0,
    "config": {"steps": 2000, "metric": False, "timing_file": None, "calls_file": None},
}
