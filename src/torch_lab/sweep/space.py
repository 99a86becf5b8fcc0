"""A sweep script (``SWEEP.py`` holding a plain dict ``sweep``): reading and validating it, and
translating its search space into Optuna distributions and ClearML parameter ranges.

Errors are :class:`~torch_lab.errors.UserError` naming the sweep file and the key, like the
hparams' own; a space key that ``--set`` would refuse is refused with ``--set``'s message.
Nothing here imports Optuna or ClearML at module level.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch_lab.errors import UserError, did_you_mean, display_path
from torch_lab.experiment.hparams import apply_overrides

SWEEP_KEYS = ("trials", "budget", "metric", "direction", "space", "sampler", "pruner", "seed", "seeds")
RANGE_KEYS = ("low", "high", "log", "step")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
DIRECTIONS = {"min": "minimize", "max": "maximize"}
#: The section ``torch_lab.tracking.connect_hparams`` gives the hparams on a ClearML task.
CLEARML_SECTION = "hparams"
_CHOICE_TYPES = (str, int, float, bool, type(None))  # what Optuna's categorical stores
#: The most points a grid sweep may have; its size is computed from the space, never built.
MAX_GRID_POINTS = 10_000


@dataclass
class Sweep:
    """A validated sweep: each ``space`` entry is ``{"type": "categorical", "choices": [...]}`` or
    ``{"type": "int" | "float", "low", "high", "step", "log"}``; ``pruner`` is
    ``{"type": name, **keyword arguments of its Optuna class}``."""

    path: Path
    trials: int | None
    metric: str | None
    direction: str | None
    space: dict[str, dict[str, Any]]
    sampler: str = "tpe"
    pruner: dict[str, Any] = field(default_factory=lambda: {"type": "none"})
    seed: int | None = None
    #: Each trial once per seed (``train --seeds``), its objective the mean; None: one run.
    seeds: list[int] | None = None
    budget: float | None = None  # wall seconds from the start after which no trial starts (--timeout)

    def grid(self) -> dict[str, list[Any]]:
        """Every value of each dimension (the grid sampler's search space)."""
        values: dict[str, list[Any]] = {}
        for key, dim in self.space.items():
            if dim["type"] == "categorical":
                values[key] = list(dim["choices"])
            else:
                count = round((dim["high"] - dim["low"]) / dim["step"])
                values[key] = [dim["low"] + index * dim["step"] for index in range(count + 1)]
        return values

    def grid_size(self) -> float:
        """The number of grid points (``inf`` when a step is too small to count them)."""
        size = 1.0
        for dim in self.space.values():
            steps = 0 if dim["type"] == "categorical" else (dim["high"] - dim["low"]) / dim["step"]
            if not math.isfinite(steps):
                return math.inf
            size *= len(dim["choices"]) if dim["type"] == "categorical" else round(steps) + 1
        return size


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dimension(key: str, spec: Any, where: str) -> dict[str, Any]:
    """One ``space`` entry: a list (categorical) or a range dict."""
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise UserError(f"{where}: space.{key} is an empty list; give at least one value")
        for value in spec:
            if not isinstance(value, _CHOICE_TYPES):
                raise UserError(f"{where}: space.{key} choices must be numbers, strings, bools or "
                                f"None, got {type(value).__name__}")
        return {"type": "categorical", "choices": list(spec)}
    if not isinstance(spec, dict):
        raise UserError(f"{where}: space.{key} must be a list of values or a dict with low and high, "
                        f"got {type(spec).__name__}")
    for name in spec:
        if name not in RANGE_KEYS:
            raise UserError(f"{where}: unknown key 'space.{key}.{name}'{did_you_mean(str(name), RANGE_KEYS)}")
    low, high, log, step = spec.get("low"), spec.get("high"), spec.get("log", False), spec.get("step")
    if not (_is_number(low) and _is_number(high)):
        raise UserError(f"{where}: space.{key} needs numbers 'low' and 'high'")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise UserError(f"{where}: space.{key}: low and high must be finite, got low={low} high={high}")
    if not low < high:
        raise UserError(f"{where}: space.{key}: low must be below high, got low={low} high={high}")
    if not isinstance(log, bool):
        raise UserError(f"{where}: space.{key}.log must be True or False")
    if log and low <= 0:
        raise UserError(f"{where}: space.{key}: a log range needs low > 0, got {low}")
    if step is not None and (not _is_number(step) or not 0 < step < math.inf):
        raise UserError(f"{where}: space.{key}.step must be a finite number > 0")
    if log and step is not None and not (_is_int(low) and _is_int(high) and step == 1):
        raise UserError(f"{where}: space.{key}: log and step cannot be combined")
    integer = _is_int(low) and _is_int(high) and (step is None or _is_int(step))
    if integer:
        step = 1 if step is None else step
        if (high - low) % step:
            raise UserError(f"{where}: space.{key}: high - low must be a multiple of step {step}")
    return {"type": "int" if integer else "float", "low": low, "high": high, "step": step, "log": log}


def candidates(dim: dict[str, Any]) -> list[Any]:
    """The values a dimension's checks try: every choice, or both bounds in the dimension's type
    (a float range over int bounds gives floats)."""
    if dim["type"] == "categorical":
        return dim["choices"]
    kind = int if dim["type"] == "int" else float
    return [kind(dim["low"]), kind(dim["high"])]


def _check_keys(space: dict[str, dict[str, Any]], hparams: dict[str, Any], hparams_path: Path,
                where: str) -> None:
    """Apply every key with its extreme values the way ``--set`` does: a key ``--set`` refuses, or
    a value the hparams schema refuses, is refused with the same message after ``where``."""
    for key, dim in space.items():
        for value in candidates(dim):
            try:
                apply_overrides(hparams, [f"{key}={value!r}"], hparams_path)
            except UserError as error:
                raise UserError(f"{where}: {error}") from None


def _seeds(seeds: Any, space: dict[str, Any], where: str) -> list[int] | None:
    """``seeds``: None, or a non-empty list of distinct ints (and then no ``space.seed``)."""
    if seeds is None:
        return None
    if not isinstance(seeds, list) or not seeds or not all(_is_int(seed) for seed in seeds):
        raise UserError(f"{where}: seeds must be a non-empty list of distinct ints, e.g. [0, 1, 2], got {seeds!r}")
    twice = next((seed for index, seed in enumerate(seeds) if seed in seeds[:index]), None)
    if twice is not None:
        raise UserError(f"{where}: seeds lists {twice} twice; each seed runs once per trial")
    if "seed" in space:
        raise UserError(f"{where}: space.seed: a sweep over seeds sets the seed itself; drop space.seed or seeds")
    return list(seeds)


def _pruner(spec: Any, where: str) -> dict[str, Any]:
    if spec is None or isinstance(spec, str):
        spec = {"type": spec or "none"}
    if not isinstance(spec, dict):
        raise UserError(f"{where}: pruner must be one of {', '.join(PRUNERS)} or a dict with 'type'")
    spec = dict(spec)
    if spec.get("type") not in PRUNERS:
        raise UserError(f"{where}: pruner must be one of {', '.join(PRUNERS)}, got {spec.get('type')!r}")
    if spec["type"] == "none" and len(spec) > 1:
        raise UserError(f"{where}: pruner 'none' takes no arguments")
    return spec


def read_sweep(path: str | Path, hparams: dict[str, Any] | None = None,
               hparams_path: Path | None = None) -> Sweep:
    """Load and validate ``path``; with the base ``hparams``, also check each space key against
    them (``--set``'s rules) and fill ``metric`` and ``direction`` from their ``monitor`` block."""
    from torch_lab.experiment import run_script

    path = Path(path)
    where = display_path(path)
    if not path.is_file():
        raise UserError(f"{where}: no such file" if not path.exists() else f"{where}: not a file")
    if path.suffix != ".py":
        raise UserError(f"{where}: not a Python script (.py)")
    module = run_script(path.resolve())
    if not hasattr(module, "sweep"):
        raise UserError(f"{where}: defines no 'sweep' dict")
    raw = module.sweep
    if not isinstance(raw, dict):
        raise UserError(f"{where}: sweep must be a dict, got {type(raw).__name__}")
    for key in raw:
        if key not in SWEEP_KEYS:
            raise UserError(f"{where}: unknown key '{key}'{did_you_mean(str(key), SWEEP_KEYS)}")
    trials, budget, seed = raw.get("trials"), raw.get("budget"), raw.get("seed")
    if trials is not None and (not _is_int(trials) or trials < 1):
        raise UserError(f"{where}: trials must be an int >= 1")
    if budget is not None and (not _is_number(budget) or not 0 < budget < float("inf")):
        raise UserError(f"{where}: budget must be a number of seconds > 0 (after it no new trial starts)")
    metric = raw.get("metric")
    if metric is not None and (not isinstance(metric, str) or "/" not in metric):
        raise UserError(f"{where}: metric must name a logged metric, e.g. 'loss/val'")
    direction = raw.get("direction")
    if direction is not None and direction not in DIRECTIONS.values():
        raise UserError(f"{where}: direction must be 'minimize' or 'maximize', got {direction!r}")
    space = raw.get("space")
    if not isinstance(space, dict) or not space:
        raise UserError(f"{where}: space must be a non-empty dict of --set keys")
    dims = {str(key): _dimension(str(key), spec, where) for key, spec in space.items()}
    sampler = raw.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise UserError(f"{where}: sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if sampler == "grid":
        for key, dim in dims.items():
            if dim["type"] == "float" and dim["step"] is None:
                raise UserError(f"{where}: space.{key}: the grid sampler needs a list or a range with a step")
        size = Sweep(path, None, None, None, dims).grid_size()
        if size > MAX_GRID_POINTS:
            raise UserError(f"{where}: the grid has {size:,.0f} points, over the {MAX_GRID_POINTS:,} a grid "
                            "sweep may have; use larger steps, fewer values, or the tpe or random sampler")
    if seed is not None and not _is_int(seed):
        raise UserError(f"{where}: seed must be an int or None")
    sweep = Sweep(path, trials, metric, direction, dims, sampler, _pruner(raw.get("pruner"), where), seed,
                  _seeds(raw.get("seeds"), dims, where), budget)
    if hparams is not None:
        _check_keys(dims, hparams, hparams_path or path, f"{where}: space")
        if sweep.seeds:
            _check_keys({"seed": {"type": "categorical", "choices": sweep.seeds}}, hparams, hparams_path or path,
                        f"{where}: seeds")
        sweep.metric = sweep.metric or hparams["monitor"]["metric"]
        sweep.direction = sweep.direction or DIRECTIONS[hparams["monitor"]["mode"]]
    return sweep


def resolved_sweep(path: str | Path, hparams: dict[str, Any] | None = None,
                   hparams_path: Path | None = None) -> dict[str, Any]:
    """The validated sweep of ``path`` as plain data (for ``--print-hparams``)."""
    sweep = asdict(read_sweep(path, hparams, hparams_path))
    sweep["path"] = str(sweep["path"])
    return sweep


def optuna_distributions(sweep: Sweep) -> dict[str, Any]:
    """The space as Optuna distributions, keyed by the ``--set`` path."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    distributions: dict[str, Any] = {}
    for key, dim in sweep.space.items():
        if dim["type"] == "categorical":
            distributions[key] = CategoricalDistribution(dim["choices"])
        elif dim["type"] == "int":
            distributions[key] = IntDistribution(dim["low"], dim["high"], log=dim["log"], step=dim["step"])
        else:
            distributions[key] = FloatDistribution(dim["low"], dim["high"], log=dim["log"], step=dim["step"])
    return distributions


def clearml_name(key: str) -> str:
    """The ClearML parameter of a ``--set`` key: ``config.lr`` -> ``hparams/config/lr``."""
    return "/".join([CLEARML_SECTION, *key.split(".")])


def _has_key(hparams: dict[str, Any], key: str) -> bool:
    node: Any = hparams
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def clearml_ranges(sweep: Sweep, hparams: dict[str, Any]) -> list[Any]:
    """The space as ``clearml.automation`` parameter ranges over the task's ``hparams`` section.
    Each key must be in the base ``hparams``: an agent's run only takes back the parameters the
    base task has."""
    from clearml.automation import (
        DiscreteParameterRange,
        LogUniformParameterRange,
        UniformIntegerParameterRange,
        UniformParameterRange,
    )

    ranges = []
    for key, dim in sweep.space.items():
        name = clearml_name(key)
        if not _has_key(hparams, key):
            raise UserError(f"{display_path(sweep.path)}: space.{key}: not in the base hparams, so not a "
                            "parameter of the base task ClearML's optimizer clones; set it in the hparams file")
        if dim["type"] == "categorical":
            ranges.append(DiscreteParameterRange(name, values=list(dim["choices"])))
        elif dim["type"] == "int":
            if dim["log"]:
                raise UserError(f"{display_path(sweep.path)}: space.{key}: ClearML's optimizer has no "
                                "log range of ints; drop 'log' or use a list")
            ranges.append(UniformIntegerParameterRange(name, dim["low"], dim["high"], step_size=dim["step"]))
        elif dim["log"]:  # ClearML's log range takes exponents of its base
            ranges.append(LogUniformParameterRange(name, math.log10(dim["low"]), math.log10(dim["high"]),
                                                   base=10))
        else:
            # include_max_value=False: ClearML then asks Optuna's suggest_float(low, high, step),
            # which includes high when it lies on the step grid, as torch-lab's own sweep does.
            ranges.append(UniformParameterRange(name, dim["low"], dim["high"], step_size=dim["step"],
                                                include_max_value=dim["step"] is None))
    return ranges
