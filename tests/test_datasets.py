"""Toy 2-D distributions: exact densities integrate to 1, samples match their moments."""

from __future__ import annotations

import math

import pytest
import torch

from coursekit.datasets import (
    MODE_CENTRES,
    Checkerboard,
    GaussianMixture,
    Rings,
    ToyDistribution,
    TwoMoons,
    four_modes,
    gallery,
    modes,
)
from coursekit.grid import integrate_on_grid, log_prob_on_grid, make_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")


EXACT = {name: dist for name, dist in gallery().items() if dist.has_log_prob}


def test_gallery_lists_every_distribution() -> None:
    dists = gallery()
    assert set(dists) == {
        "1 mode",
        "2 modes",
        "3 modes",
        "4 modes",
        "checkerboard",
        "rings",
        "two moons",
    }
    assert all(isinstance(d, ToyDistribution) for d in dists.values())
    assert not dists["two moons"].has_log_prob
    assert set(EXACT) == set(dists) - {"two moons"}


@pytest.mark.parametrize("name", list(EXACT))
def test_log_prob_integrates_to_one(name: str) -> None:
    dist = EXACT[name]
    # [-6, 6] with 300 cells: cell edges fall on the checkerboard's edges (multiples of 2).
    grid = make_grid(-6.0, 6.0, 300)
    values = log_prob_on_grid(dist.log_prob, grid).exp()
    assert values.shape == (300 * 300,)
    tol = 1e-9 if isinstance(dist, GaussianMixture | Checkerboard) else 2e-3
    assert abs(integrate_on_grid(values, grid) - 1.0) < tol


