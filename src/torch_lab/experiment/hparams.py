"""The hparams dict: its schema, validation with defaults, and ``--set KEY=VALUE`` overrides.

Errors are raised as :class:`~torch_lab.errors.UserError` whose message starts with the hparams
file's name and names the key, so the CLI can print them on one line.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

from torch_lab.errors import UserError, did_you_mean, display_path

#: The fixed-shape blocks' keys with their defaults.
CHECKPOINT_DEFAULTS: dict[str, Any] = {
    "checkpoint_task_id": None,
    "checkpoint_name": "last",
    "weights_only": False,
    "every_n_train_steps": None,
}
MONITOR_DEFAULTS: dict[str, Any] = {
    "metric": "loss/val",  # picks best.ckpt; early stopping and a scheduler's monitor follow it
    "mode": "min",
    "patience": None,  # epochs without improvement before stopping; None: no early stopping
    "min_delta": 0.0,
}
TRAINER_BLOCKS = ("init", "fit", "predict")
TOP_LEVEL_KEYS = ("task", "checkpoint", "trainer", "monitor", "seed", "config")

#: Every key the schema knows (``*``: free-form contents), as docs/reference/hparams.md lists them.
SCHEMA_KEYS = frozenset(
    ["task", "task.project_name", "task.task_name", "task.*", "config", "seed"]
    + [f"checkpoint.{key}" for key in CHECKPOINT_DEFAULTS]
    + [f"trainer.{block}" for block in TRAINER_BLOCKS]
    + [f"monitor.{key}" for key in MONITOR_DEFAULTS]
)

_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _check_plain(value: Any, where: str, source: str) -> None:
    """Reject values that cannot round-trip through JSON and ClearML's parameter store."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UserError(f"{source}: {where} has a non-string key {key!r}")
            _check_plain(item, f"{where}.{key}", source)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]", source)
    elif not isinstance(value, _PLAIN_SCALARS):
        raise UserError(
            f"{source}: {where} is a {type(value).__name__}; hparams hold plain data only "
            "(numbers, strings, bools, None, lists, dicts): name classes by string and "
            "resolve them in __main__.py"
        )


