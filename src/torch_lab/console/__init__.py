"""The console: what a run shows on the terminal, and ``console.log`` in its run directory, which
keeps all of it (see ``torch_lab.console.streams``); the end-of-run summary (``summary``).

Light: may import the standard library and ``torch_lab.text`` only; never torch, Lightning or
ClearML at module level (the ``train`` command installs it before they load).
"""

from torch_lab.console.streams import LOG_NAME, Console, attach, current, install, route_clearml_logging, say

__all__ = ["LOG_NAME", "Console", "attach", "current", "install", "route_clearml_logging", "say"]
