"""``train --sweep``: the search space (``space``), the Optuna study (``study``), the trials run
here (``local``) or by ClearML agents (``queue``), what a trial's own process reads (``trial``)
and the sweep's report (``report``). The command is ``command``.

May import ``experiment``, ``children``, ``storage``, ``tracking`` and ``text`` / ``figures``;
Optuna and ClearML only inside functions. ``trial`` is standard library only: every run imports it.
"""
