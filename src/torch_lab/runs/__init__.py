"""Runs as data: reading run directories (``records``), plain data for notebooks and ``runs
--csv`` (``data``: ``load_runs``), the text of ``runs`` (``report``) and ``runs plot``
(``plot``), and tidying them: ``runs du``, ``rm`` and ``prune`` (``tidy``).

Standard library only at module level (``runs`` over 1,000 run directories must stay under half a
second): may import ``torch_lab.storage``, ``torch_lab.text``, ``torch_lab.figures`` and
``torch_lab.errors``.
"""

from torch_lab.runs.data import load_runs

__all__ = ["load_runs"]
