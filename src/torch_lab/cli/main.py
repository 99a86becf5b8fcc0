"""The console scripts ``train``, ``infer`` and ``export``: parse, dispatch (one run, several files, a sweep,
``--print-hparams``) and map the outcome to an exit code.

Parsing and ``--help`` import nothing heavy (what one path needs is imported on that path);
torch, Lightning and clearml load only for a run.
Exit codes: 0 success, 1 the run failed, 2 a user error (one line, no traceback unless
``--debug``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Callable

from torch_lab import console
from torch_lab.console.interval import progress_interval
from torch_lab.errors import UserError, did_you_mean
from torch_lab.signals import STOP_SIGNALS, STOPS, exit_at_once, ignore_at_exit
from torch_lab.cli.hparams_files import expand_paths
from torch_lab.children.jobs import GROUP_ENV, RESULT_ENV
from torch_lab.cli.parsers import EXPORT_FORMATS, export_parser, infer_parser, train_parser

if TYPE_CHECKING:
    from torch_lab.experiment.precheck import Precheck

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _post_mortem(error: BaseException) -> None:
    import pdb
    import traceback

    traceback.print_exception(error)
    pdb.post_mortem(error.__traceback__)


#: The signals that stopped the command before a run took them over (see ``GracefulStop``).
_signalled: list[int] = []
#: Shared with a run's ``GracefulStop``: a stop the run began is the same stop here.
_burst = STOPS


def _interrupt(signum: int, frame: Any) -> None:
    """Stop the command (exit 130) at a burst's first signal. The repeats pass: raised while the
    first is being handled, they could end the command with a traceback (not seen here)."""
    if _burst.repeats():
        return
    _signalled.append(signum)
    raise KeyboardInterrupt


def _main(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse ``argv``, run the command named by ``parser.prog`` and map the outcome to an exit
    code. From the start, SIGTERM stops the command as Ctrl-C (SIGINT) does: exit 130. Once the
    command is done, everything is written: a signal ends the process at once with 130, and the
    last exit handler ignores them (Python would restore their default: death by the signal)."""
    atexit.unregister(ignore_at_exit)  # once (a test may call this again)
    atexit.register(ignore_at_exit)  # registered first (ClearML's, Lightning's come later): run last
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    try:
        code = _command(parser, argv)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr, flush=True)
        code = EXIT_INTERRUPTED
    for signum in STOP_SIGNALS:
        signal.signal(signum, exit_at_once)
    return code


def _command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    prog = parser.prog
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_intermixed_args(argv)
    console.install(verbose=args.verbose, debug=args.debug)
    if getattr(args, "offline", False):
        # ClearML's own switch: nothing (a checkpoint looked up by task id included) reaches the
        # server, even before the task's tracking is set up.
        os.environ["CLEARML_OFFLINE_MODE"] = "1"
    try:
        progress_interval()  # the environment first: not after an hour of training
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if prog == "train":
        try:
            paths = expand_paths(args.hparams_paths)
        except UserError as error:
            parser.error(str(error))
        if (args.trials is not None or args.timeout is not None) and not args.sweep:
            parser.error(f"--{'trials' if args.trials is not None else 'timeout'} needs --sweep")
        if args.sweep and args.seeds is not None:
            parser.error(f"--sweep with --seeds: a sweep over seeds takes them from {args.sweep} "
                         '(e.g. "seeds": [0, 1]), so that they belong to its study')
        from torch_lab.children.sbatch import check_options

        check_options(parser, args)
        if args.print_hparams:
            from torch_lab.cli.print_hparams import print_hparams

            return print_hparams(prog, paths, args.overrides, args.sweep, args.seeds)
        if args.slurm:
            from torch_lab.cli.slurm_submit import submit

            _refuse_combinations(parser, args, paths)
            return submit(parser, args, paths, _precheck)
        if args.sweep or args.seeds is not None or len(paths) > 1:
            return _run_children(parser, args, paths)
        args.hparams_path = paths[0]
    elif args.print_hparams:
        from torch_lab.cli.print_hparams import print_hparams

        return print_hparams(prog, [args.hparams_path], args.overrides)
    outcome: dict = {"status": "failed", "task_id": None}
    try:
        code = _run(prog, args, outcome)
    finally:
        # Reported by rank zero only (the other ranks of a multi-process run inherit the variable).
        if os.environ.get(RESULT_ENV) and os.environ.get("LOCAL_RANK", "0") == "0":
            with open(os.environ[RESULT_ENV], "w") as handle:
                json.dump(outcome, handle, default=str)
    deadline = sys.modules.get("torch_lab.tracking.deadline")  # loaded only when a task was tracked
    if deadline is not None:
        deadline.exit_if_unreachable(code)
    return code


