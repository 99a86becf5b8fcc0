"""Runs as data: reading run directories (``records``, ``derived``) and choosing among them
(``choose``), plain data for notebooks and ``runs --csv`` (``data``: ``load_runs``,
``load_groups``), the text of ``runs`` (``report``), runs grouped over
seeds (``groups``), ``runs plot`` (``plot``), and tidying them: ``runs du``, ``rm`` and ``prune``
(``tidy``).

Standard library only at module level (``runs`` over 1,000 run directories must stay under half a
second): may import ``torch_lab.storage``, ``torch_lab.text``, ``torch_lab.figures`` and
``torch_lab.errors``.
"""

from torch_lab.runs.data import load_groups, load_runs

__all__ = ["load_groups", "load_runs"]
