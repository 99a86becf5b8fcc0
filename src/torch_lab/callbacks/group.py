"""torch-lab's own callbacks, seen by Lightning as one.

Lightning calls every hook of every callback around every training step (six hooks a step, each
call a few microseconds of Python even when the hook does nothing), so each callback adds to every
step. ``CallbackGroup`` takes one such slot for all of torch-lab's plain callbacks and calls only
the hooks they override.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import pytorch_lightning as pl

HOOKS = tuple(name for name in dir(pl.Callback)
              if (name.startswith("on_") or name in ("setup", "teardown")) and callable(getattr(pl.Callback, name)))


class CallbackGroup(pl.Callback):
    """Run ``callbacks`` (plain ones: not a progress bar, ``ModelCheckpoint`` or
    ``EarlyStopping``, which Lightning treats apart) in order, as one Lightning callback. Their
    checkpoint states are kept under their own ``state_key``."""

    def __init__(self, callbacks: Iterable[pl.Callback]) -> None:
        self.callbacks = list(callbacks)
        for hook in HOOKS:
            methods = [getattr(c, hook) for c in self.callbacks
                       if getattr(type(c), hook) is not getattr(pl.Callback, hook)]
            if hook == "on_load_checkpoint":
                methods.insert(0, self._load_ungrouped_states)
            if methods:
                setattr(self, hook, _in_order(methods))

    def state_dict(self) -> dict[str, Any]:
        return {c.state_key: state for c in self.callbacks if (state := c.state_dict())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for callback in self.callbacks:
            if callback.state_key in state_dict:
                callback.load_state_dict(state_dict[callback.state_key])

    def _load_ungrouped_states(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                               checkpoint: dict[str, Any]) -> None:
        """A checkpoint written before the group holds each callback's state at the top level."""
        states = checkpoint.get("callbacks") or {}
        if self.state_key not in states:
            self.load_state_dict(states)


def _in_order(methods: list[Callable[..., Any]]) -> Callable[..., None]:
    def hook(*args: Any, **kwargs: Any) -> None:
        for method in methods:
            method(*args, **kwargs)

    return hook
