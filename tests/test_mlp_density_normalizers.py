"""The normalisers of the MLP density model (notebook 01, slides DENSITY ESTIMATION)."""

from __future__ import annotations

import math

import pytest
import torch

from coursekit.grid import make_grid
from coursekit.mlp_density import (
    GridRenormalized,
    MLPDensity,
    MonteCarloMLPDensity,
    density_mlp,
    grid_log_normalizer,
    grid_log_normalizer_nd,
    grid_normalizer_cost,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_net(module: torch.nn.Module, seed: int = 0, scale: float = 0.5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_density_mlp_has_the_documented_layers() -> None:
    net = density_mlp(3, (8, 4))
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "SiLU", "Linear", "SiLU", "Linear"]
    assert net(torch.zeros(5, 3)).shape == (5, 1)
    with pytest.raises(ValueError, match="dim"):
        density_mlp(0, (8,))


def test_grid_log_normalizer_equals_the_training_normaliser_on_the_same_grid() -> None:
    model = MLPDensity(hidden=(16, 16), lo=-3.0, hi=3.0, grid_size=40).double()
    _random_net(model)
    # the model's grid buffer was built in float32: the points agree to float32 rounding
    expected = float(model.log_normalizer().detach())
    assert grid_log_normalizer(model, 40) == pytest.approx(expected, abs=1e-6)


def test_grid_renormalized_integrates_to_one() -> None:
    model = MonteCarloMLPDensity(hidden=(16,), lo=-3.0, hi=3.0, samples=8).double()
    _random_net(model, seed=1)
    renorm = GridRenormalized(model, grid_size=300)
    grid = make_grid(-3.0, 3.0, 300, dtype=torch.float64)
    total = float(renorm.log_prob(grid.points).exp().sum()) * grid.cell_area
    assert total == pytest.approx(1.0, abs=1e-10)


def test_monte_carlo_normaliser_is_unbiased_for_z_and_fresh_at_each_call() -> None:
    model = MonteCarloMLPDensity(hidden=(16,), lo=-3.0, hi=3.0, samples=2_000, seed=3).double()
    _random_net(model, seed=2)
    z_true = math.exp(grid_log_normalizer(model, 600))
    estimates = torch.tensor([math.exp(float(model.log_normalizer().detach())) for _ in range(200)])
    mean, se = float(estimates.mean()), float(estimates.std() / math.sqrt(len(estimates)))
    assert se > 0  # fresh points at every call
    assert abs(mean - z_true) < 4 * se + 1e-6 * z_true
    # a constant network: every estimate is exact, exp(b) times the box's area
    flat = MonteCarloMLPDensity(hidden=(4,), lo=-1.0, hi=2.0, samples=3).double()
    with torch.no_grad():
        for p in flat.parameters():
            p.zero_()
        flat.net[-1].bias.fill_(0.7)
    exact = 0.7 + 2 * math.log(3.0)
    assert float(flat.log_normalizer().detach()) == pytest.approx(exact, abs=1e-12)
    with pytest.raises(ValueError, match="samples"):
        MonteCarloMLPDensity(samples=0)


def test_grid_normalizer_cost_is_exact() -> None:
    cost = grid_normalizer_cost(3, 50, (32, 32))
    assert cost == {
        "points": 125_000,
        "grid_bytes": 4 * 125_000 * 3,
        "training_bytes": 4 * 125_000 * (3 + 2 * 64 + 1),
    }
    assert grid_normalizer_cost(784, 2, (1,))["points"] == 2**784
    with pytest.raises(ValueError, match="points_per_axis"):
        grid_normalizer_cost(2, 0, (8,))


def test_grid_log_normalizer_nd_matches_the_2d_grid_and_a_closed_form() -> None:
    model = MLPDensity(hidden=(16, 16), lo=-3.0, hi=3.0, grid_size=30).double()
    _random_net(model, seed=4)
    value = grid_log_normalizer_nd(model.net, 2, 30, lo=-3.0, hi=3.0, chunk=77)
    assert value == pytest.approx(float(model.log_normalizer().detach()), abs=1e-6)
    assert value == pytest.approx(grid_log_normalizer(model, 30), abs=1e-12)
    # a constant network in 4-D: log Z = b + 4 log(hi - lo), whatever the chunking
    net = density_mlp(4, (3,)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net[-1].bias.fill_(-0.3)
    assert grid_log_normalizer_nd(net, 4, 5, lo=0.0, hi=2.0, chunk=7) == pytest.approx(
        -0.3 + 4 * math.log(2.0), abs=1e-12
    )
    # a Gaussian log density in 3-D integrates to ~1 on a fine enough grid
    gauss = torch.nn.Sequential()
    gauss.forward = lambda x: -0.5 * (x**2).sum(-1, keepdim=True) - 1.5 * math.log(2 * math.pi)
    gauss.parameters = lambda: iter([torch.zeros((), dtype=torch.float64)])
    assert grid_log_normalizer_nd(gauss, 3, 60, lo=-7.0, hi=7.0) == pytest.approx(0.0, abs=1e-6)
