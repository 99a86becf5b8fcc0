"""Checks that run before ``__main__.py`` is executed and before torch or Lightning are imported.

Executing an experiment's ``__main__.py`` imports torch and Lightning (seconds of CPU). What can be
seen without that is checked here, from source text parsed with :mod:`ast`: a syntax error, a
missing ``train_config`` / ``infer_config``, extra ``infer`` arguments that ``infer_config`` cannot
take, Trainer arguments that ``pl.Trainer`` does not have (read from Lightning's own source), and
an artifacts root that cannot hold run directories. Each check gives up silently when the source
is too dynamic to be sure; the runtime checks (``torch_lab.experiment``, ``torch_lab.launch.train``) still
run and report the same mistakes with the same messages, built by the functions below.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from torch_lab.errors import UserError, display_path
from torch_lab.errors import did_you_mean
from torch_lab.storage.run_dir import artifacts_root
from torch_lab.experiment.value_types import check_values, source_hints

#: Trainer arguments torch-lab sets itself.
OWNED_TRAINER_KEYS = ("logger", "callbacks", "enable_checkpointing", "default_root_dir")
#: Arguments of ``Trainer.fit`` / ``Trainer.predict`` that torch-lab passes.
PASSED_TRAINER_KEYS = ("model", "dataloaders", "train_dataloaders", "val_dataloaders", "datamodule")
#: The Trainer method behind each ``trainer`` block, as ``__qualname__`` spells it.
TRAINER_FUNCTIONS = {"init": "Trainer", "fit": "Trainer.fit", "predict": "Trainer.predict"}
#: Calls and statements that can bind module names out of ``ast``'s sight.
_DYNAMIC_CALLS = {"globals", "vars", "exec", "eval", "setattr", "__import__"}


# ---------------------------------------------------------------- messages (shared with runtime)


def syntax_error_message(path: Path, error: SyntaxError) -> str:
    """``<file>: syntax error at line N: <what>``."""
    return f"{display_path(path)}: syntax error at line {error.lineno}: {error.msg}"


def no_function_message(main_path: Path, name: str) -> str:
    """``__main__.py`` defines no ``name``."""
    return f"{display_path(main_path)}: no function '{name}' defined"


def infer_args_message(main_path: Path, signature: inspect.Signature, args: list[str]) -> str | None:
    """Why ``infer_config`` with ``signature`` cannot take ``(hparams, *args)``; None when it can."""
    try:
        signature.bind(None, *args)
    except TypeError:
        return (f"{display_path(main_path)}: infer_config{signature} takes different arguments "
                f"than the {len(args)} given after the hparams path: {args}")
    return None


def trainer_key_message(source: str, block: str, key: str, accepted: list[str]) -> str | None:
    """Why ``trainer.<block>.<key>`` is refused (``accepted``: the Trainer method's parameters,
    without ``self``); None when it is fine."""
    if key == "logger":
        return (f"{source}: trainer.{block}.logger is set by torch-lab; remove it (return your own "
                "Lightning loggers as train_config's 'loggers')")
    if key in OWNED_TRAINER_KEYS or key in PASSED_TRAINER_KEYS:
        return f"{source}: trainer.{block}.{key} is set by torch-lab; remove it"
    if key not in accepted:
        return (f"{source}: trainer.{block}.{key} is not an argument of "
                f"{TRAINER_FUNCTIONS[block]}{did_you_mean(key, accepted)}")
    return None


# ---------------------------------------------------------------- the static checks


@dataclass(frozen=True)
class Precheck:
    """What a command needs of an experiment: the config function it calls, ``infer``'s extra
    arguments, and the ``trainer`` blocks it passes to Lightning."""

    function: str  # "train_config" or "infer_config"
    infer_args: list[str] | None = None
    trainer_blocks: tuple[str, ...] = ()

    def __call__(self, hparams_path: Path, main_path: Path, hparams: dict[str, Any]) -> None:
        """Run every static check on a validated experiment, before its ``__main__.py`` runs."""
        check_main(main_path, self.function, self.infer_args)
        check_trainer_blocks(hparams, display_path(hparams_path), self.trainer_blocks)
        check_artifacts_root()


def check_artifacts_root() -> None:
    """Refuse an artifacts root that cannot be created or written, creating nothing."""
    root = artifacts_root().absolute()
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir():
        reason = f"{display_path(existing)} is not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        reason = f"no permission to write in {display_path(existing)}"
    else:
        return
    raise UserError(f"artifacts directory {display_path(root)}: cannot hold run directories "
                    f"({reason}); set TORCH_LAB_ARTIFACTS to a writable directory")


def check_main(main_path: Path, function: str, infer_args: list[str] | None = None) -> None:
    """Check ``__main__.py`` without executing it: it parses, binds ``function`` (a missing one is
    reported only when no dynamic binding is possible) and, for ``infer_config``, accepts
    ``infer_args`` when its signature can be read from the source."""
    source = main_path.read_bytes()
    try:
        tree = ast.parse(source, filename=str(main_path))
    except SyntaxError as error:
        raise UserError(syntax_error_message(main_path, error)) from None
    bindings = list(_bindings(tree, function))
    if not bindings and not _is_dynamic(tree):
        raise UserError(no_function_message(main_path, function))
    if infer_args is not None and len(bindings) == 1 and bindings[0] in tree.body:
        signature = _plain_signature(bindings[0], _postponed_annotations(tree))
        message = infer_args_message(main_path, signature, infer_args) if signature else None
        if message:
            raise UserError(message)


def check_trainer_blocks(hparams: dict[str, Any], source: str, blocks: tuple[str, ...]) -> None:
    """Check ``hparams["trainer"][block]`` against the Trainer method's parameters and type hints
    read from Lightning's source (the runtime check's messages, without importing Lightning);
    skipped when that source cannot be found or read."""
    for block in blocks:
        method = _trainer_method(block)
        if method is not None:
            kwargs = hparams["trainer"][block]
            refuse_trainer_keys(source, block, kwargs, _without_self(_parameter_names(method.args)))
            check_values(source, f"trainer.{block}", kwargs, source_hints(method, _trainer_module()[0]))


def refuse_trainer_keys(source: str, block: str, keys: Iterable[str], accepted: list[str]) -> None:
    """Raise the first ``trainer_key_message`` among ``keys`` of ``trainer.<block>``; shared by this
    static check and the runtime one (``torch_lab.launch.train``)."""
    for key in keys:
        message = trainer_key_message(source, block, key, accepted)
        if message:
            raise UserError(message)


def trainer_parameters(block: str) -> list[str] | None:
    """The parameter names (without ``self``) of the Trainer method behind ``block``, parsed from
    ``pytorch_lightning/trainer/trainer.py`` without importing Lightning; None if not found."""
    method = _trainer_method(block)
    return None if method is None else _without_self(_parameter_names(method.args))


def _without_self(names: list[str]) -> list[str]:
    return [name for name in names if name != "self"]


def _trainer_method(block: str) -> ast.FunctionDef | None:
    """The ``def`` of the Trainer method behind ``block``, parsed; None when not found."""
    method, (_, trainer) = "__init__" if block == "init" else block, _trainer_module()
    return next((item for item in (trainer.body if trainer else [])
                 if isinstance(item, ast.FunctionDef) and item.name == method), None)


@functools.lru_cache(maxsize=1)
def _trainer_module() -> tuple[ast.Module | None, ast.ClassDef | None]:
    """The installed Lightning's ``trainer.py`` and its ``class Trainer``, parsed; Nones when they
    cannot be found."""
    try:
        spec = importlib.util.find_spec("pytorch_lightning")
        folder = Path(next(iter(spec.submodule_search_locations or [])))
        tree = ast.parse((folder / "trainer" / "trainer.py").read_bytes())
    except (ImportError, AttributeError, StopIteration, OSError, SyntaxError, ValueError):
        return None, None
    return tree, next((node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Trainer"),
                      None)


# ---------------------------------------------------------------- reading the source


def _parameter_names(args: ast.arguments) -> list[str]:
    """Parameter names in ``inspect.signature`` order."""
    names = [a.arg for a in (*args.posonlyargs, *args.args)]
    names += [args.vararg.arg] if args.vararg else []
    names += [a.arg for a in args.kwonlyargs]
    return names + ([args.kwarg.arg] if args.kwarg else [])


def _module_scope(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node executed in module scope (function and class bodies excluded, their names kept)."""
    for child in ast.iter_child_nodes(tree):
        yield child
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            yield from _module_scope(child)


