"""Checkers for chapter 9, transport maps (beyond the slides): 9.4 the triangular
(Knothe–Rosenblatt) map of a correlated Gaussian, built from its marginal and conditional laws;
9.5 Hutchinson's estimate of the trace of a velocity field's Jacobian, with the cost it
promises (one vector–Jacobian product, counted by :class:`CountingField`).

Tolerances and hints as in :mod:`coursekit.checkers.ch09` (the checking policy).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from coursekit.checkers._answers import as_tensor, matches
from coursekit.checkers._common import call, checker
from coursekit.checkers._hints import Hint
from coursekit.checkers.ch09 import first_match, gen

_F64 = torch.float64


def _triangular_mistakes(x: Tensor, s1: float, s2: float, rho: float) -> list[tuple[Tensor, str]]:
    x1, x2 = x[:, 0], x[:, 1]
    cond_mean, cond_sd = rho * s2 / s1 * x1, s2 * math.sqrt(1 - rho**2)
    cov = torch.tensor([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]], dtype=_F64)
    evals, evecs = torch.linalg.eigh(cov)
    inv_sqrt = evecs @ torch.diag(evals.rsqrt()) @ evecs.T
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=_F64), 1.0)
    z1, z2 = x1 / s1, (x2 - cond_mean) / cond_sd
    conditional = "N(rho s2 / s1 x1, s2^2 (1 - rho^2))"
    return [
        (
            x @ inv_sqrt,
            "Σ^(-1/2) x whitens too, but it is not triangular: z1 must depend on x1 alone, "
            "z1 = x1 / s1, and z2 on (x1, x2)",
        ),
        (
            torch.stack([(x1 - rho * s1 / s2 * x2) / (s1 * math.sqrt(1 - rho**2)), x2 / s2], 1),
            "you conditioned x1 on x2: the lower-triangular map maps x1 by its MARGINAL CDF "
            "first, then x2 by its conditional CDF given x1",
        ),
        (
            torch.stack([normal.cdf(z1), normal.cdf(z2)], 1),
            "those are the CDF values F(x), uniform on (0, 1): apply Φ⁻¹ to get N(0, 1) "
            "(for a Gaussian, Φ⁻¹(F(x)) is the standardisation)",
        ),
        (
            torch.stack([z1, x2 / s2], 1),
            "z2 used the marginal of x2: it must use the CONDITIONAL law of x2 given x1, "
            + conditional,
        ),
        (
            torch.stack([z1, (x2 - cond_mean) / s2], 1),
            "the conditional standard deviation is s2 sqrt(1 - rho^2), not s2",
        ),
        (
            torch.stack([z1, (x2 - cond_mean) / cond_sd**2], 1),
            "divide by the conditional standard deviation s2 sqrt(1 - rho^2), not the variance",
        ),
        (
            torch.stack([z1, (x2 + cond_mean) / cond_sd], 1),
            f"sign of the conditional mean: x2 given x1 is {conditional}; subtract the mean",
        ),
    ]


@checker("9.4", "the triangular map of a correlated Gaussian")
def check_triangular_gaussian(fn: Callable) -> str:
    """``fn(x, s1, s2, rho)`` = ``T(x)`` for ``N(0, [[s1², ρ s1 s2], [ρ s1 s2, s2²]])``."""
    for seed, (s1, s2, rho) in enumerate(((1.0, 2.0, 0.6), (0.5, 1.5, -0.8), (2.0, 1.0, 0.0))):
        x = torch.randn(64, 2, generator=gen(seed + 20), dtype=_F64) * torch.tensor([s1, s2])
        z = as_tensor(call(fn, x.clone(), s1, s2, rho), (64, 2), "your map")
        z1 = x[:, 0] / s1
        cond_mean, cond_sd = rho * s2 / s1 * x[:, 0], s2 * math.sqrt(1 - rho**2)
        if matches(z, torch.stack([z1, (x[:, 1] - cond_mean) / cond_sd], dim=1)):
            continue
        first_match(z, _triangular_mistakes(x, s1, s2, rho))
        if not matches(z[:, 0], z1):
            if matches(z[:, 0], x[:, 0] / s1**2):
                raise Hint("z1 divides by the variance: x1 ~ N(0, s1^2), so z1 = x1 / s1")
            raise Hint("z1 = Φ⁻¹(F_1(x1)): for x1 ~ N(0, s1^2) that is x1 / s1")
        raise Hint("wrong z2: Φ⁻¹(F_2|1(x2 | x1)) with the conditional mean and sd of x2")
    return (
        "T(x) = (x1 / s1, (x2 - rho s2/s1 x1) / (s2 sqrt(1 - rho^2))): whitening by a "
        "Cholesky factor."
    )


def random_field(seed: int = 0) -> nn.Module:
    """A float64 MLP R³ → R³ (a velocity field at a fixed time)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).double()


