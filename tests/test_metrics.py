"""Metrics against closed forms: NLL (eq. 4), bits/dim, KL (eq. 1); the MLP density's Z_θ."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

from coursekit.datasets import GaussianMixture, TwoMoons, modes
from coursekit.grid import integrate_on_grid, log_prob_on_grid, make_grid
from coursekit.metrics import bits_per_dim, kl_to_target, nll
from coursekit.mlp_density import MLPDensity

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class IsoGaussian(nn.Module):
    """``N(μ, s² I)`` on R² as a model (float64 parameters)."""

    def __init__(self, mu: tuple[float, float], std: float) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(mu, dtype=torch.float64))
        self.std = std

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        u = (x - self.mu) / self.std
        return -0.5 * (u**2).sum(1) - 2 * math.log(self.std) - math.log(2 * math.pi)


def test_nll_matches_scipy() -> None:
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = IsoGaussian((0.5, -1.0), 1.5)
    expected = -stats.multivariate_normal([0.5, -1.0], 1.5**2 * torch.eye(2).numpy()).logpdf(
        x.numpy()
    )
    assert abs(float(nll(model, x).detach()) - expected.mean()) < 1e-12
    with pytest.raises(ValueError, match="^x: "):
        nll(model, torch.zeros(3, 2, dtype=torch.int64))


def test_bits_per_dim_is_nats_over_d_ln2() -> None:
    log_prob = torch.tensor([-700.0, -900.0], dtype=torch.float64)
    assert float(bits_per_dim(log_prob, 784, levels=1)) == pytest.approx(
        800.0 / (784 * math.log(2))
    )
    assert float(bits_per_dim(log_prob.float(), 1, levels=1)) == pytest.approx(800.0 / math.log(2))
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="^num_dims: "):
            bits_per_dim(log_prob, bad, levels=1)
    with pytest.raises(ValueError, match="^log_prob: "):
        bits_per_dim([1.0], 2, levels=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^levels: "):
        bits_per_dim(log_prob, 2, levels=0)
    with pytest.raises(TypeError):  # the scale of the data must be stated
        bits_per_dim(log_prob, 784)  # type: ignore[call-arg]


def test_bits_per_dim_counts_the_scaling_of_the_pixels() -> None:
    """log p(x) on [0, 1)^D, x = v / 256: the 8-bit scale adds log2(256) = 8 bits/dim."""
    log_prob_unit = torch.tensor([280.0, 305.0, 262.0], dtype=torch.float64)
    unit = float(bits_per_dim(log_prob_unit, 64, levels=1))
    assert float(bits_per_dim(log_prob_unit, 64, levels=256)) == pytest.approx(unit + 8, abs=1e-12)


def test_kl_between_gaussians_matches_the_closed_form() -> None:
    """KL(N(0, σ₁²I) ‖ N(μ, σ₂²I)) = d/2 (σ₁²/σ₂² − 1 + ln σ₂²/σ₁²) + |μ|²/(2σ₂²), d = 2."""
    target = modes(1)  # N(0, 0.5² I)
    s1, s2, mu = 0.5, 0.8, (0.3, -0.2)
    closed = (s1**2 / s2**2 - 1 + math.log(s2**2 / s1**2)) + (mu[0] ** 2 + mu[1] ** 2) / (2 * s2**2)
    gen = torch.Generator().manual_seed(0)
    estimate = kl_to_target(IsoGaussian(mu, s2), target, n=200_000, generator=gen)
    # Monte Carlo: standard error of log p − log q is below 0.5 / sqrt(n) here
    assert abs(estimate - closed) < 5 * 0.5 / math.sqrt(200_000)
    assert kl_to_target(IsoGaussian((0.0, 0.0), s1), target, n=1_000) == pytest.approx(0, abs=1e-12)


def test_kl_uses_the_model_dtype_and_batches() -> None:
    target = GaussianMixture([[0.0, 0.0]], stds=1.0)
    model = IsoGaussian((0.0, 0.0), 1.0).float()
    gen = torch.Generator().manual_seed(1)
    kl = kl_to_target(model, target, n=2_500, generator=gen, batch_size=1_000)
    assert abs(kl) < 1e-6  # float32 rounding only


def test_kl_bad_arguments() -> None:
    with pytest.raises(ValueError, match="^target: "):
        kl_to_target(IsoGaussian((0.0, 0.0), 1.0), TwoMoons(), n=10)
    with pytest.raises(ValueError, match="^n: "):
        kl_to_target(IsoGaussian((0.0, 0.0), 1.0), modes(1), n=0)


def test_mlp_density_integrates_to_one_on_its_grid() -> None:
    torch.manual_seed(0)
    model = MLPDensity(hidden=(16, 16), lo=-3.0, hi=3.0, grid_size=60)
    # the midpoint rule written out (not the model's own grid code): cells of side h on the box
    h = 6.0 / 60
    centres = -3.0 + h * (torch.arange(60, dtype=torch.float32) + 0.5)
    points = torch.cartesian_prod(centres, centres)
    with torch.no_grad():
        mass = float(model.log_prob(points).exp().sum()) * h * h
        unnormalized = float(model.unnormalized_log_prob(points).exp().sum()) * h * h
    assert abs(mass - 1.0) < 1e-5
    assert abs(unnormalized - 1.0) > 0.1  # the normaliser Z_θ does the work
    # a finer grid of the same box: the midpoint rule converges to 1
    fine = make_grid(-3.0, 3.0, 240, dtype=torch.float32)
    with torch.no_grad():
        fine_mass = integrate_on_grid(log_prob_on_grid(model.log_prob, fine).exp(), fine)
    assert abs(fine_mass - 1.0) < 1e-2
    # Z_θ is differentiable: the NLL gives every parameter a gradient
    x = modes(4).sample(64, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    nll(model, x).backward()
    assert all(p.grad is not None and p.grad.abs().max() > 0 for p in model.parameters())


def test_mlp_density_without_normalisation_is_not_a_density() -> None:
    torch.manual_seed(0)
    raw = MLPDensity(hidden=(16,), lo=-3.0, hi=3.0, grid_size=60, normalize=False)
    with torch.no_grad():
        raw.net[-1].bias.fill_(1.0)
    grid = make_grid(-3.0, 3.0, 60, dtype=torch.float32)
    with torch.no_grad():
        mass = integrate_on_grid(log_prob_on_grid(raw.log_prob, grid).exp(), grid)
    assert abs(mass - 1.0) > 0.5
    assert "normalize=False" in repr(raw)
    with pytest.raises(ValueError, match="^x: "):
        raw.log_prob(torch.zeros(4, 3))
