"""A burst of stop signals is one stop; a signal after the window is a new one."""

from __future__ import annotations

import pytest

from torch_lab import signals
from torch_lab.signals import REPEAT_WINDOW_S, Burst


def test_signals_within_the_window_repeat_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock is set by hand: the window is what is tested, not the machine's speed."""
    now = [100.0]
    monkeypatch.setattr(signals.time, "monotonic", lambda: now[0])
    burst = Burst()
    assert not burst.repeats()  # the first signal begins a stop
    now[0] += 0.1
    assert burst.repeats()
    now[0] += REPEAT_WINDOW_S - 0.2
    assert burst.repeats()  # still within the window of the first
    now[0] += 0.2
    assert not burst.repeats()  # a new signal: a second stop begins
    assert burst.repeats()


def test_a_stop_begun_elsewhere_has_its_window(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [5.0]
    monkeypatch.setattr(signals.time, "monotonic", lambda: now[0])
    burst = Burst()
    burst.begin()  # e.g. another rank's signal
    assert burst.repeats()
    now[0] += REPEAT_WINDOW_S
    assert not burst.repeats()
