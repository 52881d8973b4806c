"""Checkers for chapter 3, change of variable in d > 1.

Slides: TRANSPORT DE MESURES (DIM. d > 1), eq. (11).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy import stats

from coursekit.checkers._common import (
    Hint,
    as_float,
    as_pair,
    as_tensor,
    call,
    checker,
    close,
    fmt,
)
from coursekit.checkers._inputs import check_unchanged

#: the linear map used in exercise 3.2
A_MATRIX = [[2.0, 1.0], [0.5, 1.5]]


def _points(n: int = 64, d: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@checker("3.1", "log|det J_f(x)| by autograd")
def check_log_abs_det_jacobian(fn: Callable) -> str:
    """``fn(f, x) = log|det J_f(x)|`` for each row of ``x`` (batch, d); returns (batch,)."""
    x = _points()
    a = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)  # det = -7
    cases = [
        (
            "a linear map with det < 0",
            lambda v: v @ a.T,
            torch.full((len(x),), math.log(7.0), dtype=torch.float64),
        ),
        (
            "f(x) = (x1·exp(x2), x2 − x1²)",
            lambda v: torch.stack([v[:, 0] * torch.exp(v[:, 1]), v[:, 1] - v[:, 0] ** 2], 1),
            x[:, 1] + torch.log1p(2 * x[:, 0] ** 2),
        ),
    ]
    for name, f, want in cases:
        got = call(fn, f, x.clone())
        if isinstance(got, torch.Tensor) and got.shape == (len(x), 2, 2):
            raise Hint(
                "you returned the Jacobian matrices; return log|det| per point, shape (batch,)"
            )
        got = as_tensor(got, (len(x),), "your log|det|")
        if close(got, want, rtol=1e-8, atol=1e-10):
            continue
        if bool(torch.isnan(got).any()):
            raise Hint(
                f"{name}: NaN — det J can be negative; take |det| before the log "
                "(torch.linalg.slogdet gives log|det| directly)"
            )
        if close(got, want.exp(), rtol=1e-8):
            raise Hint(f"{name}: you returned |det J|; return its logarithm")
        raise Hint(
            f"{name}: wrong log|det|; build the d×d Jacobian of f at each point "
            "(torch.autograd.functional.jacobian or torch.func.jacrev)"
        )
    return "log|det J_f| matches the analytic value for a linear and a nonlinear map."


@checker("3.2", "log-density of A X + b by eq (11)")
def check_log_density_linear(fn: Callable) -> str:
    """``fn(a, b, z) = log p_Z(z)`` for ``Z = A X + b``, ``X ~ N(0, I_d)``."""
    for a_list, b_list, seed in [
        (A_MATRIX, [1.0, -1.0], 1),
        ([[0.0, 2.0, 0.0], [-1.0, 0.0, 0.0], [0.3, 0.1, 0.5]], [0.0, 0.5, 2.0], 2),
    ]:
        a = torch.tensor(a_list, dtype=torch.float64)
        b = torch.tensor(b_list, dtype=torch.float64)
        d = len(b_list)
        z = 2 * _points(50, d, seed)
        got = as_tensor(call(fn, a.clone(), b.clone(), z.clone()), (len(z),), "your log-density")
        mvn = stats.multivariate_normal(b.numpy(), (a @ a.T).numpy())
        want = torch.as_tensor(mvn.logpdf(z.numpy()))
        if close(got, want, rtol=1e-8, atol=1e-10):
            continue
        logdet = float(torch.linalg.slogdet(a).logabsdet)
        diff = got - want
        if close(diff, torch.full_like(diff, 2 * logdet), rtol=1e-7, atol=1e-9):
            raise Hint(
                "off by 2·log|det A|: you multiplied by |det A| instead of dividing "
                "(the Jacobian of f⁻¹(z) = A⁻¹(z − b) is A⁻¹)"
            )
        if close(diff, torch.full_like(diff, logdet), rtol=1e-7, atol=1e-9):
            raise Hint("off by log|det A|: the Jacobian term of eq (11) is missing")
        if close(diff, diff[:1].expand_as(diff), rtol=1e-6, atol=1e-9):
            raise Hint(
                f"off by a constant {fmt(float(diff[0]))}: check the normalisation "
                "−(d/2)·log(2π) and the Jacobian term"
            )
        raise Hint(
            f"wrong log-density in d = {d}; compute x = A⁻¹(z − b), then log N(x; 0, I) "
            "+ log|det A⁻¹|"
        )
    return (
        "log p_Z matches scipy.stats.multivariate_normal(b, A Aᵀ) in 2-D and 3-D "
        "(a negative det included)."
    )


@checker("3.3", "density of the polar coordinates of a 2-D Gaussian")
def check_polar_density(fn: Callable) -> str:
    """``fn(r, theta) = p_{R,Θ}(r, θ)`` for the polar coordinates of ``X ~ N(0, I_2)``."""
    r = torch.linspace(0.05, 4.0, 40, dtype=torch.float64).repeat(5)
    theta = torch.linspace(0.1, 6.2, 5, dtype=torch.float64).repeat_interleave(40)
    got = as_tensor(call(fn, r.clone(), theta.clone()), tuple(r.shape), "your density")
    want = torch.as_tensor(stats.rayleigh.pdf(r.numpy())) / (2 * math.pi)
    if close(got, want, rtol=1e-8, atol=1e-12):
        return "p(r, θ) = r·exp(−r²/2)/(2π): R is Rayleigh, Θ uniform and independent."
    if close(got, want / r, rtol=1e-8):
        raise Hint("the Jacobian factor is missing: |det ∂(x1, x2)/∂(r, θ)| = r")
    if close(got, want / r**2, rtol=1e-8):
        raise Hint(
            "you divided by r; the inverse map (r, θ) ↦ (r cos θ, r sin θ) has "
            "|det J| = r, which MULTIPLIES p_X"
        )
    if close(got, want * 2 * math.pi, rtol=1e-8):
        raise Hint("off by a factor 2π: keep the normalisation 1/(2π) of N(0, I_2)")
    raise Hint(
        "does not match the Rayleigh × uniform density; apply eq (11) with "
        "f⁻¹(r, θ) = (r cos θ, r sin θ)"
    )


@checker("3.5", "integrating a 2-D density on a grid")
def check_integrate_grid(fn: Callable) -> str:
    """``fn(density, lo, hi, n)`` ≈ ∫∫ density over [lo, hi]² with an n × n midpoint grid."""
    gauss = lambda p: torch.exp(-0.5 * (p**2).sum(1)) / (2 * math.pi)
    cases = [
        ("a standard 2-D Gaussian on [−6, 6]²", gauss, -6.0, 6.0, 200, 1.0),
        (
            "the constant 1 on [0, 2]²",
            lambda p: torch.ones(p.shape[0], dtype=p.dtype),
            0.0,
            2.0,
            50,
            4.0,
        ),
        ("x1² on [0, 1]²", lambda p: p[:, 0] ** 2, 0.0, 1.0, 100, 1.0 / 3.0),
    ]
    for name, dens, lo, hi, n, want in cases:
        got = as_float(call(fn, dens, lo, hi, n), "your integral")
        if abs(got - want) <= 1e-3 * max(1.0, abs(want)):
            continue
        h2 = ((hi - lo) / n) ** 2
        if abs(got * h2 - want) <= 1e-3 * max(1.0, abs(want)):
            raise Hint(f"{name}: you summed the values; multiply by the cell area ((hi − lo)/n)²")
        raise Hint(f"{name}: got {fmt(got)}; the n × n cell centres are lo + (i + ½)·h")
    return "the midpoint rule gives 1 for the Gaussian, 4 and 1/3 for the test functions."


# --------------------------------------------------------------------------------------------
# 3.6: transform samples and their density together (eq. 11, the direction of sampling)
# --------------------------------------------------------------------------------------------

_A3 = [[1.5, 0.3, -0.4], [0.2, -0.8, 0.5], [0.7, 0.1, 1.1]]
_B3 = [1.0, -2.0, 0.5]


@checker("3.6", "push samples and their log-density through a map")
def check_transform_with_log_prob(fn: Callable) -> str:
    """``fn(f, log_p_x, x) -> (z, log_p_z)`` with ``z = f(x)`` and
    ``log p_Z(z) = log p_X(x) − log|det J_f(x)|`` (eq. 11 read in the other direction)."""
    see = "see notebook 03, section 2, 'A linear map of a Gaussian'"
    a = torch.tensor(_A3, dtype=torch.float64)
    b = torch.tensor(_B3, dtype=torch.float64)
    f = lambda t: t @ a.T + b
    log_p_x = lambda t: -0.5 * (t**2).sum(-1) - 1.5 * math.log(2 * math.pi)
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x_in = x.clone()
    out = call(fn, f, log_p_x, x_in)
    check_unchanged(x, x_in, "x")
    z, log_p_z = as_pair(out, "your function")
    z = as_tensor(z, (200, 3), "z")
    log_p_z = as_tensor(log_p_z, (200,), "log_p_z")
    if not close(z, f(x), rtol=1e-10, atol=1e-10):
        raise Hint(f"z should be f(x) ({see})")
    exact = stats.multivariate_normal(mean=b.numpy(), cov=(a @ a.T).numpy())
    want = torch.as_tensor(exact.logpdf(z.numpy()))
    log_det = math.log(abs(float(torch.linalg.det(a))))
    if close(log_p_z, want, rtol=1e-10, atol=1e-10):
        return "log p_Z(f(x)) = log p_X(x) − log|det J_f(x)| matches N(b, A Aᵀ) exactly."
    if close(log_p_z, want + 2 * log_det, rtol=1e-10, atol=1e-10):
        raise Hint(f"sign of the log-det: a map that stretches volumes LOWERS the density ({see})")
    if close(log_p_z, want + log_det, rtol=1e-10, atol=1e-10):
        raise Hint(f"the Jacobian term −log|det J_f(x)| is missing ({see})")
    if close(log_p_z, log_p_x(z) - log_det, rtol=1e-10, atol=1e-10) or close(
        log_p_z, log_p_x(z), rtol=1e-10, atol=1e-10
    ):
        raise Hint(f"evaluate log p_X at the input x, not at the output z ({see})")
    raise Hint(f"log_p_z does not match N(b, A Aᵀ) at z = A x + b ({see})")


# --------------------------------------------------------------------------------------------
# 3.4: the log-determinant of a triangular map from its diagonal
# --------------------------------------------------------------------------------------------


def _triangular_map(x: torch.Tensor) -> torch.Tensor:
    """Lower-triangular Jacobian with diagonal 2, exp(sin x1), −(1 + x1² + x2²)."""
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    return torch.stack(
        [2 * x1 + 1, x2 * torch.exp(torch.sin(x1)) + x1**2, -x3 * (1 + x1**2 + x2**2) + x1 * x2],
        dim=1,
    )


@checker("3.4", "log|det J| of a triangular map from its diagonal")
def check_triangular_log_det(fn: Callable) -> str:
    """``fn(f, x)`` = ``log|det J_f(x)|`` (batch,) for a map whose Jacobian is lower
    triangular: ``Σ_i log|∂f_i/∂x_i|``, the diagonal only."""
    see = "see notebook 03, section 1, 'The Jacobian by autograd', and its Summary"
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x_in = x.clone()
    got = as_tensor(call(fn, _triangular_map, x_in), (50,), "your log|det J|")
    check_unchanged(x, x_in, "x")
    jac = torch.func.vmap(torch.func.jacrev(lambda t: _triangular_map(t[None])[0]))(x)
    want = torch.linalg.slogdet(jac)[1]
    if close(got, want, rtol=1e-10, atol=1e-10):
        return "Σ log|∂f_i/∂x_i| equals log|det J_f| (autograd + slogdet) for a triangular map."
    if torch.isnan(got).any():
        raise Hint(f"NaN: a diagonal entry is negative; take log of its absolute value ({see})")
    all_entries = torch.log(jac.abs().clamp_min(1e-300)).sum((1, 2))
    if close(got, all_entries, rtol=1e-8, atol=1e-8):
        raise Hint(f"only the diagonal entries ∂f_i/∂x_i count for a triangular Jacobian ({see})")
    if close(got, torch.linalg.det(jac), rtol=1e-10, atol=1e-10) or close(
        got, torch.linalg.det(jac).abs(), rtol=1e-10, atol=1e-10
    ):
        raise Hint("return the LOG of |det J|, a sum of logs, not the determinant")
    raise Hint(f"does not equal log|det J_f(x)| ({see})")
