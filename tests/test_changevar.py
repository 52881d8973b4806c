"""The change-of-variable formulas (eq. 9-11) against scipy.stats, in float64.

Every density computed by :mod:`coursekit.changevar` (autograd derivative or Jacobian) must be
within a relative error of 1e-10 of scipy's closed form on a grid of points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from coursekit.changevar import (
    derivative,
    jacobian,
    log_abs_det_jacobian,
    pullback_density,
    pullback_log_prob,
    pushforward_density,
    pushforward_log_prob,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


RTOL = 1e-10


def normal_log_prob(loc: float = 0.0, scale: float = 1.0):
    def log_prob(x: torch.Tensor) -> torch.Tensor:
        u = (x - loc) / scale
        return -0.5 * u**2 - math.log(scale) - 0.5 * math.log(2 * math.pi)

    return log_prob


def uniform_log_prob(x: torch.Tensor) -> torch.Tensor:
    """Uniform(0, 1) on its support (the grids stay inside it)."""
    return torch.zeros_like(x)


def assert_close_relative(ours: torch.Tensor, reference: np.ndarray) -> None:
    """Relative error of the densities ``exp(ours)`` and ``reference`` below RTOL."""
    ours_np = ours.exp().detach().numpy()
    assert ours_np.shape == reference.shape
    assert np.all(reference > 0)
    rel = np.abs(ours_np - reference) / reference
    assert rel.max() <= RTOL, rel.max()


def grid(lo: float, hi: float, n: int = 401) -> torch.Tensor:
    return torch.linspace(lo, hi, n, dtype=torch.float64)


# ---------------------------------------------------------------- 1-D, eq. (9)-(10)

# (name, log p_X, f^{-1}: z -> x, grid of z, scipy density of Z = f(X))
ONE_D_PUSHFORWARDS = [
    (
        "exp of a normal is lognormal",
        normal_log_prob(0.3, 0.8),
        torch.log,
        grid(0.05, 8.0),
        stats.lognorm(s=0.8, scale=math.exp(0.3)),
    ),
    (
        "affine of a normal is normal",
        normal_log_prob(0.0, 1.0),
        lambda z: (z - 1.5) / 2.5,
        grid(-8.0, 10.0),
        stats.norm(loc=1.5, scale=2.5),
    ),
    (
        "decreasing affine of a normal is normal",
        normal_log_prob(1.0, 0.5),
        lambda z: (z - 2.0) / -3.0,
        grid(-4.0, 3.0),
        stats.norm(loc=-1.0, scale=1.5),
    ),
    (
        "-log of a uniform is exponential (decreasing)",
        uniform_log_prob,
        lambda z: torch.exp(-z),
        grid(0.01, 12.0),
        stats.expon(),
    ),
    (
        "normal CDF of a normal is uniform",
        normal_log_prob(),
        lambda z: torch.special.ndtri(z),
        grid(0.01, 0.99),
        stats.uniform(),
    ),
    (
        "logit of a uniform is logistic",
        uniform_log_prob,
        torch.sigmoid,
        grid(-10.0, 10.0),
        stats.logistic(),
    ),
    (
        "1/x of a gamma is inverse-gamma (decreasing)",
        lambda x: torch.as_tensor(stats.gamma(a=3.0).logpdf(x.detach().numpy())),
        lambda z: 1.0 / z,
        grid(0.05, 5.0),
        stats.invgamma(a=3.0),
    ),
]


@pytest.mark.parametrize(
    "log_p_x, f_inverse, z, reference",
    [case[1:] for case in ONE_D_PUSHFORWARDS],
    ids=[case[0] for case in ONE_D_PUSHFORWARDS],
)
def test_pushforward_1d_matches_scipy(log_p_x, f_inverse, z, reference) -> None:
    assert_close_relative(pushforward_log_prob(log_p_x, f_inverse, z), reference.pdf(z.numpy()))
    density = pushforward_density(log_p_x, f_inverse, z)
    rel = (density.numpy() - reference.pdf(z.numpy())) / reference.pdf(z.numpy())
    assert np.abs(rel).max() <= RTOL


# (name, log p_Z, f: x -> z, grid of x, scipy density of X)
ONE_D_PULLBACKS = [
    (
        "standardising a normal (eq. 10)",
        normal_log_prob(),
        lambda x: (x - 2.0) / 0.7,
        grid(-1.0, 5.0),
        stats.norm(loc=2.0, scale=0.7),
    ),
    (
        "log of a lognormal is normal",
        normal_log_prob(),
        torch.log,
        grid(0.05, 10.0),
        stats.lognorm(s=1.0),
    ),
    (
        "logistic CDF maps a logistic to a uniform",
        uniform_log_prob,
        torch.sigmoid,
        grid(-10.0, 10.0),
        stats.logistic(),
    ),
    (
        "exp(-x) maps an exponential to a uniform (decreasing)",
        uniform_log_prob,
        lambda x: torch.exp(-x),
        grid(0.01, 10.0),
        stats.expon(),
    ),
]


@pytest.mark.parametrize(
    "log_p_z, f, x, reference",
    [case[1:] for case in ONE_D_PULLBACKS],
    ids=[case[0] for case in ONE_D_PULLBACKS],
)
def test_pullback_1d_matches_scipy(log_p_z, f, x, reference) -> None:
    assert_close_relative(pullback_log_prob(log_p_z, f, x), reference.pdf(x.numpy()))
    rel = (pullback_density(log_p_z, f, x).numpy() - reference.pdf(x.numpy())) / reference.pdf(
        x.numpy()
    )
    assert np.abs(rel).max() <= RTOL


# ---------------------------------------------------------------- d-D, eq. (11)


def mvn_log_prob(mean: torch.Tensor, cov: torch.Tensor):
    chol = torch.linalg.cholesky(cov)
    d = mean.numel()

    def log_prob(x: torch.Tensor) -> torch.Tensor:
        sol = torch.linalg.solve_triangular(chol, (x - mean).T, upper=False)
        return (
            -0.5 * (sol**2).sum(0)
            - torch.log(torch.diagonal(chol)).sum()
            - 0.5 * d * math.log(2 * math.pi)
        )

    return log_prob


def grid_2d(lo: float, hi: float, n: int = 41) -> torch.Tensor:
    axis = torch.linspace(lo, hi, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], dim=1)


def test_linear_map_of_a_gaussian_is_multivariate_normal() -> None:
    """``Z = A X + b`` with ``X ~ N(μ, Σ)`` is ``N(A μ + b, A Σ Aᵀ)``, in 3-D."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 3, generator=gen, dtype=torch.float64) + 2 * torch.eye(3)
    b = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    mu = torch.tensor([1.0, 0.0, -0.5], dtype=torch.float64)
    l_cov = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    sigma = l_cov @ l_cov.T + 0.5 * torch.eye(3)
    a_inv = torch.linalg.inv(a)
    z = a @ mu + b + 2.0 * torch.randn(500, 3, generator=gen, dtype=torch.float64)
    ours = pushforward_log_prob(mvn_log_prob(mu, sigma), lambda v: (v - b) @ a_inv.T, z)
    reference = stats.multivariate_normal(
        mean=(a @ mu + b).numpy(), cov=(a @ sigma @ a.T).numpy()
    ).pdf(z.numpy())
    assert_close_relative(ours, reference)
    # the same density by pulling N(0, I) back through the whitening map (eq. 11)
    chol = torch.linalg.cholesky(a @ sigma @ a.T)
    whiten = lambda v: torch.linalg.solve_triangular(chol, (v - a @ mu - b).T, upper=False).T
    assert_close_relative(
        pullback_log_prob(
            mvn_log_prob(torch.zeros(3, dtype=torch.float64), torch.eye(3).double()), whiten, z
        ),
        reference,
    )


