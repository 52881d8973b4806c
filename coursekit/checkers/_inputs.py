"""Inputs a student's function changed in place (the checking policy's point 4).

:func:`coursekit.checkers._common.call` snapshots every argument before the call and names the
first one changed afterwards (:func:`changed_input`); :func:`check_unchanged` is the same test
for a checker that compares by hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from coursekit.checkers._hints import Hint


def snapshot(value: Any) -> Any:
    """A private copy of what an in-place edit could change (None: nothing to watch)."""
    if isinstance(value, Tensor):
        return ("tensor", value.detach().clone(), value.requires_grad, value.grad)
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, torch.nn.Module):
        return ("module", {k: v.detach().clone() for k, v in value.state_dict().items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, len(value), [snapshot(v) for v in value], list(value))
    if isinstance(value, dict):
        return ("dict", dict(value), {k: snapshot(v) for k, v in value.items()})
    return None


def _same_tensor(a: Tensor, b: Any) -> bool:
    return (
        isinstance(b, Tensor)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b.detach())))
    )


def changed(snap: Any, value: Any) -> str | None:
    """The kind of object edited in place ("tensor", "list", …), or None if unchanged."""
    if snap is None:
        return None
    kind = snap[0]
    if kind == "tensor":
        _, copy, requires_grad, grad = snap
        if not _same_tensor(copy, value):
            return "tensor"
        if value.requires_grad != requires_grad and value.is_leaf:
            value.requires_grad_(requires_grad)  # allowed: undone for the checker
        if grad is None and value.grad is not None:
            value.grad = None
        return None
    if kind == "array":
        same = isinstance(value, np.ndarray) and value.shape == snap[1].shape
        return None if same and np.array_equal(value, snap[1], equal_nan=True) else "array"
    if kind == "module":
        now = value.state_dict()
        if now.keys() != snap[1].keys():
            return "module"
        if any(snap[1][k].dtype != now[k].dtype for k in now):
            return "module dtype"
        return None if all(_same_tensor(snap[1][k], now[k]) for k in now) else "module"
    if kind in ("list", "tuple"):
        _, length, items, originals = snap
        if len(value) != length or any(a is not b for a, b in zip(value, originals, strict=True)):
            return kind
        for item_snap, item in zip(items, value, strict=True):
            inner = changed(item_snap, item)
            if inner:
                return inner
        return None
    if kind == "dict":
        _, original, items = snap
        if value.keys() != original.keys() or any(value[k] is not original[k] for k in value):
            return "dict"
        for key, item_snap in items.items():
            inner = changed(item_snap, value[key])
            if inner:
                return inner
    return None


_COPY_ADVICE = {
    "tensor": "work on a copy ({name} = {name}.clone()) or use out-of-place operations "
    "(x = x - m, not x -= m; torch.sort, not .sort_())",
    "array": "work on a copy ({name} = {name}.copy()) or use out-of-place operations",
    "list": "work on a copy ({name} = list({name})); sorted() returns a new list, .sort(), "
    ".append() and item assignment change the caller's list",
    "tuple": "a tuple's items were changed in place; work on copies",
    "dict": "work on a copy ({name} = dict({name}))",
    "module": "a layer you are given must not be trained or edited: its parameters changed "
    "(use it as it is, under torch.no_grad() if you only evaluate it)",
    "module dtype": "its parameters changed dtype (.float(), .half() and .to(dtype) convert a "
    "module in place); keep it as given, in float64, and compute in float64",
}


def _parameter_names(fn: Callable[..., Any], n: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"argument {i + 1}" for i in range(n)]


def in_place_hint(name: str, kind: str) -> str:
    """The hint for an input ``name`` of kind ``kind`` (:func:`changed`) changed in place."""
    var = name if name.isidentifier() else "x"
    return f"your function changed its input {name} in place; " + _COPY_ADVICE[kind].format(
        name=var
    )


def changed_input(fn: Callable[..., Any], args: tuple, kwargs: dict, snaps: list) -> str | None:
    """The hint for the first argument of ``fn`` that differs from its snapshot, or None."""
    names = _parameter_names(fn, len(args)) + list(kwargs)
    for name, value, snap in zip(names, [*args, *kwargs.values()], snaps, strict=True):
        kind = changed(snap, value)
        if kind:
            return in_place_hint(name, kind)
    return None


def check_unchanged(before: Any, after: Any, name: str) -> None:
    """Raise :class:`Hint` when the student's function changed its input ``name`` in place.

    ``before`` is a private copy taken before the call, ``after`` the object that was passed.
    Tensors are compared exactly (NaNs in the same places count as equal), lists item by item.
    """
    kind = changed(snapshot(before), after)
    if kind:
        raise Hint(in_place_hint(name, kind))
