"""Input checks shared by every public entry point.

Each check raises an error whose message names the argument and what was expected, so a
student sees ``x: expected ... got ...`` instead of a traceback from deep inside torch: a
:class:`ArgumentTypeError` (a ``TypeError``) for an argument of the wrong type, a
``ValueError`` for a wrong value.

Two kinds of check:

* **structure** (type, dtype, shape): always on; they read only metadata.
* **values** (finite entries, pixels in ``[0, 1]``): they read the data, which costs a pass
  over it and a synchronisation, and stops ``torch.compile`` from tracing one graph. They are
  on by default and switchable, like ``torch.distributions``' ``validate_args``:
  :func:`set_validation` flips the module-level switch and :func:`validation` is a context
  manager that sets it for a block (e.g. a training loop whose pixels are in ``[0, 1)`` by
  construction).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor

_VALIDATE_VALUES = True


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type. A ``TypeError``; also a ``ValueError``, the class of
    every other bad argument, so that ``except ValueError`` catches all bad input."""


def set_validation(enabled: bool) -> None:
    """Turn the value checks (finite entries, ranges) on or off for the whole package."""
    global _VALIDATE_VALUES
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled: expected True or False, got {enabled!r}")
    _VALIDATE_VALUES = enabled


def validation_enabled() -> bool:
    """Whether the value checks are on (see :func:`set_validation`)."""
    return _VALIDATE_VALUES


@contextmanager
def validation(enabled: bool) -> Iterator[None]:
    """Context manager: value checks on (``True``) or off (``False``) inside the block.

    Example: ``with validation(False): loss = -model.log_prob(x).mean()``.
    """
    previous = _VALIDATE_VALUES
    set_validation(enabled)
    try:
        yield
    finally:
        set_validation(previous)


def check_tensor(
    value: object,
    name: str,
    *,
    event_shape: Sequence[int] | None = None,
    allow_nonfinite: bool = False,
) -> Tensor:
    """Check that ``value`` is a finite floating tensor of shape ``(batch, *event_shape)``.

    Args:
        value: the object to check.
        name: the argument name used in the error message.
        event_shape: expected trailing shape (without the batch dimension); ``None`` skips
            the shape check.
        allow_nonfinite: skip the NaN/Inf check (it is also skipped while the value checks
            are off, :func:`set_validation`).

    Returns:
        ``value`` unchanged, typed as a tensor.
    """
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating-point tensor (float32 or float64), got dtype "
            f"{value.dtype}; convert it with {name}.float() or {name}.double()"
        )
    if event_shape is not None:
        expected = tuple(event_shape)
        if value.dim() != len(expected) + 1 or tuple(value.shape[1:]) != expected:
            want = ", ".join(["batch", *map(str, expected)])
            raise ValueError(f"{name}: expected shape ({want}), got {tuple(value.shape)}")
    if not allow_nonfinite and _VALIDATE_VALUES and not bool(torch.isfinite(value).all()):
        n_bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name}: expected finite values, found {n_bad} NaN or Inf entries")
    return value


def check_unit_interval(value: Tensor, name: str, hint: str) -> Tensor:
    """Value check: every entry of ``value`` in ``[0, 1]`` (skipped while checks are off).

    ``hint`` completes the message, e.g. ``"scale the pixels first"``.
    """
    if _VALIDATE_VALUES and value.numel() and (bool((value < 0).any()) or bool((value > 1).any())):
        raise ValueError(
            f"{name}: expected values in [0, 1] ({hint}), got values in "
            f"[{float(value.min()):g}, {float(value.max()):g}]"
        )
    return value


def check_image_shape(shape: Sequence[int], name: str = "shape") -> tuple[int, int, int]:
    """``shape`` as three positive sizes ``(C, H, W)``: a sequence of integers (a string,
    a fraction or a bool is a type error, ``"128"`` would otherwise read as ``(1, 2, 8)``)."""
    if (
        isinstance(shape, (str, bytes))
        or not isinstance(shape, Sequence)
        or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in shape)
    ):
        raise ArgumentTypeError(f"{name}: expected (C, H, W), integers, got {shape!r}")
    dims = tuple(int(s) for s in shape)
    if len(dims) != 3 or min(dims) <= 0:
        raise ValueError(f"{name}: expected three positive sizes (C, H, W), got {shape!r}")
    return dims  # type: ignore[return-value]


def per_scale(
    value: object, name: str, n: int, minimum: int = 0, each: str = "scale but the last"
) -> list[int]:
    """``value`` (an int, or ``n`` of them: one per ``each``) as ``n`` ints ``>= minimum``.

    A string, a fraction, a bool or a sequence holding one is a type error (``"64"`` would
    otherwise split into digits); a count below ``minimum`` or ``len(value) != n`` a value error.
    """
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    values = [value] * n if whole else value
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f">= {minimum}")
    message = f"{name}: expected {what} or {n} of them (one per {each}), got {value!r}"
    if isinstance(value, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentTypeError(message)
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in values):
        raise ArgumentTypeError(message)
    if len(values) != n or any(v < minimum for v in values):
        raise ValueError(message)
    return [int(v) for v in values]


def check_positive_int(value: object, name: str) -> int:
    """Check that ``value`` is a positive integer (Python or numpy) and return it as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name}: expected a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_positive_float(value: object, name: str) -> float:
    """Check that ``value`` is a positive finite real number and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name}: expected a positive number, got {value!r}")
    value = float(value)
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return value


def parse_key_json(items: Sequence[str], allowed: set[str] | None, flag: str) -> dict[str, object]:
    """Command-line ``KEY=JSON`` items -> ``{KEY: value}``.

    Args:
        items: strings such as ``"hidden=[64, 64]"`` or ``'activation="relu"'``.
        allowed: the accepted keys (``None``: any key).
        flag: the option's name, e.g. ``"--set"``, used in the error messages.

    Raises:
        ValueError: naming ``flag`` when an item has no ``=``, an unknown key, or a value that
            is not JSON.
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or (allowed is not None and key not in allowed):
            keys = f" with KEY one of {sorted(allowed)}" if allowed is not None else ""
            raise ValueError(f"{flag}: expected KEY=JSON{keys}, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{flag}: the value of {key} is not JSON: {value!r}") from None
    return out


def check_generator(value: object, name: str = "generator") -> torch.Generator | None:
    """Check that ``value`` is ``None`` or a ``torch.Generator`` and return it."""
    if value is not None and not isinstance(value, torch.Generator):
        raise ArgumentTypeError(
            f"{name}: expected a torch.Generator (e.g. torch.Generator().manual_seed(0)) or "
            f"None, got {type(value).__name__}"
        )
    return value


def check_float_dtype(value: object, name: str = "dtype") -> torch.dtype:
    """Check that ``value`` is a floating-point ``torch.dtype`` and return it."""
    message = (
        f"{name}: expected a floating-point torch.dtype (torch.float32 or torch.float64), "
        f"got {value!r}"
    )
    if not isinstance(value, torch.dtype):
        raise ArgumentTypeError(message)
    if not value.is_floating_point:
        raise ValueError(message)
    return value


def check_nonnegative_int(value: object, name: str) -> int:
    """Check that ``value`` is an integer ``>= 0`` (Python or numpy) and return it as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name}: expected an integer >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)