def _bindings(tree: ast.Module, name: str) -> Iterator[ast.AST]:
    """The module-scope nodes that bind ``name``."""
    for node in _module_scope(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = [node.name]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound = [node.id]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound = [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
            bound = [node.name]
        elif isinstance(node, ast.MatchMapping):
            bound = [node.rest]
        else:
            continue
        if name in bound:
            yield node


def _is_dynamic(tree: ast.Module) -> bool:
    """Whether names may be bound in ways ``_bindings`` cannot see (``import *``, ``global``,
    ``globals()``, ``exec``, ``setattr``, ...)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return True
        if isinstance(node, ast.Global):
            return True
        if isinstance(node, ast.Name) and node.id in _DYNAMIC_CALLS:
            return True
    return False


def _postponed_annotations(tree: ast.Module) -> bool:
    """Whether the module has ``from __future__ import annotations`` (annotations stay strings)."""
    return any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(a.name == "annotations" for a in node.names) for node in tree.body)


def _annotation(node: ast.expr | None) -> Any:
    """An annotation as ``inspect`` sees it under postponed evaluation: its source text."""
    return inspect.Parameter.empty if node is None else ast.unparse(node)


def _plain_signature(node: ast.AST, postponed: bool) -> inspect.Signature | None:
    """The signature of an undecorated ``def`` whose defaults are literals and whose annotations,
    if any, are postponed (strings), as ``inspect.signature`` would give it at run time; None for
    anything else."""
    if not isinstance(node, ast.FunctionDef) or node.decorator_list:
        return None
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs,
             *([args.vararg] if args.vararg else []), *([args.kwarg] if args.kwarg else [])]
    if not postponed and (any(a.annotation is not None for a in every) or node.returns is not None):
        return None
    try:
        defaults = [ast.literal_eval(d) for d in args.defaults]
        kw_defaults = [inspect.Parameter.empty if d is None else ast.literal_eval(d)
                       for d in args.kw_defaults]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    kind = inspect.Parameter
    positional = [(a, kind.POSITIONAL_ONLY) for a in args.posonlyargs]
    positional += [(a, kind.POSITIONAL_OR_KEYWORD) for a in args.args]
    padded = [kind.empty] * (len(positional) - len(defaults)) + defaults
    parameters = [kind(a.arg, k, default=d, annotation=_annotation(a.annotation))
                  for (a, k), d in zip(positional, padded)]
    if args.vararg:
        parameters.append(kind(args.vararg.arg, kind.VAR_POSITIONAL,
                               annotation=_annotation(args.vararg.annotation)))
    parameters += [kind(a.arg, kind.KEYWORD_ONLY, default=d, annotation=_annotation(a.annotation))
                   for a, d in zip(args.kwonlyargs, kw_defaults)]
    if args.kwarg:
        parameters.append(kind(args.kwarg.arg, kind.VAR_KEYWORD,
                               annotation=_annotation(args.kwarg.annotation)))
    return inspect.Signature(parameters, return_annotation=_annotation(node.returns))