def box_muller(u: torch.Tensor) -> torch.Tensor:
    """``(u1, u2) ∈ (0, 1)² -> sqrt(-2 log u1) (cos 2πu2, sin 2πu2)``."""
    r = torch.sqrt(-2 * torch.log(u[:, 0]))
    return torch.stack(
        [r * torch.cos(2 * math.pi * u[:, 1]), r * torch.sin(2 * math.pi * u[:, 1])], 1
    )


def test_box_muller_pullback_is_uniform() -> None:
    """Box–Muller maps U(0,1)² to N(0, I₂): the pullback of N(0, I) through it is 1 on (0, 1)²."""
    u = grid_2d(0.02, 0.98, n=25)
    standard = mvn_log_prob(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    ours = pullback_log_prob(standard, box_muller, u)
    assert_close_relative(ours, stats.uniform().pdf(u.numpy()).prod(1))


def test_polar_to_cartesian_gives_rayleigh_times_uniform_angle() -> None:
    """``(r, θ) -> (r cos θ, r sin θ)`` of N(0, I₂): p(r, θ) = Rayleigh(r) · 1/(2π)."""

    def to_cartesian(p: torch.Tensor) -> torch.Tensor:
        return torch.stack([p[:, 0] * torch.cos(p[:, 1]), p[:, 0] * torch.sin(p[:, 1])], 1)

    polar = torch.stack(
        torch.meshgrid(grid(0.05, 4.0, 30), grid(-3.0, 3.0, 30), indexing="ij"), -1
    ).reshape(-1, 2)
    standard = mvn_log_prob(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    ours = pullback_log_prob(standard, to_cartesian, polar)
    reference = stats.rayleigh().pdf(polar[:, 0].numpy()) / (2 * math.pi)
    assert_close_relative(ours, reference)
    # and the Jacobian determinant of polar coordinates is r
    logdet = log_abs_det_jacobian(to_cartesian, polar)
    assert (logdet - torch.log(polar[:, 0])).abs().max() < 1e-12


# ---------------------------------------------------------------- autograd helpers


def test_log_abs_det_jacobian_batched_matches_analytic() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    a = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    linear = lambda v: v @ a.T
    assert (log_abs_det_jacobian(linear, x) - torch.linalg.slogdet(a).logabsdet).abs().max() < 1e-12
    # elementwise map: log|det| = Σ log|f'(x_i)|
    elementwise = lambda v: v**3 + 2 * v
    expected = torch.log(3 * x**2 + 2).sum(1)
    assert (log_abs_det_jacobian(elementwise, x) - expected).abs().max() < 1e-12
    # a triangular nonlinear map: det = product of the diagonal
    tri = lambda v: torch.stack(
        [torch.exp(v[:, 0]), v[:, 1] * torch.exp(v[:, 0]), v[:, 2] + v[:, 0] ** 2], 1
    )
    assert (log_abs_det_jacobian(tri, x) - 2 * x[:, 0]).abs().max() < 1e-12
    # 1-D points: log|f'(x)|
    x1 = x[:, 0]
    assert (log_abs_det_jacobian(torch.sinh, x1) - torch.log(torch.cosh(x1))).abs().max() < 1e-12


def test_jacobian_rows_and_derivative() -> None:
    x = torch.tensor([[1.0, 2.0], [-0.5, 3.0]], dtype=torch.float64)
    f = lambda v: torch.stack([v[:, 0] * v[:, 1], v[:, 0] ** 2 + torch.sin(v[:, 1])], 1)
    expected = torch.stack(
        [
            torch.stack([x[:, 1], x[:, 0]], 1),
            torch.stack([2 * x[:, 0], torch.cos(x[:, 1])], 1),
        ],
        1,
    )
    assert torch.equal(jacobian(f, x), expected)
    t = grid(-3.0, 3.0, 50)
    assert (derivative(torch.tanh, t) - (1 - torch.tanh(t) ** 2)).abs().max() < 1e-15
    assert (derivative(lambda v: -2 * v, t) + 2).abs().max() == 0


def test_jacobian_accepts_a_map_with_input_checks() -> None:
    """A map that validates its input (value-dependent Python control flow) still works."""

    def checked(v: torch.Tensor) -> torch.Tensor:
        if not bool(torch.isfinite(v).all()):
            raise ValueError("v: expected finite values")
        return 2 * v

    x = torch.ones(3, 2, dtype=torch.float64)
    assert torch.equal(jacobian(checked, x), 2 * torch.eye(2).double().expand(3, 2, 2))


def test_derivative_keeps_the_graph_when_asked() -> None:
    t = torch.tensor([0.3, 1.2], dtype=torch.float64, requires_grad=True)
    d = derivative(torch.sin, t)
    (second,) = torch.autograd.grad(d.sum(), t)
    assert (second + torch.sin(t.detach())).abs().max() < 1e-15


# ---------------------------------------------------------------- bad input


def test_bad_maps_and_shapes_raise_value_error() -> None:
    x = grid(0.1, 1.0, 5)
    with pytest.raises(ValueError, match="^f: .*callable"):
        derivative("exp", x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^f: .*shape"):
        derivative(lambda v: v.sum(), x)
    with pytest.raises(ValueError, match="^f: .*shape"):
        derivative(lambda v: v.tolist(), x)
    with pytest.raises(ValueError, match="^x: .*shape \\(batch,\\)"):
        derivative(torch.exp, x[:, None].repeat(1, 2))
    with pytest.raises(ValueError, match="^x: .*shape"):
        log_abs_det_jacobian(torch.exp, torch.zeros(2, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="^x: .*\\(batch, d\\)"):
        jacobian(torch.exp, x)
    with pytest.raises(ValueError, match="^f: .*shape"):
        jacobian(lambda v: v[:, :1], torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="^x: .*floating"):
        pullback_log_prob(normal_log_prob(), torch.exp, torch.arange(3))
    with pytest.raises(ValueError, match="^x: .*finite"):
        pullback_log_prob(normal_log_prob(), torch.exp, torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match="^z: .*torch.Tensor"):
        pushforward_log_prob(normal_log_prob(), torch.log, [1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^f_inverse: .*callable"):
        pushforward_log_prob(normal_log_prob(), None, x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^f_inverse: .*shape"):
        pushforward_log_prob(normal_log_prob(), lambda v: v[:-1], x)


def test_constant_maps_have_zero_derivatives() -> None:
    x = torch.ones(4, 2, dtype=torch.float64)
    assert torch.equal(jacobian(lambda v: torch.zeros_like(v), x), torch.zeros(4, 2, 2).double())
    t = torch.ones(3, dtype=torch.float64)
    assert torch.equal(derivative(lambda v: torch.ones_like(v), t), torch.zeros(3).double())
