"""coursekit.practice: zuko's direction and log-det against the course's (eq. 14), the KL
estimate with its standard error, the gap mass, and fit's CPU-time clock."""

from __future__ import annotations

import math

import pytest
import torch
import zuko
from torch import nn

from coursekit.datasets import four_modes, modes
from coursekit.flows import RealNVP
from coursekit.flows.base import standard_normal_log_prob
from coursekit.grid import integrate_on_grid, make_grid
from coursekit.metrics import kl_to_target, kl_with_se
from coursekit.practice import (
    FLOW_NAMES,
    Estimate,
    ZukoDensity,
    build_flow,
    gap_mass,
    gap_region,
    parameter_count,
    summarise,
    summarise_runs,
    zuko_flow,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ZUKO = ["RealNVP", "MAF", "NSF"]


def random_zuko(name: str, seed: int = 0) -> nn.Module:
    """A float64 zuko flow with random (non-identity) weights."""
    torch.manual_seed(seed)
    flow = zuko_flow(name, 2).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return flow


def points(n: int = 64, seed: int = 1) -> torch.Tensor:
    return 2.0 * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)).double()


@pytest.mark.parametrize("name", ZUKO)
def test_zuko_transform_maps_x_to_z_and_log_prob_is_eq_14(name: str) -> None:
    """zuko's transform goes data → noise (the course's f): log p(x) = log N(f(x)) + ladj."""
    flow = random_zuko(name)
    x = points()
    dist = flow()
    z = dist.transform(x)
    ladj = dist.transform.log_abs_det_jacobian(x, z)
    expected = standard_normal_log_prob(z) + ladj
    assert torch.allclose(dist.log_prob(x), expected, rtol=0, atol=1e-10)
    # the base is N(0, I), so its log-density is the course's standard_normal_log_prob
    assert torch.allclose(dist.base.log_prob(z), standard_normal_log_prob(z), atol=1e-12)


@pytest.mark.parametrize("name", ZUKO)
def test_zuko_density_has_the_course_interface(name: str) -> None:
    model = ZukoDensity(random_zuko(name))
    x = points()
    z, log_det = model(x)
    x_back, log_det_inv = model.inverse(z)
    assert z.shape == x.shape and log_det.shape == (x.shape[0],)
    assert torch.allclose(x_back, x, rtol=0, atol=1e-10)
    assert torch.allclose(log_det + log_det_inv, torch.zeros_like(log_det), atol=1e-10)
    assert torch.allclose(
        model.log_prob(x), standard_normal_log_prob(z) + log_det, rtol=0, atol=1e-10
    )
    # log|det ∂z/∂x| is the slogdet of the autograd Jacobian of the transform
    for xi, ld in zip(x[:4], log_det[:4], strict=True):
        jac = torch.autograd.functional.jacobian(lambda v: model(v[None])[0][0], xi)
        assert abs(float((torch.linalg.slogdet(jac).logabsdet - ld).detach())) < 1e-10


def test_zuko_direction_is_the_opposite_of_torch_distributions() -> None:
    """TransformedDistribution(base, g) has density p(g⁻¹(x)) |det ∂g⁻¹/∂x|: its transforms go
    noise → data, so it needs zuko's inverse to give the same density."""
    flow = random_zuko("MAF")
    dist = flow()
    same = torch.distributions.TransformedDistribution(dist.base, [dist.transform.inv])
    x = points()
    assert torch.allclose(same.log_prob(x), dist.log_prob(x), atol=1e-10)


