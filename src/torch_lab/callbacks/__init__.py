"""Lightning callbacks torch-lab adds to runs, one per module: the group that runs torch-lab's
plain callbacks as one (``group``), checkpoints (``checkpoint``), history.csv (``history``) and
curves.png (``curves``), the guards (``nan_guard``, ``monitor_guard``), learning rates, random
state, the graceful stop on signals, the console's header and progress, and sweep pruning.

May import Lightning, torch, ``torch_lab.storage``, ``torch_lab.console``, ``torch_lab.figures``
and ``torch_lab.sweep.trial``; never the commands (``cli``, ``launch``, ``runs``).
"""
