"""Check plain hparams values against the type hints of the functions they are passed to
(``pl.Trainer``, ``Trainer.fit``, ``Task.init``), so a wrong type is one line naming the key
before any task exists, not an assertion deep inside a run."""

from __future__ import annotations

import ast
import builtins
import collections.abc
import enum
import typing
from typing import Any, Callable

from torch_lab.errors import UserError

_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable, collections.abc.Collection)
_MAPPINGS = (dict, collections.abc.Mapping)


def matches(value: Any, hint: Any) -> bool:
    """Whether plain-data ``value`` fits ``hint``; hints that plain data cannot be checked
    against (type variables, forward references) accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, (typing.TypeVar, str, typing.ForwardRef)):
        return True
    if hint is type(None) or hint is None:
        return value is None
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return any(matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint) or value in [member.value for member in hint]
    if (origin or hint) in _SEQUENCES:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            return False
        return not args or all(matches(item, args[0]) for item in value)
    if (origin or hint) in _MAPPINGS:
        if not isinstance(value, dict):
            return False
        return len(args) != 2 or all(matches(item, args[1]) for item in value.values())
    if isinstance(origin or hint, type):
        return isinstance(value, origin or hint)
    return True


def hint_text(hint: Any) -> str:
    """``hint`` in words, e.g. ``int or None``, ``a list of str``, ``one of 'min', 'max'``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None) or hint is None:
        return "None"
    if origin is typing.Union:
        literals = [value for arg in args if typing.get_origin(arg) is typing.Literal
                    for value in typing.get_args(arg)]
        words = [hint_text(arg) for arg in args if typing.get_origin(arg) is not typing.Literal]
        if literals:
            words.insert(0, "one of " + ", ".join(repr(value) for value in literals))
        return " or ".join(dict.fromkeys(words))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(repr(member.value) for member in hint)
    if (origin or hint) in _SEQUENCES:
        return f"a list of {hint_text(args[0])}" if args else "a list"
    if (origin or hint) in _MAPPINGS:
        return "a dict"
    return getattr(hint, "__name__", str(hint))


def source_hints(function: ast.FunctionDef, module: ast.Module) -> dict[str, Any]:
    """The parameter hints of ``function`` (parsed from ``module``'s source, not imported) as
    ``typing.get_type_hints`` gives them, built only from builtins and names ``module`` imports
    from ``typing`` / ``collections.abc``; any other name (a class of the library, an alias) is
    ``Any``, so a hint is never stricter than the live one."""
    imported = {alias.asname or alias.name: getattr(typing if node.module == "typing" else collections.abc,
                                                    alias.name, Any)
                for node in module.body if isinstance(node, ast.ImportFrom)
                and node.module in ("typing", "collections.abc") for alias in node.names}

    def build(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):  # None, or a string: a forward reference
            return type(None) if node.value is None else Any
        if isinstance(node, ast.Name):
            return imported.get(node.id, getattr(builtins, node.id, Any))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return typing.Union[build(node.left), build(node.right)]
        if isinstance(node, ast.Subscript):
            origin = build(node.value)
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if origin is Any:
                return Any
            args = [item.value if origin is typing.Literal and isinstance(item, ast.Constant) else build(item)
                    for item in items]
            return origin[tuple(args)] if len(args) > 1 else origin[args[0]]
        return Any  # attributes, calls, strings (forward references): not checked

    every = [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
    hints = {}
    for arg in every:
        if arg.annotation is not None:
            try:
                hints[arg.arg] = build(arg.annotation)
            except (TypeError, ValueError):  # a subscript typing refuses: not checked
                hints[arg.arg] = Any
    return hints


def check_values(source: str, block: str, values: dict[str, Any], function: Callable | dict[str, Any]) -> None:
    """Raise a ``UserError`` for the first entry of ``values`` (the hparams block ``block``) that
    does not fit ``function``'s type hint for it (or the hint of that name in a dict of hints)."""
    try:
        hints = function if isinstance(function, dict) else typing.get_type_hints(
            function.__init__ if isinstance(function, type) else function)
    except Exception:  # hints that do not resolve: nothing to check against
        return
    for key, value in values.items():
        if key in hints and not matches(value, hints[key]):
            raise UserError(f"{source}: {block}.{key} must be {hint_text(hints[key])}, "
                            f"got {type(value).__name__} {value!r}")
