"""The argument parsers of ``train``, ``infer`` and ``export`` and their value types. Standard library only:
``--help`` must be instant."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Sequence

from torch_lab.children.seeds import More
from torch_lab.cli.completion import PrintCompletion


class Parser(argparse.ArgumentParser):
    """The parser of every command and subcommand: a flag is its whole name (argparse's
    abbreviations took ``--seed 3`` for ``--seeds 3``) and a mistake is one line, naming the flag
    meant (``train: error: unrecognized arguments: --seed (did you mean '--seeds'?)``), exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, unknown = self.parse_known_args(args, namespace)
        self._refuse(unknown)
        return parsed

    def parse_intermixed_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, unknown = self.parse_known_intermixed_args(args, namespace)
        self._refuse(unknown)
        return parsed

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _refuse(self, unknown: list[str]) -> None:
        if unknown:
            flag = next((item.split("=", 1)[0] for item in unknown if item.startswith("-")), None)
            self.error(f"unrecognized arguments: {' '.join(unknown)}{flag_hint(flag, self) if flag else ''}")


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag of ``parser`` and of its subcommands."""
    found: list[str] = []
    for action in parser._actions:
        found += [option for option in action.option_strings if option not in found]
        for sub in (action.choices or {}).values() if isinstance(action, argparse._SubParsersAction) else ():
            found += [option for option in option_strings(sub) if option not in found]
    return found


def flag_hint(flag: str, parser: argparse.ArgumentParser) -> str:
    """`` (did you mean '--seeds'?)``: the flags ``flag`` abbreviates, else the closest one."""
    import difflib  # only for a message

    options = option_strings(parser)
    meant = [option for option in options if option.startswith(flag)] or difflib.get_close_matches(flag, options, 1)
    return f" (did you mean {' or '.join(repr(option) for option in meant)}?)" if meant else ""


def positive_int(text: str) -> int:
    """A count (``--trials``, ``--lr-find``, ``runs --last``): an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


class _Latest(str):
    """The value of ``--resume`` / ``--test-only`` given alone: ``""`` (the latest), told apart
    from a ``''`` typed (argparse passes this constant through ``type`` too)."""


LATEST = _Latest("")


def task_id_value(text: str) -> str:
    """``--resume`` / ``--test-only`` value: not empty or blank (an unset ``$ID``); the option
    alone, without a value, is what means "the latest"."""
    if text is not LATEST and not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: an empty task id (an unset variable?); give a task "
                                         "id or the start of one, or no value for the latest")
    return text


def dev_run_value(text: str) -> int | float:
    """``--dev-run`` value: an int (number of batches) or a float in (0, 1] (fraction)."""
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int or a float, got {text!r}") from None
        if not 0 < value <= 1:
            raise argparse.ArgumentTypeError(f"a fraction must be in (0, 1], got {text}")
        return value
    if value < 1:
        raise argparse.ArgumentTypeError(f"a number of batches must be at least 1, got {text}")
    return value


#: The most runs one ``--seeds`` starts: each seed is a whole run (100,000 were accepted).
MAX_SEEDS = 100


def seeds_value(text: str) -> list[int] | int | More:
    """``--seeds`` value: seeds separated by commas (``0,1,2``; one seed: ``7,``), a number of
    seeds to draw (``5``), or ``+3``: three more for the group already there; at most ``MAX_SEEDS``."""
    if text.startswith("+"):
        if not text[1:].isdigit() or not 0 < int(text[1:]) <= MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"expected a count of seeds to add from +1 to +{MAX_SEEDS}, got {text!r}")
        return More(int(text[1:]))
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            seeds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2 or a count like 5, got {text!r}") from None
    if isinstance(seeds, int) and seeds < 1 or isinstance(seeds, list) and not seeds:
        raise argparse.ArgumentTypeError(f"at least one seed, got {text!r}")
    if isinstance(seeds, list) and (len(set(seeds)) != len(seeds) or not all(0 <= s < 2**32 for s in seeds)):
        raise argparse.ArgumentTypeError(f"seeds must be distinct ints in [0, 2**32), got {text!r}")
    count = seeds if isinstance(seeds, int) else len(seeds)
    if count > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_SEEDS} seeds (each one is a whole run), got {count}")
    return seeds