def _refuse_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace, paths: list[str]) -> None:
    """Exit 2 for what several files, ``--seeds`` or ``--sweep`` cannot be combined with."""
    if args.sweep and (len(paths) > 1 or args.resume is not None or args.test_only is not None):
        parser.error("--sweep takes a single hparams file, without --resume or --test-only")
    if args.seeds is not None and (args.resume is not None or args.test_only is not None or args.lr_find is not None):
        parser.error("--seeds runs training: not with --resume, --test-only or --lr-find")
    if not args.sweep and len(paths) > 1 and args.resume is not None:
        parser.error("--resume takes a single hparams file")


def _run_children(parser: argparse.ArgumentParser, args: argparse.Namespace, paths: list[str]) -> int:
    """``train`` with several files, ``--seeds`` or ``--sweep``: runs in child processes, whose
    arguments are built from ``args`` (see ``cli.child_args``)."""
    from torch_lab.cli.child_args import child_arguments, refuse_nested

    refuse_nested(parser)
    _refuse_combinations(parser, args, paths)
    if args.sweep:
        from torch_lab.sweep.command import run_sweep

        args.hparams_path = paths[0]
        return run_sweep(args)
    from torch_lab.children.several import run_many

    if args.queue:
        _check_queue(parser, args)
    if args.seeds is not None:
        try:
            return _run_seeds(paths, args, child_arguments(parser, args))
        except UserError as error:
            if args.debug:
                raise
            print(f"train: error: {error}", file=sys.stderr)
            return EXIT_USAGE
    child_args = child_arguments(parser, args)
    return run_many([(path, [path, *child_args]) for path in paths], args.parallel)


def _run_seeds(paths: list[str], args: argparse.Namespace, child_args: list[str]) -> int:
    """``train ... --seeds``: each file once per seed, one group, then the statistics."""
    from torch_lab.children import seeds
    from torch_lab.children.several import run_many

    chosen, group = seeds.announce(paths, args.seeds, args.overrides, args.devices)
    return run_many(seeds.jobs(paths, chosen, child_args), args.parallel, {GROUP_ENV: group}, seeds.summary)


