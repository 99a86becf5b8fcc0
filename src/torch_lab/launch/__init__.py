"""The commands that run Lightning: ``train`` (``train``: the recipe; ``fit``), ``train
--test-only`` (``evaluate``), ``infer``, ``train --lr-find`` (``lr_find``); where a run starts
(``start_points``), the Trainer's arguments (``trainer_args``), the tracked run
(``tracked``) and the experiment's own loggers (``loggers``).

Heavy: imports Lightning and ClearML. May import every package but ``cli``.
"""
