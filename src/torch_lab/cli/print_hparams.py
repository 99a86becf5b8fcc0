"""``--print-hparams``: the resolved hparams (layering, ``--set``, defaults filled in) as JSON,
printed before torch, Lightning or ClearML are imported, after the checks of the hparams that
the command runs at once (the ``trainer`` blocks' keys and types, read from Lightning's source)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from torch_lab.errors import UserError

if TYPE_CHECKING:
    from torch_lab.children.seeds import More


#: The ``trainer`` blocks each command passes to Lightning, checked as the command checks them.
TRAINER_BLOCKS = {"train": ("init", "fit"), "infer": ("init", "predict")}


def resolved(paths: list[str], overrides: list[str], sweep: str | None = None,
             trainer_blocks: tuple[str, ...] = (), seeds: list[int] | int | More | None = None) -> Any:
    """One file's hparams; several files' as ``{path: hparams}``; with a sweep, ``{"hparams": ...,
    "sweep": <its space>}``; with ``--seeds``, each run's as ``{"<path> seed=<seed>": hparams}``
    (its ``--set seed=<seed>`` last, as the run gets it; ``+N``: the seeds ``train`` would add). ``trainer_blocks`` are checked against
    Lightning's source. ``task.task_name`` shows its default, the experiment's name."""
    from torch_lab.children.seeds import SEED_MARK, More, grown, resolve_seeds
    from torch_lab.errors import display_path
    from torch_lab.experiment import load_hparams
    from torch_lab.experiment.config import default_task_name
    from torch_lab.experiment.precheck import check_trainer_blocks

    if sweep and len(paths) > 1:
        raise UserError(f"--sweep takes a single hparams file, got {len(paths)}: {', '.join(paths)}")
    runs = [(path, path, overrides) for path in paths] if seeds is None else [
        (f"{path}{SEED_MARK}{seed}", path, [*overrides, f"seed={seed}"])
        for path in paths for seed in (grown(path, overrides, seeds)[0] if isinstance(seeds, More)
                                       else resolve_seeds(seeds)[0])]
    loaded = {label: load_hparams(path, run_overrides) for label, path, run_overrides in runs}
    for resolved_path, hparams in loaded.values():
        check_trainer_blocks(hparams, display_path(resolved_path), trainer_blocks)
        hparams["task"].setdefault("task_name", default_task_name(resolved_path))
    each = {label: hparams for label, (_, hparams) in loaded.items()}
    result: Any = next(iter(each.values())) if len(each) == 1 else each
    if sweep:  # one hparams file: its space is checked against its hparams
        from torch_lab.sweep.space import resolved_sweep

        [(resolved_path, hparams)] = loaded.values()
        result = {"hparams": hparams, "sweep": resolved_sweep(sweep, hparams, resolved_path)}
    return result


def print_hparams(prog: str, paths: list[str], overrides: list[str], sweep: str | None = None,
                  seeds: list[int] | int | More | None = None) -> int:
    """Print the resolved hparams of ``paths`` (of each seed's run, with ``seeds``) as JSON; exit
    code 0, or 2 on a user error."""
    try:
        text = json.dumps(resolved(paths, overrides, sweep, TRAINER_BLOCKS.get(prog, ()), seeds), indent=2)
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    print(text, flush=True)
    return 0