def _check_queue(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--queue`` with runs in children: offline, each child would fail in turn; once, here."""
    from torch_lab.tracking import task as tracking

    if args.offline or tracking.offline_by_environment() or not tracking.is_configured():
        parser.error(f"--queue {args.queue}: a ClearML agent needs a ClearML server, and these runs are "
                     "offline (--offline, or no ClearML configuration)")


def _precheck(prog: str, args: argparse.Namespace) -> Precheck:
    """The static checks of the command: train_config (and its Trainer blocks) for ``train``, or
    infer_config with the extra arguments for ``infer``. A resumed run uses its recorded
    hparams, so their Trainer blocks are left to the runtime check."""
    from torch_lab.experiment.precheck import Precheck

    if prog == "infer":
        return Precheck("infer_config", args.extra_args, ("init", "predict"))
    if prog == "export-model":
        return Precheck("train_config")
    if args.resume is not None:
        return Precheck("train_config")
    return Precheck("train_config", None, ("init",) if args.test_only is not None else ("init", "fit"))


def _run(prog: str, args: argparse.Namespace, outcome: dict) -> int:
    """Run the command; fill ``outcome`` (status, task id, best metric, error) for a parent
    ``train`` of several files."""
    from torch_lab.errors import RunFailed, UserError, failure_message

    try:
        if args.debug:
            import torch

            torch.autograd.set_detect_anomaly(True)
        if prog == "export-model" and args.format not in EXPORT_FORMATS:  # one line, before torch loads
            hint = did_you_mean(args.format, EXPORT_FORMATS).replace("valid keys: ", "choose from ")
            raise UserError(f"--format {args.format}: unknown format{hint}")
        from torch_lab.experiment import load_experiment

        experiment = load_experiment(args.hparams_path, args.overrides, _precheck(prog, args))
        command, options = _command_of(prog, args)  # the heavy imports, once the experiment is sound
        if getattr(options, "queue", None):
            outcome["status"] = "enqueued"  # enqueueing ends the process inside ClearML
        run = command(experiment, options)
        outcome.update({key: run.record.get(key) for key in ("task_id", "status", "best", "metrics")})
        return EXIT_OK
    except UserError as error:
        if _signalled:  # the signal broke what it interrupted (e.g. an import): not the user's mistake
            outcome.update(status="interrupted", exit_code=EXIT_INTERRUPTED)
            raise KeyboardInterrupt from error
        if args.debug:
            _post_mortem(error)
        outcome.update(status="failed", error=str(error), exit_code=EXIT_USAGE)
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as error:
        print(f"{prog}: interrupted", file=sys.stderr)
        outcome.update(status="interrupted", exit_code=EXIT_INTERRUPTED, task_id=getattr(error, "task_id", None))
        return EXIT_INTERRUPTED
    except RunFailed as error:
        if args.debug:
            _post_mortem(error.__cause__ or error)
        print(f"{prog}: run failed: {error} (traceback: {error.traceback_path})", file=sys.stderr)
        outcome.update(status="failed", error=str(error), exit_code=EXIT_FAILED,
                       task_id=json.loads((error.traceback_path.parent / "run.json").read_text())["task_id"])
        return EXIT_FAILED
    except Exception as error:
        if _signalled:
            outcome.update(status="interrupted", exit_code=EXIT_INTERRUPTED)
            raise KeyboardInterrupt from error
        if args.debug:
            _post_mortem(error)
        print(f"{prog}: failed: {failure_message(error)} (--debug shows the traceback)", file=sys.stderr)
        outcome.update(status="failed", error=failure_message(error), exit_code=EXIT_FAILED)
        return EXIT_FAILED


def _command_of(prog: str, args: argparse.Namespace) -> tuple[Callable, Any]:
    """The function running ``prog`` and its options."""
    if prog == "export-model":
        from torch_lab.launch.export import ExportOptions, export

        return export, ExportOptions(args.reference, args.format, args.out, args.checkpoint,
                                     args.dynamic_batch, args.atol, args.rtol, args.offline, args.force,
                                     tuple(args.overrides))
    from torch_lab.launch.infer import infer
    from torch_lab.launch.options import RunOptions
    from torch_lab.launch.train import train

    options = RunOptions(
        offline=args.offline,
        dev_run=getattr(args, "dev_run", None),
        extra_args=getattr(args, "extra_args", []),
        resume=getattr(args, "resume", None),
        resume_other=getattr(args, "resume_other", False),
        overrides=args.overrides,
        devices=getattr(args, "devices", None),
        queue=getattr(args, "queue", None),
        test_only=getattr(args, "test_only", None),
        lr_find=getattr(args, "lr_find", None),
    )
    return (train if prog == "train" else infer), options


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``train``."""
    return _main(train_parser(), argv)


def infer_main(argv: list[str] | None = None) -> int:
    """Entry point of ``infer``."""
    return _main(infer_parser(), argv)


def export_main(argv: list[str] | None = None) -> int:
    """Entry point of ``export``."""
    return _main(export_parser(), argv)
