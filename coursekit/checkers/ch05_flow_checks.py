"""Exercise 5.6, steps 1 and 2 of the checker: is the student's flow an exact bijection?

``build_flow(seed)`` must return a ``torch.nn.Module`` on ``R²`` with ``flow(x) -> (z,
log_det)`` and ``flow.inverse(z) -> (x, log_det)``. In float64 with random weights,
:func:`check_exact_flow` asks ``inverse(forward(x)) = x`` and cancelling log-dets (≤ 1e-10),
the log-det equal to autograd's ``log|det J|`` (eq. 12–13), inputs left unchanged, and every
coordinate transformed by some layer (alternating masks). :func:`student_log_prob` is the
density (14) of such a flow, used by the training checks of :mod:`coursekit.checkers.ch05_train`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from coursekit.checkers._answers import as_pair, fmt
from coursekit.checkers._common import call
from coursekit.checkers._hints import Hint
from coursekit.flows import standard_normal_log_prob

_WHERE_MASKS = "see notebook 04, section 'Why the masks must alternate'"
_WHERE_LAYER = "see notebook 04, section 'The affine coupling layer'"


def student_log_prob(flow: nn.Module, x: Tensor, what: str = "your flow") -> Tensor:
    z, log_det = as_pair(call(flow, x), what)
    if not isinstance(z, Tensor) or z.shape != x.shape:
        raise Hint(f"{what}(x) should return z with the shape of x, {tuple(x.shape)}")
    if not isinstance(log_det, Tensor) or log_det.shape != (x.shape[0],):
        raise Hint(f"{what}(x) should return a log_det of shape (batch,) = ({x.shape[0]},)")
    return standard_normal_log_prob(z) + log_det


class StudentDensity(nn.Module):
    """``log p_θ(x) = log N(f(x)) + log|det J_f(x)|`` (eq. 14) of the student's flow."""

    def __init__(self, flow: nn.Module):
        super().__init__()
        self.flow = flow

    def log_prob(self, x: Tensor) -> Tensor:
        return student_log_prob(self.flow, x)


def build_student_flow(build_flow: Callable, seed: int) -> nn.Module:
    flow = call(build_flow, seed)
    if not isinstance(flow, nn.Module):
        raise Hint(f"build_flow(seed) should return a torch.nn.Module, got {type(flow).__name__}")
    if not list(flow.parameters()):
        raise Hint("build_flow(seed) returned a flow without trainable parameters")
    if not callable(getattr(flow, "inverse", None)):
        raise Hint("your flow needs an inverse(z) method returning (x, log_det)")
    return flow


def check_exact_flow(build_flow: Callable) -> None:
    """Step 1 and 2: exact inverse, log-det = autograd, no in-place change, alternation."""
    flow = build_student_flow(build_flow, 1).double()
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    x = torch.randn(64, 2, generator=g, dtype=torch.float64)
    x_copy = x.clone()
    with torch.no_grad():
        z, ld = as_pair(call(flow, x), "your flow")
        if not torch.equal(x, x_copy):
            raise Hint(f"your flow modified its input x in place: work on a copy ({_WHERE_LAYER})")
        if not isinstance(z, Tensor) or z.shape != x.shape:
            raise Hint("flow(x) should return z with the shape of x")
        if not isinstance(ld, Tensor) or ld.shape != (64,):
            raise Hint("flow(x) should return a log_det of shape (batch,)")
        z_copy = z.clone()
        x_back, ld_inv = as_pair(call(flow.inverse, z), "your flow.inverse")
        if not torch.equal(z, z_copy):
            raise Hint(
                f"flow.inverse modified its input z in place: work on a copy ({_WHERE_LAYER})"
            )
        if not isinstance(x_back, Tensor) or x_back.shape != x.shape:
            raise Hint("flow.inverse(z) should return x with the shape of z")
    err = float((x_back - x).abs().max())
    if not err <= 1e-10:
        raise Hint(
            f"inverse(forward(x)) differs from x by {fmt(err)} in float64 (bar 1e-10): run the "
            f"inverse layers in reverse order, each undoing its forward ({_WHERE_LAYER})"
        )
    if not float((ld + ld_inv).abs().max()) <= 1e-10:
        raise Hint(
            "the log-dets of forward and inverse should cancel: inverse returns −Σ s "
            f"({_WHERE_LAYER})"
        )
    moved = (z - x).abs().amax(dim=0)
    if bool((moved == 0).any()):
        j = int(torch.nonzero(moved == 0)[0]) + 1
        raise Hint(
            f"coordinate x_{j} is never transformed by any layer: the masks must alternate "
            f"([1, 0], [0, 1], …) ({_WHERE_MASKS})"
        )
    x_small = x[:8].clone().requires_grad_(True)
    z_small, ld_small = flow(x_small)
    rows = [
        torch.autograd.grad(z_small[:, i].sum(), x_small, retain_graph=True)[0] for i in range(2)
    ]
    jac = torch.stack(rows, dim=1)  # (batch, 2, 2)
    want = torch.linalg.slogdet(jac).logabsdet
    if not float((ld_small.detach() - want).abs().max()) <= 1e-8:
        raise Hint(
            "the log_det returned by your flow is not log|det ∂z/∂x|: sum every layer's Σ s "
            f"(eq 12–13) ({_WHERE_LAYER})"
        )