def _require_dict(value: Any, where: str, source: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{source}: {where} must be a dict, got {type(value).__name__}")
    return value


#: How deep hparams may nest (dicts and lists): deeper is surely a mistake, and would overflow
#: Python's recursion limit in copies and serialisers.
MAX_DEPTH = 50


def _check_depth(hparams: dict[str, Any], source: str) -> None:
    """Refuse hparams nested deeper than ``MAX_DEPTH`` (walked without recursion)."""
    stack: list[tuple[Any, str, int]] = [(hparams, "hparams", 1)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UserError(f"{source}: {where[:60]}... nests more than {MAX_DEPTH} levels deep; "
                            "hparams hold plain, shallow data")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack += [(item, f"{where}.{key}", depth + 1) for key, item in items]


def validate(hparams: Any, source: str | Path) -> dict[str, Any]:
    """Check ``hparams`` against the schema and return a deep copy with defaults filled in.

    ``source`` (the hparams file) prefixes every error message.
    """
    source = display_path(source)
    _check_depth(_require_dict(hparams, "hparams", source), source)
    hparams = copy.deepcopy(hparams)
    for key in hparams:
        if key not in TOP_LEVEL_KEYS:
            raise UserError(
                f"{source}: unknown top-level key '{key}'{did_you_mean(key, TOP_LEVEL_KEYS)}"
            )
    _check_plain(hparams, "hparams", source)
    _validate_task(hparams, source)
    _validate_checkpoint(_block(hparams, "checkpoint", tuple(CHECKPOINT_DEFAULTS), source, CHECKPOINT_DEFAULTS),
                         source)
    trainer = _block(hparams, "trainer", TRAINER_BLOCKS, source)
    for name in TRAINER_BLOCKS:
        _require_dict(trainer.setdefault(name, {}), f"trainer.{name}", source)
    _validate_monitor(_block(hparams, "monitor", tuple(MONITOR_DEFAULTS), source, MONITOR_DEFAULTS), source)
    _validate_seed(hparams.setdefault("seed", None), source)
    _require_dict(hparams.setdefault("config", {}), "config", source)
    return hparams


def _block(hparams: dict[str, Any], name: str, keys: tuple[str, ...], source: str,
           defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fixed-shape block ``name``: a dict of ``keys`` only (a misspelt one is named, with the
    closest), ``defaults`` filled in."""
    block = _require_dict(hparams.setdefault(name, {}), name, source)
    for key in block:
        if key not in keys:
            raise UserError(f"{source}: unknown key '{name}.{key}'{did_you_mean(key, keys)}")
    for key, default in (defaults or {}).items():
        block.setdefault(key, default)
    return block


def _validate_task(hparams: dict[str, Any], source: str) -> None:
    if "task" not in hparams:
        raise UserError(f"{source}: missing key 'task' (needs at least task.project_name)")
    task = _require_dict(hparams["task"], "task", source)
    if not isinstance(task.get("project_name"), str) or not task["project_name"]:
        raise UserError(f"{source}: task.project_name must be a non-empty string")


def _validate_checkpoint(checkpoint: dict[str, Any], source: str) -> None:
    if checkpoint["checkpoint_task_id"] is not None and not isinstance(checkpoint["checkpoint_task_id"], str):
        raise UserError(f"{source}: checkpoint.checkpoint_task_id must be a string or None")
    if not isinstance(checkpoint["checkpoint_name"], str):
        raise UserError(f"{source}: checkpoint.checkpoint_name must be a string")
    if not isinstance(checkpoint["weights_only"], bool):
        raise UserError(f"{source}: checkpoint.weights_only must be True or False")
    steps = checkpoint["every_n_train_steps"]
    if steps is not None and not _is_int(steps, minimum=1):
        raise UserError(f"{source}: checkpoint.every_n_train_steps must be a positive int or None")


def _validate_monitor(monitor: dict[str, Any], source: str) -> None:
    if not isinstance(monitor["metric"], str) or "/" not in monitor["metric"]:
        raise UserError(f"{source}: monitor.metric must name a logged metric, e.g. 'loss/val'")
    if monitor["mode"] not in ("min", "max"):
        raise UserError(f"{source}: monitor.mode must be 'min' or 'max', got {monitor['mode']!r}")
    if monitor["patience"] is not None and not _is_int(monitor["patience"], minimum=0):
        raise UserError(f"{source}: monitor.patience must be an int >= 0 or None")
    delta = monitor["min_delta"]
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or delta < 0:
        raise UserError(f"{source}: monitor.min_delta must be a number >= 0")


def _validate_seed(seed: Any, source: str) -> None:
    if seed is not None and (not _is_int(seed, minimum=0) or seed >= 2**32):
        raise UserError(f"{source}: seed must be an int in [0, 2**32) (NumPy's range) or None "
                        "(None: a random seed, recorded)")


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


# Blocks whose contents are keyword arguments: ``--set`` may add keys there.
_OPEN_BLOCKS = {("task",), ("trainer", "init"), ("trainer", "fit"), ("trainer", "predict")}


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value as a Python literal, falling back to the raw string.

    Text that starts like a list, dict, tuple or quoted string must parse: ``[1, 2`` is an error
    rather than silently becoming a string.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        if text.strip()[:1] in "[{(\"'" and text.strip():
            raise ValueError(f"cannot parse {text!r} as a Python literal ({error})") from None
        return text


def apply_overrides(hparams: dict[str, Any], overrides: list[str], source: str | Path) -> dict:
    """Apply ``KEY=VALUE`` strings (dotted keys) to a copy of validated ``hparams``.

    Keys must exist, except inside the keyword-argument blocks (``task``, ``trainer.init``,
    ``trainer.fit``, ``trainer.predict``) where new keys are allowed. The result is re-validated.
    """
    source = display_path(source)
    hparams = copy.deepcopy(hparams)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. config.learning_rate=3e-3")
        parts = key.strip().split(".")
        try:
            value = parse_value(text)
        except ValueError as error:
            raise UserError(f"--set {key}: {error}") from None
        node: Any = hparams
        for depth, part in enumerate(parts):
            if not isinstance(node, dict):
                raise UserError(
                    f"--set {key}: {'.'.join(parts[:depth])} in {source} is not a dict"
                )
            last = depth == len(parts) - 1
            if part not in node and not (last and tuple(parts[:depth]) in _OPEN_BLOCKS):
                valid = tuple(str(k) for k in node)
                hint = did_you_mean(part, valid) if valid else ""
                raise UserError(
                    f"--set {key}: no key '{'.'.join(parts[: depth + 1])}' in {source}{hint}"
                )
            if last:
                node[part] = value
            else:
                node = node[part]
    return validate(hparams, source)
