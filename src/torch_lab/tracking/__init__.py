"""ClearML, and only it: the task's life and settings (``task``), the start-up check of the
server and the queue (``server``), the task's outcome (``outcome``), handing it to an agent's queue
(``agent``), the Lightning logger that reports to it (``logger``), keeping an offline session in
step with the checkpoints (``sync``), importing offline sessions into a server (``offline_import``,
for ``runs sync``), and bounding
the waits on a server that went away (``deadline``).

Imports clearml (after Lightning: see ``task``); may import ``torch_lab.errors``,
``torch_lab.console`` and ``torch_lab.storage``. Importing this package alone loads nothing.
"""