@pytest.mark.parametrize("name", list(gallery()))
def test_samples_shape_dtype_and_reproducibility(name: str) -> None:
    dist = gallery()[name]
    x = dist.sample(100, generator=torch.Generator().manual_seed(0))
    assert x.shape == (100, 2) and x.dtype == torch.float64
    assert bool(torch.isfinite(x).all())
    x32 = dist.sample(7, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    assert x32.dtype == torch.float32 and x32.shape == (7, 2)
    again = dist.sample(100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    other = dist.sample(100, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(x, other)
    if dist.has_log_prob:  # every sample lies in the support
        assert bool(torch.isfinite(dist.log_prob(x)).all())
        assert dist.log_prob(x32).dtype == torch.float32
        assert torch.allclose(dist.prob(x), dist.log_prob(x).exp())


def mixture_moments(mix: GaussianMixture) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``Σ w_k μ_k`` and covariance ``Σ w_k (σ_k² I + μ_k μ_kᵀ) − m mᵀ``."""
    w, mu, s = mix.weights, mix.means, mix.stds
    mean = (w[:, None] * mu).sum(0)
    second = (
        w[:, None, None] * (s[:, None, None] ** 2 * torch.eye(2) + mu[:, :, None] * mu[:, None])
    ).sum(0)
    return mean, second - torch.outer(mean, mean)


MIXTURES = {
    **{f"{k} modes": modes(k) for k in (1, 2, 3, 4)},
    "unequal": GaussianMixture([[0.0, 1.0], [3.0, -1.0]], stds=[0.3, 0.8], weights=[1.0, 3.0]),
}


@pytest.mark.parametrize("name", list(MIXTURES))
def test_mixture_sample_moments(name: str) -> None:
    mix = MIXTURES[name]
    n = 200_000
    x = mix.sample(n, generator=torch.Generator().manual_seed(3))
    mean, cov = mixture_moments(mix)
    # 5 standard errors of the sample mean / covariance
    se_mean = (cov.diagonal() / n).sqrt()
    assert bool(((x.mean(0) - mean).abs() <= 5 * se_mean).all())
    emp_cov = torch.cov(x.T)
    assert (emp_cov - cov).abs().max() <= 5 * math.sqrt(2 / n) * float(cov.diagonal().max()) + 1e-3


def test_four_modes_is_the_slides_example() -> None:
    mix = four_modes()
    assert mix.means.shape == (4, 2)
    assert sorted(map(tuple, mix.means.tolist())) == sorted(MODE_CENTRES[4])
    assert torch.equal(mix.stds, torch.full((4,), 0.5, dtype=torch.float64))
    assert torch.allclose(mix.weights, torch.full((4,), 0.25, dtype=torch.float64))
    # the exact density at a centre: (1/4) N(0; 0, σ²I) + three far-away modes
    x = torch.tensor([[2.0, 2.0]], dtype=torch.float64)
    far = torch.tensor(
        [16.0, 16.0, 32.0], dtype=torch.float64
    )  # squared distances to the other centres
    expected = 0.25 / (2 * math.pi * 0.25) * (1 + torch.exp(-0.5 * far / 0.25).sum())
    assert abs(float(mix.prob(x)) / float(expected) - 1) < 1e-13
    assert "4 modes" in repr(mix)


def test_checkerboard_density_values() -> None:
    board = Checkerboard()
    inside = torch.tensor([[-3.0, -3.0], [-1.0, -1.0], [1.0, -3.0]], dtype=torch.float64)
    assert torch.allclose(board.log_prob(inside), torch.full((3,), -math.log(32.0)).double())
    outside = torch.tensor([[-3.0, -1.0], [5.0, 0.0]], dtype=torch.float64)
    assert bool(torch.isneginf(board.log_prob(outside)).all())
    x = board.sample(4_000, generator=torch.Generator().manual_seed(0))
    assert bool((x.abs() < 4).all())


def test_rings_radii() -> None:
    rings = Rings(radii=(1.0, 2.0, 3.0), std=0.05)
    r = rings.sample(30_000, generator=torch.Generator().manual_seed(0)).norm(dim=1)
    assert abs(float(r.mean()) - 2.0) < 0.03
    nearest = (r[:, None] - torch.tensor([1.0, 2.0, 3.0]).double()).abs().min(1).values
    assert float(nearest.max()) < 0.05 * 6


def test_two_moons_has_no_density() -> None:
    moons = TwoMoons()
    with pytest.raises(NotImplementedError, match="two moons"):
        moons.log_prob(torch.zeros(3, 2, dtype=torch.float64))
    x = moons.sample(2_000, generator=torch.Generator().manual_seed(0))
    assert float(x.abs().max()) < 4


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: modes(5), "k"),
        (lambda: modes(0), "k"),
        (lambda: GaussianMixture([[0.0, 0.0, 0.0]]), "means"),
        (lambda: GaussianMixture(torch.zeros(0, 2)), "means"),
        (lambda: GaussianMixture([[0.0, 0.0]], stds=-1.0), "stds"),
        (lambda: GaussianMixture([[0.0, 0.0], [1.0, 1.0]], stds=[1.0, 1.0, 1.0]), "stds"),
        (lambda: GaussianMixture([[0.0, 0.0]], stds=float("nan")), "stds"),
        (lambda: GaussianMixture([[0.0, 0.0], [1.0, 1.0]], weights=[1.0, -1.0]), "weights"),
        (lambda: GaussianMixture([[0.0, 0.0], [1.0, 1.0]], weights=[1.0]), "weights"),
        (lambda: Checkerboard(size=0.0), "size"),
        (lambda: Rings(radii=()), "radii"),
        (lambda: Rings(radii=(1.0, -2.0)), "radii"),
        (lambda: Rings(std=0.0), "std"),
        (lambda: TwoMoons(noise=-0.1), "noise"),
    ],
)
def test_bad_constructor_arguments(build, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}: "):
        build()


@pytest.mark.parametrize("n", [0, -5, 2.5, True, "10"])
def test_bad_sample_size(n) -> None:
    with pytest.raises(ValueError, match="^n: "):
        four_modes().sample(n)


@pytest.mark.parametrize(
    "x, what",
    [
        (torch.zeros(3, 3, dtype=torch.float64), "shape"),
        (torch.zeros(2, dtype=torch.float64), "shape"),
        (torch.zeros(3, 2, dtype=torch.int64), "floating"),
        (torch.tensor([[0.0, math.nan]]), "finite"),
    ],
)
def test_bad_log_prob_input(x: torch.Tensor, what: str) -> None:
    for dist in EXACT.values():
        with pytest.raises(ValueError, match=rf"^x: .*{what}"):
            dist.log_prob(x)
