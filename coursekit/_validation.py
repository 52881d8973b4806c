"""Input checks shared by every public entry point.

Each check raises :class:`ValueError` whose message names the argument and what was
expected, so a student sees ``x: expected ... got ...`` instead of a traceback from deep
inside torch.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor


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
        allow_nonfinite: skip the NaN/Inf check.

    Returns:
        ``value`` unchanged, typed as a tensor.
    """
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
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
    if not allow_nonfinite and not bool(torch.isfinite(value).all()):
        n_bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name}: expected finite values, found {n_bad} NaN or Inf entries")
    return value


def check_positive_int(value: object, name: str) -> int:
    """Check that ``value`` is a positive integer (Python or numpy) and return it as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_positive_float(value: object, name: str) -> float:
    """Check that ``value`` is a positive finite real number and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
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
        raise ValueError(
            f"{name}: expected a torch.Generator (e.g. torch.Generator().manual_seed(0)) or "
            f"None, got {type(value).__name__}"
        )
    return value


def check_float_dtype(value: object, name: str = "dtype") -> torch.dtype:
    """Check that ``value`` is a floating-point ``torch.dtype`` and return it."""
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(
            f"{name}: expected a floating-point torch.dtype (torch.float32 or torch.float64), "
            f"got {value!r}"
        )
    return value


def check_nonnegative_int(value: object, name: str) -> int:
    """Check that ``value`` is an integer ``>= 0`` (Python or numpy) and return it as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


def check_real(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check that ``value`` is a finite real number in ``[low, high]`` and return it as a float.

    ``low_open`` / ``high_open`` exclude the bound itself; ``None`` leaves that side open.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    out = float(value)
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo_text = "-inf" if low is None else f"{low:g}"
    hi_text = "inf" if high is None else f"{high:g}"
    want = f"{left}{lo_text}, {hi_text}{right}"
    ok = math.isfinite(out)
    if ok and low is not None:
        ok = out > low if low_open else out >= low
    if ok and high is not None:
        ok = out < high if high_open else out <= high
    if not ok:
        raise ValueError(f"{name}: expected a finite number in {want}, got {value!r}")
    return out
