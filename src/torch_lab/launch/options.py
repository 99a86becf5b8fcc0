"""What the command line asked of a run (``train`` / ``infer``), as one value."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunOptions:
    """What the command line asked for."""

    offline: bool = False
    dev_run: int | float | None = None
    extra_args: list[str] = field(default_factory=list)
    resume: str | None = None  # "" = the latest unfinished run of the hparams file
    resume_other: bool = False  # --resume-other: the run may be of another hparams file
    overrides: list[str] = field(default_factory=list)
    devices: int | str | list[int] | None = None
    queue: str | None = None
    test_only: str | None = None  # a task id or .ckpt path; "" = the hparams checkpoint block
    lr_find: int | None = None  # --lr-find: the number of steps (0: the default)
