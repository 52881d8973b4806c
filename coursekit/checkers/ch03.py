"""Checkers for chapter 3, change of variable in d > 1.

Slides: TRANSPORT DE MESURES (DIM. d > 1), eq. (11).

Tolerances follow the checking policy (:func:`coursekit.checkers._common.matches`): relative,
so a right formula with a float32 constant passes, while a missing Jacobian term, a sign, an
absolute value left out or a term evaluated at the wrong point moves the answer by O(1).
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
    follow_policy,
    matches,
)

follow_policy(3)

#: the linear maps used in exercise 3.2: det 2.5, det −7 (a reflection) and a 3-D one
A_MATRIX = [[2.0, 1.0], [0.5, 1.5]]
A_NEGATIVE_DET = [[1.0, 2.0], [3.0, -1.0]]
A_3D = [[0.0, 2.0, 0.0], [-1.0, 0.0, 0.0], [0.3, 0.1, 0.5]]


def _points(n: int = 64, d: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _jacobians(f: Callable, x: torch.Tensor) -> torch.Tensor:
    """The Jacobians (n, d, d) of a row-wise map ``f`` at the rows of ``x`` (reference)."""
    return torch.func.vmap(torch.func.jacrev(lambda t: f(t[None])[0]))(x)


def _log_abs_column_sums(jac: torch.Tensor) -> torch.Tensor:
    """Σ_j log|Σ_i J_ij|: what ``torch.autograd.grad(f(x).sum(), x)`` leads to (a vector of
    column sums of J per point, not the diagonal nor the matrix)."""
    return jac.sum(1).abs().clamp_min(1e-300).log().sum(1)


@checker("3.1", "log|det J_f(x)| by autograd")
def check_log_abs_det_jacobian(fn: Callable) -> str:
    """``fn(f, x) = log|det J_f(x)|`` for each row of ``x`` (batch, d); returns (batch,)."""
    x = _points()
    a = torch.tensor(A_NEGATIVE_DET, dtype=torch.float64)
    cases = [
        ("a linear map with det −7", lambda v: v @ a.T),
        (
            "f(x) = (x1·exp(x2), x2 − x1²)",
            lambda v: torch.stack([v[:, 0] * torch.exp(v[:, 1]), v[:, 1] - v[:, 0] ** 2], 1),
        ),
    ]
    for name, f in cases:
        jac = _jacobians(f, x)
        want = torch.linalg.slogdet(jac).logabsdet
        got = call(fn, f, x.clone())
        if isinstance(got, torch.Tensor) and got.shape == (len(x), 2, 2):
            raise Hint(
                "you returned the Jacobian matrices; return log|det| per point, shape (batch,)"
            )
        got = as_tensor(got, (len(x),), "your log|det|")
        if matches(got, want):
            continue
        if bool(torch.isnan(got).any()):
            raise Hint(
                f"{name}: NaN — det J can be negative; take |det| before the log "
                "(torch.linalg.slogdet gives log|det| directly)"
            )
        if matches(got, want.exp()):
            raise Hint(f"{name}: you returned |det J|; return its logarithm")
        if matches(got, 2 * want):
            raise Hint(f"{name}: twice log|det J| — det(J Jᵀ) = det(J)²; take the det of J itself")
        if matches(got, _log_abs_column_sums(jac)):
            raise Hint(
                f"{name}: torch.autograd.grad(f(x).sum(), x) gives the column sums of J, one "
                "vector per point, not the d×d matrix: build the whole Jacobian (one backward "
                "pass per output coordinate, or torch.func.jacrev)"
            )
        raise Hint(
            f"{name}: wrong log|det|; build the d×d Jacobian of f at each point "
            "(torch.autograd.functional.jacobian or torch.func.jacrev)"
        )
    return "log|det J_f| matches for a linear map with det < 0 and a nonlinear map."


def _log_normal(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[1]
    return -0.5 * (x**2).sum(1) - 0.5 * d * math.log(2 * math.pi)


@checker("3.2", "log-density of A X + b by eq (11)")
def check_log_density_linear(fn: Callable) -> str:
    """``fn(a, b, z) = log p_Z(z)`` for ``Z = A X + b``, ``X ~ N(0, I_d)``; the maps include
    one with a negative determinant."""
    for a_list, b_list, seed in [
        (A_MATRIX, [1.0, -1.0], 1),
        (A_NEGATIVE_DET, [0.5, 2.0], 2),
        (A_3D, [0.0, 0.5, 2.0], 3),
    ]:
        a = torch.tensor(a_list, dtype=torch.float64)
        b = torch.tensor(b_list, dtype=torch.float64)
        d = len(b_list)
        z = 2 * _points(50, d, seed)
        got = as_tensor(call(fn, a.clone(), b.clone(), z.clone()), (len(z),), "your log-density")
        mvn = stats.multivariate_normal(b.numpy(), (a @ a.T).numpy())
        want = torch.as_tensor(mvn.logpdf(z.numpy()))
        if matches(got, want):
            continue
        det = float(torch.linalg.det(a))
        logdet = math.log(abs(det))
        if bool(torch.isnan(got).any()):
            raise Hint(
                f"NaN for det A = {fmt(det)}: the theorem has |det A|, and the log of a "
                "negative determinant is NaN — use torch.linalg.slogdet(a).logabsdet"
            )
        diff = got - want
        if matches(diff, torch.full_like(diff, 2 * logdet)):
            raise Hint(
                "off by 2·log|det A|: you multiplied by |det A| instead of dividing "
                "(the Jacobian of f⁻¹(z) = A⁻¹(z − b) is A⁻¹)"
            )
        if matches(diff, torch.full_like(diff, logdet)):
            raise Hint("off by log|det A|: the Jacobian term of eq (11) is missing")
        if matches(got, _log_normal((z - b) @ a.T) - logdet) or matches(
            got, _log_normal((z - b) @ a.T) + logdet
        ):
            raise Hint("you applied A to z − b; the inverse map is x = A⁻¹(z − b)")
        if matches(got, _log_normal(torch.linalg.solve(a, z.T).T) - logdet):
            raise Hint("subtract b first: x = A⁻¹(z − b), not A⁻¹z")
        if matches(got, _log_normal((z - b) @ torch.linalg.inv(a)) - logdet):
            raise Hint(
                "with points as rows, x = A⁻¹(z − b) is (z − b) @ A⁻ᵀ, not (z − b) @ A⁻¹: "
                "use torch.linalg.solve(a, (z − b).T).T"
            )
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
        "log p_Z matches scipy.stats.multivariate_normal(b, A Aᵀ) in 2-D and 3-D, "
        "det A = −7 included."
    )


@checker("3.3", "density of the polar coordinates of a 2-D Gaussian")
def check_polar_density(fn: Callable) -> str:
    """``fn(r, theta) = p_{R,Θ}(r, θ)`` for the polar coordinates of ``X ~ N(0, I_2)``."""
    r = torch.linspace(0.05, 4.0, 40, dtype=torch.float64).repeat(5)
    theta = torch.linspace(0.1, 6.2, 5, dtype=torch.float64).repeat_interleave(40)
    got = as_tensor(call(fn, r.clone(), theta.clone()), tuple(r.shape), "your density")
    want = torch.as_tensor(stats.rayleigh.pdf(r.numpy())) / (2 * math.pi)
    if matches(got, want):
        return "p(r, θ) = r·exp(−r²/2)/(2π): R is Rayleigh, Θ uniform and independent."
    if matches(got, want / r):
        raise Hint("the Jacobian factor is missing: |det ∂(x1, x2)/∂(r, θ)| = r")
    if matches(got, want / r**2):
        raise Hint(
            "you divided by r; the inverse map (r, θ) ↦ (r cos θ, r sin θ) has "
            "|det J| = r, which MULTIPLIES p_X"
        )
    if matches(got, want * 2 * math.pi):
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
        h = (hi - lo) / n
        if abs(got * h * h - want) <= 1e-3 * max(1.0, abs(want)):
            raise Hint(
                f"{name}: you summed the values; multiply by the cell area h² = ((hi − lo)/n)²"
            )
        if abs(got * h - want) <= 1e-3 * max(1.0, abs(want)):
            raise Hint(
                f"{name}: you multiplied by h = (hi − lo)/n, a cell's width; in 2-D a cell's "
                "area is h²"
            )
        if any(abs(got * h**k - want) <= 1e-3 * max(1.0, abs(want)) for k in (3, 4)):
            raise Hint(f"{name}: multiply by the cell area h², do not divide by it")
        raise Hint(f"{name}: got {fmt(got)}; the n × n cell centres are lo + (i + ½)·h")
    return "the midpoint rule gives 1 for the Gaussian, 4 and 1/3 for the test functions."


# --------------------------------------------------------------------------------------------
# 3.6: transform samples and their density together (eq. 11, the direction of sampling)
# --------------------------------------------------------------------------------------------

_A3 = [[1.5, 0.3, -0.4], [0.2, -0.8, 0.5], [0.7, 0.1, 1.1]]
_B3 = [1.0, -2.0, 0.5]


def _curved_map(x: torch.Tensor) -> torch.Tensor:
    """An invertible nonlinear map of R³ with a lower-triangular Jacobian whose diagonal is
    e^0.3, exp(0.5 sin x1), 1 + x1² (all positive), so log|det J| varies from point to point."""
    x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
    return torch.stack(
        [
            math.exp(0.3) * x1 + 1.0,
            x2 * torch.exp(0.5 * torch.sin(x1)) + x1**2,
            x3 * (1 + x1**2) + x2,
        ],
        dim=1,
    )


def _curved_log_det(x: torch.Tensor) -> torch.Tensor:
    return 0.3 + 0.5 * torch.sin(x[:, 0]) + torch.log1p(x[:, 0] ** 2)


@checker("3.6", "push samples and their log-density through a map")
def check_transform_with_log_prob(fn: Callable) -> str:
    """``fn(f, log_p_x, x) -> (z, log_p_z)`` with ``z = f(x)`` and
    ``log p_Z(z) = log p_X(x) − log|det J_f(x)|`` (eq. 11 read in the other direction), for an
    affine map (checked against the exact N(b, A Aᵀ)) and a nonlinear one whose Jacobian
    changes from point to point."""
    a = torch.tensor(_A3, dtype=torch.float64)
    b = torch.tensor(_B3, dtype=torch.float64)
    affine = lambda t: t @ a.T + b
    log_p_x = lambda t: -0.5 * (t**2).sum(-1) - 1.5 * math.log(2 * math.pi)
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    affine_log_det = torch.full((200,), math.log(abs(float(torch.linalg.det(a)))))
    exact = stats.multivariate_normal(mean=b.numpy(), cov=(a @ a.T).numpy())
    cases = (
        ("the affine map A x + b", affine, affine_log_det, lambda z: exact.logpdf(z.numpy())),
        ("a nonlinear map", _curved_map, _curved_log_det(x), None),
    )
    for name, f, log_det, exact_log_pdf in cases:
        z, log_p_z = as_pair(call(fn, f, log_p_x, x.clone()), "your function")
        z = as_tensor(z, (200, 3), "z")
        log_p_z = as_tensor(log_p_z, (200,), "log_p_z")
        if not matches(z, f(x)):
            raise Hint(f"{name}: z should be f(x)")
        want = log_p_x(x) - log_det
        if exact_log_pdf is not None:
            want = torch.as_tensor(exact_log_pdf(f(x)))
        if matches(log_p_z, want):
            continue
        if matches(log_p_z, want + 2 * log_det):
            raise Hint(
                f"{name}: sign of the log-det — a map that stretches volumes LOWERS the density"
            )
        if matches(log_p_z, want + log_det):
            raise Hint(f"{name}: the Jacobian term −log|det J_f(x)| is missing")
        if exact_log_pdf is None and matches(log_p_z, log_p_x(x) - _curved_log_det(f(x))):
            raise Hint(
                f"{name}: the log-det is taken at z; the Jacobian of f belongs at its input x "
                "(log p_Z(f(x)) = log p_X(x) − log|det J_f(x)|)"
            )
        at_z = log_p_x(f(x))
        if matches(log_p_z, at_z - log_det) or matches(log_p_z, at_z):
            raise Hint(f"{name}: evaluate log p_X at the input x, not at the output z")
        raise Hint(f"{name}: log_p_z should be log p_X(x) − log|det J_f(x)|")
    return (
        "log p_Z(f(x)) = log p_X(x) − log|det J_f(x)|: exact for N(b, A Aᵀ), and with the "
        "Jacobian taken at x for a nonlinear map."
    )


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
    triangular: ``Σ_i log|∂f_i/∂x_i|``."""
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    got = as_tensor(call(fn, _triangular_map, x.clone()), (50,), "your log|det J|")
    jac = _jacobians(_triangular_map, x)
    want = torch.linalg.slogdet(jac)[1]
    if matches(got, want):
        return (
            "Σ log|∂f_i/∂x_i| = log|det J_f|; by autograd it costs d backward passes, "
            "a coupling layer's Σ s none."
        )
    if torch.isnan(got).any():
        raise Hint("NaN: a diagonal entry is negative; take log of its absolute value")
    if matches(got, _log_abs_column_sums(jac)):
        raise Hint(
            "torch.autograd.grad(f(x).sum(), x) gives Σ_i ∂f_i/∂x_j, the column sums of J: "
            "below the diagonal they add ∂f_i/∂x_j (i > j). Take one backward pass per "
            "output coordinate i, grad(f(x)[:, i].sum(), x), and keep its entry i"
        )
    row_sums = jac.sum(2).abs().clamp_min(1e-300).log().sum(1)
    if matches(got, row_sums):
        raise Hint(
            "a Jacobian-vector product with a vector of ones gives the row sums of J, not its "
            "diagonal: keep entry i of the gradient of output i"
        )
    all_entries = torch.log(jac.abs().clamp_min(1e-300)).sum((1, 2))
    if matches(got, all_entries):
        raise Hint("only the diagonal entries ∂f_i/∂x_i count for a triangular Jacobian")
    if matches(got, torch.linalg.det(jac)) or matches(got, torch.linalg.det(jac).abs()):
        raise Hint("return the LOG of |det J|, a sum of logs, not the determinant")
    raise Hint("does not equal log|det J_f(x)| = Σ_i log|∂f_i/∂x_i|")
