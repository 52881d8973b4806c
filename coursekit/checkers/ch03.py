"""Checkers for chapter 3, change of variable in d > 1.

Slides: TRANSPORT DE MESURES (DIM. d > 1), eq. (11).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy import stats

from coursekit.checkers._common import Hint, as_float, as_tensor, call, checker, close, fmt

#: the linear map used in exercises 3.2 and 3.4
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


@checker("3.4", "area of the image of a small square")
def check_area_factor(fn: Callable[[], float]) -> str:
    """``fn()`` = area of ``A(S)`` for a square ``S`` of area 0.01, ``A = A_MATRIX``."""
    got = as_float(call(fn))
    det = 2.0 * 1.5 - 1.0 * 0.5
    if close(got, 0.01 * det, rtol=1e-6):
        return f"area × |det A| = 0.01 × {det:g} = {0.01 * det:g}: p_Z = p_X / {det:g} there."
    if close(got, 0.01 / det, rtol=1e-6):
        raise Hint("areas are MULTIPLIED by |det A| (densities are divided by it)")
    if close(got, det, rtol=1e-6):
        raise Hint("that is the area factor |det A|; multiply it by the square's area 0.01")
    if close(got, 0.01 * 3.5, rtol=1e-6):
        raise Hint("that uses the trace; the area factor is the determinant")
    raise Hint(f"got {fmt(got)}; a linear map multiplies every area by |det A|")


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
