"""Checkers for chapter 4's structure questions: which coordinates a stack of coupling layers
never transforms (4.4, why the masks alternate) and the structural zeros of one layer's
Jacobian (4.5, slide CALCUL DU JACOBIEN (1 COUCHE))."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from coursekit.checkers._answers import as_float
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.flows import AffineCoupling


def mask_stacks() -> list[Tensor]:
    """The stacks of masks of exercise 4.4: (n_layers, d) bool tensors, True = kept."""
    t, f = True, False
    return [
        torch.tensor([[t, t, f, f], [f, f, t, t], [t, t, f, f]]),  # alternating halves
        torch.tensor([[t, t, f, f]] * 4),  # the same mask in every layer
        torch.tensor([[t, f, t, f, t, f], [t, t, f, f, t, t], [t, f, f, t, t, f]]),
        torch.tensor([[t, f], [t, f], [f, t]]),
        torch.tensor([[f, t, t], [f, t, f]]),
    ]


def measured_untouched(masks: Tensor, seed: int = 0) -> Tensor:
    """Coordinates that a stack of random float64 ``AffineCoupling`` layers with these masks
    leaves exactly unchanged on 256 random points; (d,) bool."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, masks.shape[1], generator=g, dtype=torch.float64)
    h = x
    with torch.no_grad():
        for mask in masks:
            layer = AffineCoupling(mask, hidden=(8,)).double()
            for p in layer.parameters():
                p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
            h, _ = layer(h)
    return (h == x).all(dim=0)


_WHERE_MASKS = "see notebook 04, section 'Why the masks must alternate'"


def _as_flags(value: object, d: int) -> Tensor:
    """The answer of 4.4 as a (d,) bool tensor: a tensor, numpy array or list of booleans, or
    of 0/1 values."""
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            value = torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError):
            raise Hint(f"return one True/False per coordinate, shape ({d},)") from None
    if not isinstance(value, Tensor) or value.is_complex():
        raise Hint(
            f"return a boolean tensor of shape ({d},), True = never transformed ({_WHERE_MASKS})"
        )
    if value.shape != (d,):
        raise Hint(
            f"for masks with d = {d} coordinates return shape ({d},), one answer per "
            f"coordinate (got {tuple(value.shape)})"
        )
    if value.dtype != torch.bool:
        if not bool(((value == 0) | (value == 1)).all()):
            raise Hint(f"return True/False (or 1/0) per coordinate ({_WHERE_MASKS})")
        value = value != 0
    return value.detach().clone()


@checker("4.4", "coordinates a stack never transforms")
def check_never_transformed(fn: Callable) -> str:
    """``fn(masks) -> (d,) bool``: True where no layer of the stack changes the coordinate."""
    outputs = []
    for masks in mask_stacks():
        out = _as_flags(call(fn, masks.clone()), masks.shape[1])
        outputs.append((masks, out))

    def every(rule: Callable[[Tensor], Tensor]) -> bool:
        return all(torch.equal(out, rule(masks)) for masks, out in outputs)

    if every(measured_untouched):
        return (
            "a coordinate is never transformed exactly when every layer keeps it — measured on "
            "random coupling layers; with alternating masks there is none."
        )
    if every(lambda m: m.any(dim=0)):
        raise Hint(
            "a coordinate is transformed as soon as ONE layer changes it (mask False "
            f"there); it is never transformed only if EVERY layer keeps it ({_WHERE_MASKS})"
        )
    if every(lambda m: ~measured_untouched(m)):
        raise Hint(
            f"you returned the coordinates that ARE transformed; return the others ({_WHERE_MASKS})"
        )
    if every(lambda m: m[0]):
        raise Hint(f"look at every layer of the stack, not only the first ({_WHERE_MASKS})")
    masks = next(m for m, out in outputs if not torch.equal(out, measured_untouched(m)))
    raise Hint(
        f"wrong for the masks {masks.int().tolist()}: a layer changes the coordinates where "
        f"its mask is False ({_WHERE_MASKS})"
    )


@checker("4.5", "zeros of a coupling layer's Jacobian")
def check_jacobian_zeros(fn: Callable[[], int]) -> str:
    """``fn()`` = entries of the 6×6 Jacobian (k = 2) that are 0 whatever s and t are."""
    got = as_float(call(fn))
    if got == 22:
        return (
            "22 = 2·4 (upper-right block) + 2 (off-diagonal of I_2) + 12 (off-diagonal of "
            "diag(exp s))."
        )
    if got == 8:
        raise Hint(
            "the zero upper-right block has 8 entries, but I_k and diag(exp(s)) have "
            "zeros off their diagonals too"
        )
    if got == 20:
        raise Hint("the identity block I_k has off-diagonal zeros too")
    if got in (30, 36 - 6):
        raise Hint("∂z2/∂x1 is a full block, not zero in general")
    raise Hint(
        "count block by block: J = [[I_k, 0], [∂z2/∂x1, diag(exp(s))]] with k = 2, d − k = 4"
    )