class CountingField(nn.Module):
    """``v`` as the student gets it, counting what the estimate costs: ``calls`` evaluations
    and ``backward`` backward passes through ``v``'s output, ``full`` set when one backward
    pass carries a batch of cotangents (vmapped ``jacrev`` or ``jacobian(vectorize=True)``,
    the full Jacobian in one call)."""

    def __init__(self, field: nn.Module):
        super().__init__()
        self.field = field
        self.calls = self.backward = 0
        self.full = False

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        out = self.field(x)
        if out.requires_grad:
            level = _functorch_level(x)
            try:
                out.register_hook(lambda grad: self._count(grad, level))
            except RuntimeError:  # a transform that refuses hooks: this call is not counted
                pass
        return out

    def _count(self, grad: Tensor, level: int) -> None:
        self.backward += 1
        self.full = self.full or _batched_cotangent(grad, level)


def _functorch_level(t: Tensor) -> int:
    """The functorch transform level of ``t`` (-1 outside any transform)."""
    try:
        from torch._C._functorch import maybe_get_level

        return int(maybe_get_level(t))
    except Exception:  # noqa: BLE001 - a private API: without it only loops are counted
        return -1


def _batched_cotangent(grad: Tensor, level: int) -> bool:
    """Whether ``grad`` is a batch of cotangents vmapped inside the differentiation of an
    input at transform ``level`` (a full Jacobian in one backward pass)."""
    try:
        from torch._C._functorch import is_batchedtensor, is_legacy_batchedtensor

        if is_legacy_batchedtensor(grad):
            return True
        return bool(is_batchedtensor(grad)) and _functorch_level(grad) >= level
    except Exception:  # noqa: BLE001 - a private API: without it only loops are counted
        return False


@checker("9.5", "Hutchinson's trace estimator")
def check_hutchinson(fn: Callable) -> str:
    """``fn(v, x, eps)`` = ``epsᵀ (∂v/∂x) eps`` per row, (batch,), with one vector–Jacobian
    (or Jacobian–vector) product per evaluation of ``v``: a loop of backward passes or a
    vmapped Jacobian is the full Jacobian, d times the cost."""
    for seed in (0, 1):
        field = random_field(seed)
        v = CountingField(field)
        x = torch.randn(16, 3, generator=gen(seed + 30), dtype=_F64)
        eps = torch.randn(16, 3, generator=gen(seed + 31), dtype=_F64)
        got = as_tensor(call(fn, v, x.clone(), eps.clone()), (16,), "your estimate")
        jac = torch.stack([torch.autograd.functional.jacobian(field, xi) for xi in x])  # (16, 3, 3)
        want = torch.einsum("bi,bij,bj->b", eps, jac, eps)
        if matches(got, want):
            if v.full or v.backward > max(v.calls, 1):
                how = (
                    "a vectorised Jacobian (jacrev, jacobian(vectorize=True)) does one product "
                    "per coordinate"
                    if v.full
                    else f"{v.backward} backward passes through v for {v.calls} evaluation(s)"
                )
                raise Hint(
                    f"the value is right, but you built the full Jacobian ({how}): Hutchinson "
                    "needs ONE vector-Jacobian product per evaluation of v, "
                    "torch.autograd.grad(v(x), x, grad_outputs=eps), whatever the dimension"
                )
            continue
        with torch.no_grad():
            ones = torch.ones_like(eps)
            first_match(
                got,
                [
                    (
                        (eps * field(x)).sum(1),
                        "eps . v(x) has no derivative in it: use the Jacobian, eps^T (dv/dx) eps",
                    ),
                    (
                        torch.diagonal(jac, dim1=1, dim2=2).sum(1),
                        "that is the exact trace: the exercise asks for the one-vector "
                        "estimate eps^T (dv/dx) eps with the given eps",
                    ),
                    (
                        torch.einsum("bi,bij,bj->b", ones, jac, eps),
                        "grad_outputs must be eps: grad(v(x).sum(), x) gives 1^T (dv/dx), the "
                        "column sums, not eps^T (dv/dx)",
                    ),
                    (
                        torch.einsum("bi,bij,bj->b", eps, jac, ones),
                        "multiply u = eps^T (dv/dx) by eps before summing: sum(u * eps, 1), "
                        "not u.sum(1)",
                    ),
                    (want.sum().expand(16), "return one estimate per row (batch,), not their sum"),
                ],
            )
        raise Hint(
            "wrong value: u = eps^T (dv/dx) by one vector-Jacobian product, then sum(u * eps)"
        )
    return "eps^T (dv/dx) eps: unbiased for the trace when E[eps eps^T] = I, one backward pass."