def devices_value(text: str) -> int | str | list[int]:
    """``--devices`` value: an int, ``auto``, or a comma-separated list of device indices."""
    if "," in text:
        try:
            return [int(part) for part in text.split(",") if part]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected device indices like 0,1, got {text!r}") from None
    try:
        return int(text)
    except ValueError:
        return text


class ShowVersion(argparse.Action):
    """``--version``: print ``<command> <torch-lab's version>`` and exit 0 (looked up only then)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print torch-lab's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        import torch_lab

        print(f"{parser.prog} (torch-lab) {torch_lab.__version__}")
        parser.exit()


def _common(parser: argparse.ArgumentParser, build: Callable[[], argparse.ArgumentParser]) -> None:
    """The options ``train`` and ``infer`` share; ``build`` makes a fresh parser of the command
    (for ``--print-completion``)."""
    parser.add_argument("--offline", action="store_true",
                        help="use ClearML's offline mode (a local session zip to import later)")
    parser.add_argument("--verbose", action="store_true",
                        help="also show what ClearML, Lightning and warnings print (console.log has it all)")
    parser.add_argument("--debug", action="store_true",
                        help="verbose logging, anomaly detection, tracebacks and a post-mortem debugger")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append",
                        default=[], help="override an hparams key, e.g. config.learning_rate=3e-3 "
                        "(value parsed as a Python literal); one KEY=VALUE per --set, repeat it "
                        "for more")
    parser.add_argument("--print-hparams", action="store_true",
                        help="print the resolved hparams (layering, --set, defaults) as JSON and exit")
    parser.add_argument("--version", action=ShowVersion)
    parser.add_argument("--print-completion", action=PrintCompletion, build=build,
                        default=argparse.SUPPRESS,
                        help="print the shell completion script (bash or zsh) and exit")


def train_parser() -> argparse.ArgumentParser:
    """``train``'s parser."""
    parser = Parser(
        prog="train", description="Train the experiment of an hparams script, tracked in ClearML.")
    parser.add_argument("hparams_paths", metavar="HPARAMS.py", nargs="+",
                        help="the hparams script(s) to run; several (or a quoted glob) run one "
                        "after another, each in its own process and task")
    parser.add_argument("--dev-run", type=dev_run_value, metavar="N|F",
                        help="one short epoch over N batches (int) or a fraction F (float) of them, "
                        "num_workers=0; named dev_... and tagged dev-run")
    parser.add_argument("--resume", nargs="?", const=LATEST, type=task_id_value, metavar="TASK_ID",
                        help="continue an unfinished run (that task's, or the latest of this hparams "
                        "file) in its own ClearML task and run directory, from its last checkpoint")
    parser.add_argument("--resume-other", action="store_true",
                        help="with --resume TASK_ID: resume it although it was run from another "
                        "hparams file (its recorded hparams, this file's code)")
    parser.add_argument("--test-only", nargs="?", const=LATEST, type=task_id_value, metavar="TASK_ID|CKPT",
                        help="no training: test that task's best (else last) checkpoint, or a .ckpt "
                        "file, on train_config's test_dataloaders")
    parser.add_argument("--devices", type=devices_value, metavar="N",
                        help="devices per node for pl.Trainer (sets trainer.init.devices), e.g. 2, "
                        "auto, or 0,1")
    parser.add_argument("--queue", metavar="NAME",
                        help="create the task here and enqueue it in ClearML queue NAME for an agent")
    parser.add_argument("--lr-find", nargs="?", const=0, type=positive_int, metavar="STEPS",
                        help="no training: Lightning's learning-rate range test over STEPS learning "
                        "rates (default 100); saves its plot and prints the --set to use")
    parser.add_argument("--parallel", action="store_true",
                        help="with several hparams files or --sweep: run them at once, one per GPU (or per CPU core)")
    parser.add_argument("--seeds", type=seeds_value, metavar="S,S,...|N|+N",
                        help="run each hparams file once per seed (0,1,2; or N drawn seeds), each run "
                        "its own task, tagged as one group; then mean ± std over the seeds; +N: N more "
                        "seeds for the group of runs with the same hparams")
    parser.add_argument("--sweep", metavar="SWEEP.py",
                        help="an Optuna study over --set keys (the dict 'sweep' in SWEEP.py), each "
                        "trial one run; the same command again continues it")
    parser.add_argument("--trials", type=positive_int, metavar="N",
                        help="with --sweep: run until N trials are done in all (overrides its 'trials')")
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                        help="with --sweep: start no trial after SECONDS; those running finish (overrides "
                        "its 'budget')")
    _slurm_options(parser)
    _common(parser, train_parser)
    return parser


