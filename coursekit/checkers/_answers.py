"""Reading and comparing a student's answer (the checking policy's points 1 and 2).

A number may be a Python float, a 0-d tensor or a numpy scalar; an array a tensor or a numpy
array, in any float dtype, unless the exercise text fixes it (:func:`as_float`,
:func:`as_tensor`). Whether an answer is right is :func:`matches`: a relative error sized to
what the exercise teaches; :func:`close` diagnoses which wrong formula an answer is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from coursekit.checkers._hints import Hint, one_line

#: the default relative tolerance of :func:`matches`: float32 arithmetic (about 6e-8 per
#: operation, 1e-6 after a few dozen) passes, an O(1) conceptual error never does.
RTOL: float = 1e-5


#: the relative tolerance of ``matches(..., float64=True)``, where float64 is the point.
RTOL_FLOAT64: float = 1e-10


def as_float(value: Any, what: str = "your answer") -> float:
    """A Python float from a real number, a 0-d/1-element tensor or numpy array; Hint
    otherwise (policy 1: any float dtype is accepted).

    Strings, complex values, ``None``, booleans and integers too large for a float get a
    hint.
    """
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise Hint(f"{what} should be a number, got {value!r}")
    if isinstance(value, (str, bytes)):
        raise Hint(f"{what} should be a number, not a string ({one_line(repr(value), 60)})")
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise Hint(
                f"{what} should be a single number, got a tensor of shape {tuple(value.shape)}"
            )
        if value.is_complex():
            raise Hint(f"{what} should be a real number, got a complex tensor")
        if value.dtype == torch.bool:
            raise Hint(f"{what} should be a number, got a boolean tensor")
        return float(value.detach().to(torch.float64))
    if isinstance(value, complex) or _is_complex_array(value):
        raise Hint(f"{what} should be a real number, got the complex value {value!r}")
    if isinstance(value, int):
        if abs(value).bit_length() > 1023:
            digits = int(abs(value).bit_length() * math.log10(2))
            raise Hint(
                f"{what} is an integer of about {digits + 1} digits, too large for a float "
                "(the largest is about 1.8e308)"
            )
        return float(value)
    if isinstance(value, np.ndarray) and value.size != 1:
        raise Hint(f"{what} should be a single number, got an array of shape {value.shape}")
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind not in "fiu":
        raise Hint(f"{what} should be a number, got a numpy {value.dtype} value")
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise Hint(f"{what} should be a number, got {type(value).__name__}") from None
    except Exception as err:  # noqa: BLE001 - an exotic object whose __float__ fails
        raise Hint(f"{what} could not be read as a number ({type(err).__name__})") from None
    return out


def _is_complex_array(value: Any) -> bool:
    try:
        return bool(np.iscomplexobj(value))
    except Exception:  # noqa: BLE001 - not array-like
        return False


def as_tensor(
    value: Any,
    shape: tuple[int, ...],
    what: str = "your function",
    numpy: bool = True,
) -> Tensor:
    """Check that ``value`` is a real array of ``shape``; return it as a detached float64
    tensor.

    Policy 1: a torch tensor or (with ``numpy``, the default) a numpy array, of any real
    dtype. ``numpy=False`` where the exercise text says "return a tensor" (e.g. because the
    result must carry gradients).
    """
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Tensor):
        raise Hint(f"{what} returned a pair; return only the tensor")
    if numpy and isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiub":
            raise Hint(f"{what} returned a numpy array of {value.dtype}; expected real numbers")
        value = torch.from_numpy(np.array(value, dtype=np.float64))
    if not isinstance(value, Tensor):
        kinds = "a torch.Tensor or a numpy array" if numpy else "a torch.Tensor"
        raise Hint(f"{what} should return {kinds}, got {type(value).__name__}")
    if value.is_complex():
        raise Hint(f"{what} returned a complex tensor ({value.dtype}); expected real values")
    if tuple(value.shape) != tuple(shape):
        raise Hint(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value.detach().to(torch.float64)


def as_pair(value: Any, what: str = "your function") -> tuple[Any, Any]:
    """Unpack a ``(output, log_det)`` pair or give a hint."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Hint(f"{what} should return a pair (output, log_det), got {type(value).__name__}")
    return value[0], value[1]


#: the smallest relative tolerance :func:`close` applies, whatever a check asks: a right
#: formula computed with a float32 constant or idiom (``torch.tensor(256.)``,
#: ``.float().mean().item()``, a float32 ``log 2π``) is right to about 1e-7 relative, and
#: every conceptual mistake the exercises test (a missing Jacobian term, a sign, a factor,
#: h instead of h², n instead of n − 1 on the sizes used) is off by far more.
RTOL_FLOOR = 2e-6


def close(a: Tensor | float, b: Tensor | float, rtol: float = 1e-7, atol: float = 1e-9) -> bool:
    """``torch.allclose`` for tensors or floats (NaN never close), with a relative tolerance
    of at least :data:`RTOL_FLOOR`. For diagnosing a wrong answer (which wrong formula it
    is); whether an answer is right is :func:`matches`."""
    rtol = max(rtol, RTOL_FLOOR)
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a_t = torch.as_tensor(a, dtype=torch.float64)
        b_t = torch.as_tensor(b, dtype=torch.float64)
        return a_t.shape == b_t.shape and bool(torch.allclose(a_t, b_t, rtol=rtol, atol=atol))
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)


def relative_error(got: Tensor | float, want: Tensor | float, scale: float | None = None) -> float:
    """``max |got − want| / (|want| + scale)`` elementwise (inf on a NaN or a shape mismatch).

    ``scale`` keeps the error relative near a zero of ``want``: by default the root mean
    square of ``want`` for an array (the size of the answer as a whole) and 0 for a number.
    """
    g = torch.as_tensor(got, dtype=torch.float64)
    w = torch.as_tensor(want, dtype=torch.float64)
    if g.shape != w.shape:
        return math.inf
    if g.numel() == 0:
        return 0.0
    finite = torch.isfinite(w)
    if not torch.equal(torch.isfinite(g), finite) or not torch.equal(g[~finite], w[~finite]):
        return math.inf
    g, w = g[finite], w[finite]
    if g.numel() == 0:
        return 0.0
    if scale is None:
        scale = float(w.pow(2).mean().sqrt()) if w.numel() > 1 else 0.0
    denominator = w.abs() + max(scale, 1e-300)
    return float(((g - w).abs() / denominator).max())


def matches(
    got: Tensor | float,
    want: Tensor | float,
    rtol: float = RTOL,
    float64: bool = False,
    scale: float | None = None,
    what: str = "your answer",
) -> bool:
    """Whether ``got`` is the right answer ``want`` (policy 2): relative error
    (:func:`relative_error`) at most ``rtol``.

    With ``float64`` (an exercise whose point needs float64 precision) the bound is
    :data:`RTOL_FLOAT64`, and an answer right only to float32 precision raises the
    :class:`Hint` "right to 1e-7: a float32 value entered, compute in float64".
    """
    err = relative_error(got, want, scale)
    if not float64:
        return err <= rtol
    if err <= RTOL_FLOAT64:
        return True
    if err <= rtol:
        raise Hint(
            f"{what} is right to {err:.0e}: a float32 value entered, compute in float64 "
            "(avoid .float(), dtype=torch.float32 and float32 constants such as "
            "torch.tensor(2.0); the inputs are float64)"
        )
    return False


def fmt(x: float) -> str:
    """A short representation of a number for messages."""
    return f"{x:.4g}"
