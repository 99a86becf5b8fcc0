"""The console scripts: argument parsing, dispatch and exit codes only. ``train`` and ``infer``
(``main``, ``parsers``), ``runs`` (``runs``), shell completion, ``--print-hparams`` and the
hparams globs.

Light: ``--help`` is instant, so no module here imports torch, Lightning or ClearML at module
level; the commands' work is imported from ``launch``, ``sweep`` and ``runs`` when it runs.
"""
