"""coursekit.experiments: KL with its standard error, the gap region between the modes, the grid
cost and the CPU-time budget (with the d-dimensional four modes, PlaneFourModes, as a target)."""

from __future__ import annotations

import math

import pytest
import torch

from coursekit.datasets import PlaneFourModes, four_modes
from coursekit.experiments import gap_mass_on_grid, gap_share, grid_cost, in_gap_region
from coursekit.metrics import Estimate, kl_with_se, log_ratio_samples, mean_and_se


class Gaussian:
    """N(mu, sigma² I) on R^d with the model interface (log_prob only)."""

    def __init__(self, mu: float, sigma: float, d: int):
        self.mu, self.sigma, self.d = mu, sigma, d

    def log_prob(self, x):
        return (
            -0.5 * (((x - self.mu) / self.sigma) ** 2).sum(1)
            - self.d * math.log(self.sigma)
            - 0.5 * self.d * math.log(2 * math.pi)
        )


def test_mean_and_se():
    est = mean_and_se([1.0, 2.0, 3.0])
    assert est.mean == pytest.approx(2.0, abs=1e-12)
    assert est.se == pytest.approx(1.0 / math.sqrt(3.0), abs=1e-12)
    assert est.n == 3
    with pytest.raises(ValueError, match="values"):
        mean_and_se([1.0])


def test_kl_of_the_truth_is_exactly_zero_and_a_shift_matches_the_closed_form():
    target = PlaneFourModes(4)
    zero = kl_with_se(target, target, n=2_000, generator=torch.Generator().manual_seed(0))
    assert zero.mean == 0.0 and zero.se == 0.0
    # model = the same mixture shifted by a vector a: KL(p || p(· − a)) = |a|² / (2σ²) exactly
    # for one Gaussian, and for a mixture whose modes hardly overlap to within 1e-3.
    shift = torch.tensor([0.0, 0.0, 0.06, -0.08], dtype=torch.float64)  # |a| = 0.1

    class Shifted:
        def log_prob(self, x):
            return target.log_prob(x - shift)

    est = kl_with_se(Shifted(), target, n=20_000, generator=torch.Generator().manual_seed(1))
    assert abs(est.mean - 0.02) < 4 * est.se + 1e-3
    assert 0 < est.se < 0.01


def test_log_ratio_samples_are_paired_by_the_generator():
    target = PlaneFourModes(3)
    a = log_ratio_samples(Gaussian(0.0, 2.0, 3), target, 500, torch.Generator().manual_seed(3))
    b = log_ratio_samples(Gaussian(0.0, 2.0, 3), target, 500, torch.Generator().manual_seed(3))
    assert a.shape == (500,) and torch.equal(a, b)


def test_gap_region_definition():
    pts = torch.tensor(
        [[0.0, 0.0], [2.0, 2.0], [0.0, 1.9], [3.0, 0.0], [1.0, 1.0], [0.5, 0.5], [-2.0, 0.4]],
        dtype=torch.float64,
    )
    # (1, 1) is at distance √2 < 1.5 of (2, 2); (0.5, 0.5) at 2.12; (−2, 0.4) at 1.6
    assert in_gap_region(pts).tolist() == [True, False, True, False, False, True, True]
    with pytest.raises(ValueError, match="x"):
        in_gap_region(torch.zeros(3))


def test_gap_mass_on_grid_agrees_with_the_sample_share():
    target = four_modes()
    mass = gap_mass_on_grid(target.log_prob)
    share = gap_share(target.sample(200_000, generator=torch.Generator().manual_seed(0)))
    assert isinstance(share, Estimate) and share.n == 200_000
    assert 0 < mass < 0.02
    assert abs(share.mean - mass) < 4 * share.se + 1e-4


def test_grid_cost():
    assert grid_cost(60, 2) == (3600, 3600 * 2 * 4)
    points, memory = grid_cost(60, 10)
    assert points == 60**10 and memory == 60**10 * 10 * 4
    with pytest.raises(ValueError, match="dim"):
        grid_cost(60, 0)