def test_zuko_density_samples_are_reproducible_and_follow_the_inverse() -> None:
    model = ZukoDensity(random_zuko("NSF"))
    a = model.sample(100, generator=torch.Generator().manual_seed(3))
    b = model.sample(100, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(100, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x, _ = model.inverse(0.5 * eps)
    cold = model.sample(100, temperature=0.5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (100, 2) and torch.equal(a, b)
    assert torch.allclose(cold, x, atol=1e-12)


def test_build_flow_gives_the_four_flows_and_is_seeded() -> None:
    models = {name: build_flow(name, seed=0) for name in FLOW_NAMES}
    assert isinstance(models["course RealNVP"], RealNVP)
    assert all(isinstance(models[n], ZukoDensity) for n in FLOW_NAMES[1:])
    x = points().float()
    for name in FLOW_NAMES:
        again = build_flow(name, seed=0)
        assert torch.equal(again.log_prob(x), models[name].log_prob(x))
        assert parameter_count(models[name]) > 1_000
        assert models[name].log_prob(x).shape == (x.shape[0],)


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match="name"):
        build_flow("Glow")
    with pytest.raises(ValueError, match="name"):
        zuko_flow("IAF")
    with pytest.raises(TypeError, match="flow"):
        ZukoDensity(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="x"):
        ZukoDensity(zuko.flows.MAF(2)).log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="target"):
        kl_with_se(build_flow("zuko MAF"), object())
    with pytest.raises(ValueError, match="threshold"):
        gap_region(torch.zeros(2, 2), four_modes(), threshold=-1.0, half_width=2.0)
    with pytest.raises(ValueError, match="values"):
        summarise([])


class TargetAsModel(nn.Module):
    """A 'model' whose density is exactly the target's, in float64."""

    def __init__(self, target: object, shift: float = 0.0) -> None:
        super().__init__()
        self.target = target
        self.shift = nn.Parameter(torch.tensor(shift, dtype=torch.float64))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.target.log_prob(x - self.shift)


def test_kl_with_se_is_zero_for_the_truth_and_matches_kl_to_target() -> None:
    target = four_modes()
    exact = kl_with_se(TargetAsModel(target), target, n=5_000, generator=torch.Generator())
    assert exact.mean == 0.0 and exact.se == 0.0 and exact.n == 5_000
    model = TargetAsModel(target, shift=0.3)
    est = kl_with_se(model, target, n=5_000, generator=torch.Generator().manual_seed(0))
    ref = kl_to_target(model, target, n=5_000, generator=torch.Generator().manual_seed(0))
    assert abs(est.mean - ref) < 1e-10
    x = target.sample(5_000, generator=torch.Generator().manual_seed(0))
    diffs = target.log_prob(x) - model.log_prob(x).detach()
    assert abs(est.se - float(diffs.std()) / math.sqrt(5_000)) < 1e-12
    # in batches too (the draws then differ from one batch of 5,000: compare like with like)
    again = kl_with_se(
        model, target, n=5_000, generator=torch.Generator().manual_seed(0), batch_size=999
    )
    ref = kl_to_target(
        model, target, n=5_000, generator=torch.Generator().manual_seed(0), batch_size=999
    )
    assert abs(again.mean - ref) < 1e-10


def test_kl_with_se_of_a_shifted_gaussian_matches_the_closed_form() -> None:
    """KL(N(0, σ²I) ‖ N(δ, σ²I)) = |δ|²/(2σ²): within 4 standard errors."""
    target = modes(1)  # N(0, 0.25 I)
    delta = 0.4
    est = kl_with_se(
        TargetAsModel(target, shift=delta), target, n=20_000, generator=torch.Generator()
    )
    closed = 2 * delta**2 / (2 * 0.25)
    assert abs(est.mean - closed) < 4 * est.se, (est, closed)


def test_gap_region_and_mass_of_the_truth() -> None:
    target = four_modes()
    peak = float(target.log_prob(target.means[:1]).exp())
    threshold = 0.01 * peak
    x = torch.tensor([[0.0, 0.0], [2.0, 2.0], [0.0, 2.0], [3.9, 0.0], [2.0, 0.3]])
    mask = gap_region(x, target, threshold, half_width=2.0)
    # centre: in the gap; a mode: not; between two modes: in the gap; outside the box: not;
    # 1.7 (= 3.4 σ) below a mode: density exp(-1.7²/(2·0.25)) ≈ 0.003 of the peak, a gap
    assert mask.tolist() == [True, False, True, False, True]
    # the true gap mass by Monte Carlo agrees with the integral of p over G on a fine grid
    est = gap_mass(
        target.sample(100_000, generator=torch.Generator().manual_seed(0)),
        target,
        threshold,
        half_width=2.0,
    )
    grid = make_grid(-2.0, 2.0, 801)
    dens = target.log_prob(grid.points).exp()
    inside = gap_region(grid.points, target, threshold, half_width=2.0)
    exact = integrate_on_grid(torch.where(inside, dens, torch.zeros_like(dens)), grid)
    assert abs(est.mean - exact) < 4 * est.se, (est, exact)
    assert abs(est.se - math.sqrt(est.mean * (1 - est.mean) / 100_000)) < 1e-6


def test_summarise_is_mean_and_standard_error() -> None:
    s = summarise([1.0, 2.0, 3.0, 4.0])
    assert isinstance(s, Estimate)
    assert s.mean == 2.5 and abs(s.se - math.sqrt(5 / 3) / 2) < 1e-12 and s.n == 4
    assert str(s) == "2.5000 ± 0.6455"
    assert summarise([1.0]).se == math.inf


def test_summarise_runs_groups_and_summarises() -> None:
    runs = [
        {"model": "a", "target": "t", "kl": 1.0},
        {"model": "b", "target": "t", "kl": 5.0},
        {"model": "a", "target": "t", "kl": 3.0},
    ]
    table = summarise_runs(runs, by=("target", "model"), value="kl")
    assert list(table) == [("t", "a"), ("t", "b")]
    assert table[("t", "a")].mean == 2.0 and abs(table[("t", "a")].se - 1.0) < 1e-12
    assert table[("t", "b")].n == 1
    with pytest.raises(ValueError, match="runs: row 0"):
        summarise_runs(runs, by=("seed",), value="kl")
    with pytest.raises(ValueError, match="by"):
        summarise_runs(runs, by=(), value="kl")
