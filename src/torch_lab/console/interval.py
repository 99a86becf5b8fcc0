"""How often progress lines are printed when the console is not a terminal: read once from
``TORCH_LAB_PROGRESS_INTERVAL`` and checked before anything starts (a bad value is the user's
mistake, not a failure of a run that trained for an hour)."""

from __future__ import annotations

import math
import os

from torch_lab.errors import UserError

INTERVAL_ENV = "TORCH_LAB_PROGRESS_INTERVAL"
#: Seconds between progress lines by default.
PROGRESS_LINE_INTERVAL_S = 30.0


def progress_interval() -> float:
    """Seconds between progress lines (``$TORCH_LAB_PROGRESS_INTERVAL``, else 30); a value that is
    not a number of seconds >= 0 is a ``UserError``."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return PROGRESS_LINE_INTERVAL_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):  # 0: a line each time
        raise UserError(f"{INTERVAL_ENV}={text!r}: expected the seconds between progress lines, "
                        "a number >= 0")
    return seconds
