"""A sweep trial's ``train`` arguments read back as the sweep's own options."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from torch_lab.cli.parsers import train_parser
from torch_lab.sweep.local import child_args


@pytest.mark.parametrize("devices", ["0,", "0,1", "auto", "2"])
def test_a_trial_gets_the_devices_it_was_given(devices: str) -> None:
    parser = train_parser()
    args = parser.parse_intermixed_args(["h.py", "--sweep", "s.py", "--devices", devices])
    experiment = SimpleNamespace(hparams_path=Path("h.py"), hparams={"monitor": {"metric": "m", "mode": "min"}})
    sweep = SimpleNamespace(metric="m", direction="minimize")
    trial = parser.parse_intermixed_args(child_args(args, sweep, experiment, True, {"config.lr": 0.1}))
    assert trial.devices == args.devices  # "0," is device 0, not zero devices
    assert trial.overrides == ["config.lr=0.1"] and trial.offline