def _slurm_options(parser: argparse.ArgumentParser) -> None:
    """``train --slurm`` and the job's resources (refused without ``--slurm``)."""
    group = parser.add_argument_group("SLURM", "submit the run(s) as a SLURM batch job instead of running them here")
    group.add_argument("--slurm", action="store_true",
                       help="write a job script (kept in <artifacts>/slurm/) that runs this command "
                       "under srun, requeued on pre-emption, submit it with sbatch, print the job id "
                       "and exit; several files or --seeds become one job array, a sweep one job")
    group.add_argument("--nodes", type=positive_int, metavar="N",
                       help="with --slurm: nodes per run (sets trainer.init.num_nodes when > 1)")
    group.add_argument("--gpus-per-node", type=positive_int, metavar="G",
                       help="with --slurm: GPUs per node, one task per GPU (sets --devices G)")
    group.add_argument("--time", metavar="HH:MM:SS",
                       help="with --slurm: the job's time limit (sbatch --time); torch-lab saves and "
                       "requeues the job 120 s before it")
    group.add_argument("--partition", metavar="P", help="with --slurm: the partition (sbatch --partition)")
    group.add_argument("--account", metavar="A", help="with --slurm: the account charged (sbatch --account)")
    group.add_argument("--sbatch-arg", dest="sbatch_args", metavar="OPTION", action="append", default=[],
                       help="with --slurm: one more sbatch option, written as given: "
                       "--sbatch-arg=--mem=4G (with '='); repeat it for more; wins over the above")
    group.add_argument("--max-parallel", type=positive_int, metavar="M",
                       help="with --slurm and a job array: at most M of its tasks at once (--array=0-K%%M)")


def infer_parser() -> argparse.ArgumentParser:
    """``infer``'s parser."""
    parser = Parser(
        prog="infer", description="Predict with the experiment of an hparams script, tracked in ClearML.")
    parser.add_argument("hparams_path", metavar="HPARAMS.py", help="the hparams script to use")
    parser.add_argument("extra_args", metavar="EXTRA", nargs="*",
                        help="strings passed to infer_config(hparams, *EXTRA)")
    _common(parser, infer_parser)
    return parser


def positive_float(text: str) -> float:
    """``--atol`` / ``--rtol`` value: a float >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


#: ``export-model --format`` values.
EXPORT_FORMATS = ("torchscript", "exported", "onnx")


def export_parser() -> argparse.ArgumentParser:
    """``export``'s parser."""
    parser = Parser(
        prog="export-model", description="Export a trained task's model (TorchScript, torch.export or ONNX), "
        "loaded back and checked against its checkpoint.")
    parser.add_argument("hparams_path", metavar="HPARAMS.py", help="the hparams script of the experiment")
    parser.add_argument("reference", metavar="TASK_ID|CKPT", help="a task id (or a unique prefix) or a .ckpt file")
    parser.add_argument("--format", default="torchscript", metavar="{torchscript,exported,onnx}",
                        help="torchscript (torch.jit), exported (torch.export, .pt2) or onnx (needs "
                        "the onnx extra); default torchscript")
    parser.add_argument("--out", metavar="PATH",
                        help="the file to write (default <export run>/export/model.<pt|pt2|onnx>); "
                        "never inside a run directory or the ClearML cache")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.add_argument("--checkpoint", choices=("best", "last"),
                        help="which checkpoint of the task (default best, else last)")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="a free batch dimension (checked on a batch of another size too)")
    parser.add_argument("--atol", type=positive_float, default=1e-5,
                        help="absolute tolerance of the check (default 1e-5)")
    parser.add_argument("--rtol", type=positive_float, default=1e-4,
                        help="relative tolerance of the check (default 1e-4)")
    _common(parser, export_parser)
    return parser
