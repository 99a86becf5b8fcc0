"""What torch-lab keeps on disk: atomic writes (``atomic``), the run directory with its lock
(``run_dir``) and checkpoint files written atomically (``checkpoint_io``).

``atomic`` and ``run_dir`` use the standard library only (``runs`` reads through them);
``checkpoint_io`` imports torch and Lightning. May import ``torch_lab.errors``.
"""
