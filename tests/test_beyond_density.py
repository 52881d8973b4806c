"""The modules of notebook 09: the Knothe–Rosenblatt map, the reverse KL and importance
sampling, conditional couplings, flow matching (exact and Hutchinson traces), KDE and EM —
exactness in float64 against autograd, scipy and closed forms, and their bad inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats
import torch
from _bad_inputs import Bad, assert_named_error, ids

from coursekit.classical import GaussianKDE, fit_gmm
from coursekit.datasets import GaussianMixture, modes
from coursekit.datasets.conditional import SpreadModesFamily, spread_modes
from coursekit.flow_matching import (
    FlowMatchingModel,
    InterpolantPairs,
    VelocityField,
    divergence,
    flow_matching_loss,
    hutchinson_divergence,
    integrate,
)
from coursekit.flows import RealNVP
from coursekit.flows.conditional import ConditionalRealNVP, conditional_nll_loss
from coursekit.reverse_kl import (
    StandardNormal,
    Wells,
    effective_sample_size,
    importance_log_z,
    kl_both_ways,
    mode_masses,
    reverse_kl_loss,
    sample_with_log_q,
)
from coursekit.training import fit
from coursekit.triangular import MixtureTriangularMap

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomised(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


# ---------------------------------------------------------------- the triangular map


@pytest.fixture(scope="module")
def three_modes_map():
    return MixtureTriangularMap(modes(3))


def test_triangular_map_is_triangular_and_its_log_det_is_the_autograd_one(three_modes_map):
    x = modes(3).sample(6, generator=gen(0)) + 0.7 * torch.randn(6, 2, generator=gen(1), dtype=F64)
    _, log_det = three_modes_map(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda u: three_modes_map(u[None])[0][0], x[i])
        assert jac[0, 1] == 0  # z₁ does not depend on x₂
        assert jac[0, 0] > 0 and jac[1, 1] > 0  # increasing diagonal
        assert abs(float(torch.linalg.slogdet(jac)[1] - log_det[i])) < 1e-9


def test_triangular_map_gives_back_the_density_and_inverts(three_modes_map):
    p = modes(3)
    x = p.sample(500, generator=gen(2))
    assert float((three_modes_map.log_prob(x) - p.log_prob(x)).abs().max()) < 1e-10
    z, log_det = three_modes_map(x)
    x_back, log_det_inv = three_modes_map.inverse(z)
    assert float((x_back - x).abs().max()) < 1e-9
    assert float((log_det + log_det_inv).abs().max()) < 1e-8


def test_triangular_map_pushes_the_mixture_to_a_standard_normal(three_modes_map):
    z, _ = three_modes_map(modes(3).sample(20_000, generator=gen(3)))
    for i in range(2):
        assert scipy.stats.kstest(z[:, i].numpy(), "norm").pvalue > 1e-3
    assert float(z.mean(0).abs().max()) < 4 / math.sqrt(20_000)
    assert abs(float(torch.corrcoef(z.T)[0, 1])) < 4 / math.sqrt(20_000)


def test_triangular_map_far_tails_stay_finite():
    t = MixtureTriangularMap(GaussianMixture([(0.0, 0.0), (2.0, 1.0)], stds=[0.5, 1.0]))
    z, log_det = t(torch.tensor([[9.0, -9.0], [-9.0, 12.0]], dtype=F64))
    assert bool(torch.isfinite(z).all() and torch.isfinite(log_det).all())
    # z₁ = Φ⁻¹(F₁(x₁)) with F₁ = ½Φ(x₁/0.5) + ½Φ(x₁ − 2), from scipy's log-CDFs in the tails
    sf = 0.5 * scipy.stats.norm.sf(18.0) + 0.5 * scipy.stats.norm.sf(7.0)
    cdf = 0.5 * scipy.stats.norm.cdf(-18.0) + 0.5 * scipy.stats.norm.cdf(-11.0)
    assert abs(float(z[0, 0]) - scipy.stats.norm.isf(sf)) < 1e-8
    assert abs(float(z[1, 0]) - scipy.stats.norm.ppf(cdf)) < 1e-8


# ---------------------------------------------------------------- reverse KL, log Z


WELLS = Wells([[-3, -3], [3, 3], [3, -3], [-3, 3]], 0.5)


def test_wells_normaliser_is_exact():
    g = torch.linspace(-7, 7, 1401, dtype=F64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    grid = torch.stack([xx.flatten(), yy.flatten()], 1)
    z = float(torch.exp(-WELLS.energy(grid)).sum() * (g[1] - g[0]) ** 2)
    assert abs(math.log(z) - WELLS.log_z) < 1e-8
    x = WELLS.sample(10, generator=gen(0))
    truth = GaussianMixture(WELLS.centres, stds=0.5).log_prob(x)
    assert float((WELLS.log_prob(x) - truth).abs().max()) < 1e-12


def test_reverse_kl_loss_is_the_monte_carlo_reverse_kl_minus_log_z():
    flow = randomised(RealNVP(2, n_layers=4).double(), scale=0.1)
    eps = torch.randn(4000, 2, generator=gen(1), dtype=F64)
    loss = reverse_kl_loss(flow, WELLS.energy, eps)
    x, _ = flow.inverse(eps)
    by_density = (flow.log_prob(x) + WELLS.energy(x)).mean()
    assert abs(float(loss - by_density)) < 1e-10
    loss.backward()  # the gradient reaches the weights through x (reparameterisation)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_importance_log_z_of_an_exact_proposal_has_zero_error():
    target = spread_modes(2.0)
    x = target.sample(1000, generator=gen(0))
    log_w = target.log_prob(x) + 1.3 - target.log_prob(x)  # p̃ = e^{1.3} p, q = p
    est = importance_log_z(log_w)
    assert abs(est.mean - 1.3) < 1e-12 and est.se < 1e-12
    assert abs(effective_sample_size(log_w) - 1000) < 1e-6


def test_importance_log_z_matches_the_delta_method():
    log_w = torch.randn(50_000, generator=gen(4), dtype=F64)  # w log-normal, E w = e^{1/2}
    est = importance_log_z(log_w)
    w = log_w.exp()
    assert abs(est.mean - math.log(float(w.mean()))) < 1e-12
    assert abs(est.se - float(w.std() / w.mean()) / math.sqrt(len(w))) < 1e-12
    assert abs(est.mean - 0.5) < 4 * est.se
    assert abs(effective_sample_size(torch.tensor([0.0, -1e9], dtype=F64)) - 1) < 1e-9


def test_a_short_reverse_kl_training_lowers_the_loss_and_is_measured():
    torch.manual_seed(0)
    flow = RealNVP(2, n_layers=4)
    losses = fit(
        flow,
        StandardNormal(2),
        steps=60,
        batch_size=256,
        lr=5e-3,
        seed=0,
        progress=False,
        loss_fn=lambda m, e: reverse_kl_loss(m, WELLS.energy, e),
    ).losses
    assert losses[-1] < losses[0]
    x, log_q = sample_with_log_q(flow, 500, gen(1))
    assert x.shape == (500, 2) and log_q.shape == (500,) and x.dtype == F64
    masses = mode_masses(x, WELLS.centres)
    assert abs(sum(m.mean for m in masses) - 1) < 1e-12 and len(masses) == 4
    forward, reverse = kl_both_ways(flow, WELLS, n=500, generator=gen(2))
    assert reverse.mean > -0.1 and forward.mean > -0.1


# ---------------------------------------------------------------- conditional flows


def test_conditional_flow_is_a_flow_at_every_context():
    flow = randomised(ConditionalRealNVP(2, 1, n_layers=4, hidden=(16,)).double())
    x = torch.randn(7, 2, generator=gen(0), dtype=F64)
    c = torch.rand(7, 1, generator=gen(1), dtype=F64) * 3
    z, log_det = flow(x, c)
    x_back, log_det_inv = flow.inverse(z, c)
    assert float((x_back - x).abs().max()) < 1e-10
    assert float((log_det + log_det_inv).abs().max()) < 1e-10
    for i in range(len(x)):
        ci = c[i : i + 1]
        jac = torch.autograd.functional.jacobian(lambda u, ci=ci: flow(u[None], ci)[0][0], x[i])
        assert abs(float(torch.linalg.slogdet(jac)[1] - log_det[i])) < 1e-10
    # the context changes the map; a number is one context for every point
    assert not torch.allclose(flow(x, c + 1)[0], z)
    assert torch.allclose(flow(x, 1.5)[0], flow(x, torch.full((7, 1), 1.5, dtype=F64))[0])


def test_conditional_loss_and_family():
    family = SpreadModesFamily([1.0, 3.0])
    batch = family.sample(1000, generator=gen(0))
    assert batch.shape == (1000, 3) and set(batch[:, 2].tolist()) == {1.0, 3.0}
    far = batch[batch[:, 2] == 3.0, :2].abs().mean()
    assert 2.5 < float(far) < 3.5
    flow = ConditionalRealNVP(2, 1, n_layers=2, hidden=(8,)).double()
    loss = conditional_nll_loss(flow, batch)
    assert abs(float(loss + flow.log_prob(batch[:, :2], batch[:, 2:]).mean())) < 1e-12
    assert flow.sample(5, 2.0, generator=gen(1)).shape == (5, 2)


# ---------------------------------------------------------------- flow matching


def test_flow_matching_loss_regresses_on_the_line_velocity():
    v = VelocityField(2, (8,)).double()  # zero at initialisation
    batch = InterpolantPairs(modes(4)).sample(300, generator=gen(0))
    x1, x0 = batch[:, :2], batch[:, 2:4]
    assert abs(float(flow_matching_loss(v, batch) - ((x1 - x0) ** 2).sum(1).mean())) < 1e-12

    def exact(x, t):  # a velocity equal to x1 − x0 on the line: the loss is zero
        return (x1 - x0) + 0 * x

    assert float(flow_matching_loss(exact, batch)) == 0


def test_exact_and_hutchinson_divergences():
    v = randomised(VelocityField(3, (16,)).double())
    x = torch.randn(5, 3, generator=gen(0), dtype=F64)
    t = torch.full((5,), 0.3, dtype=F64)
    div = divergence(v, x, t)
    for i in range(5):
        jac = torch.autograd.functional.jacobian(lambda u: v(u[None], t[:1])[0], x[i])
        assert abs(float(torch.trace(jac) - div[i])) < 1e-12
    probes = torch.randn(20_000, 5, 3, generator=gen(1), dtype=F64)
    estimates = torch.stack([hutchinson_divergence(v, x, t, e) for e in probes[:2000]])
    assert float((estimates.mean(0) - div).abs().max()) < 5 * float(estimates.std(0).max()) / 40


def test_flow_matching_model_is_a_flow_with_eq_14():
    # a linear field v(x, t) = A x: z = e^{−A} x, log|det ∂z/∂x| = −tr A exactly
    a = torch.tensor([[0.3, 0.2], [-0.1, -0.4]], dtype=F64)

    class Linear(torch.nn.Module):
        dim = 2

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(a.clone())

        def forward(self, x, t):
            return x @ self.w.T

    model = FlowMatchingModel(Linear(), steps=40)
    x = torch.randn(4, 2, generator=gen(0), dtype=F64)
    z, log_det = model(x)
    assert float((z - x @ torch.linalg.matrix_exp(-a).T).abs().max()) < 1e-8
    assert float((log_det + torch.trace(a)).abs().max()) < 1e-10
    back = integrate(model.velocity, z, 0.0, 1.0, 40)
    assert float((back - x).abs().max()) < 1e-8
    assert model.sample(3, generator=gen(1)).shape == (3, 2)


# ---------------------------------------------------------------- KDE and EM


def test_kde_matches_scipy():
    x = modes(3).sample(400, generator=gen(0))
    kde = GaussianKDE(x)
    pts = torch.randn(50, 2, generator=gen(1), dtype=F64) * 2
    ref = scipy.stats.gaussian_kde(x.T.numpy()).logpdf(pts.T.numpy())
    assert np.allclose(kde.log_prob(pts, batch_size=7).numpy(), ref, rtol=1e-10, atol=1e-10)


def test_em_recovers_a_well_separated_mixture():
    truth = GaussianMixture([(-3.0, 0.0), (3.0, 1.0)], stds=[0.5, 1.0], weights=[0.3, 0.7])
    x = truth.sample(4000, generator=gen(0))
    gmm = fit_gmm(x, 2, generator=gen(1))
    order = gmm.means[:, 0].argsort()
    assert torch.allclose(gmm.weights[order], torch.tensor([0.3, 0.7], dtype=F64), atol=0.03)
    assert torch.allclose(gmm.means[order], truth.means, atol=0.1)
    xs = gmm.sample(5, generator=gen(2))
    assert xs.shape == (5, 2) and gmm.log_prob(xs).shape == (5,)


# ---------------------------------------------------------------- bad inputs

BAD = [
    Bad("triangular/mixture", lambda: MixtureTriangularMap(WELLS), ValueError, "^mixture:"),
    Bad(
        "triangular/x shape",
        lambda: MixtureTriangularMap(modes(2))(torch.zeros(3, 3)),
        ValueError,
        "^x:",
    ),
    Bad("wells/centres", lambda: Wells([1.0, 2.0]), ValueError, "^centres:"),
    Bad("wells/std", lambda: Wells([[0.0, 0.0]], std=-1.0), ValueError, "^std:"),
    Bad("normal/dim", lambda: StandardNormal(0), ValueError, "^dim:"),
    Bad("log_z/one weight", lambda: importance_log_z(torch.zeros(1)), ValueError, "^log_w:"),
    Bad("log_z/list", lambda: importance_log_z([0.0, 1.0]), ValueError, "^log_w:"),
    Bad("cond/context_dim", lambda: ConditionalRealNVP(2, 0), ValueError, "^context_dim:"),
    Bad("cond/dim", lambda: ConditionalRealNVP(1, 1), ValueError, "^dim:"),
    Bad(
        "cond/c rows",
        lambda: ConditionalRealNVP(2, 1)(torch.zeros(3, 2), torch.zeros(2, 1)),
        ValueError,
        "^c:",
    ),
    Bad("family/contexts", lambda: SpreadModesFamily([]), ValueError, "^contexts:"),
    Bad("spread/c", lambda: spread_modes(-1.0), ValueError, "^c:"),
    Bad("pairs/target", lambda: InterpolantPairs(3), ValueError, "^target:"),
    Bad(
        "integrate/steps",
        lambda: integrate(lambda x, t: x, torch.zeros(1, 2), 0, 1, 0),
        ValueError,
        "^steps:",
    ),
    Bad("kde/data", lambda: GaussianKDE(torch.zeros(1, 2)), ValueError, "^data:"),
    Bad("gmm/k", lambda: fit_gmm(torch.zeros(3, 2), 5), ValueError, "^data:"),
    Bad("gmm/k zero", lambda: fit_gmm(torch.zeros(3, 2), 0), ValueError, "^k:"),
]


@pytest.mark.parametrize("case", BAD, ids=ids(BAD))
def test_bad_inputs(case: Bad) -> None:
    assert_named_error(case)


# ---------------------------------------------------------------- the benchmark of notebook 09


def _benchmark_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "beyond_density.py"
    spec = importlib.util.spec_from_file_location("beyond_density_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_benchmark_has_every_part_for_five_seeds_with_the_scripts_settings():
    from coursekit.bands import benchmark_results

    bench = _benchmark_module()
    data = benchmark_results("beyond_density")
    assert data["settings"]["live"] == bench.LIVE
    assert data["settings"]["seeds"] == list(bench.SEEDS) and len(bench.SEEDS) >= 5
    keys = {(r["part"], r["model"], r["seed"]) for r in data["runs"]}
    parts = ["triangular", "reverse", "forward", "conditional", "flow matching"]
    for seed in bench.SEEDS:
        assert all((p, "", seed) in keys for p in parts)
        assert all(("equal cpu", m, seed) in keys for m in (*bench.EQUAL_MODELS, "KDE", "GMM"))
    assert "| flow matching |" in bench.report(data)


def test_benchmark_quick_run_writes_its_rows_and_resumes(tmp_path, capsys):
    bench = _benchmark_module()
    out = tmp_path / "quick.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["runs"]
    assert len(rows) == 2 * 10
    assert bench.main(["--quick", "--out", str(out)]) == 0  # everything done: nothing reruns
    assert len(json.loads(out.read_text())["runs"]) == 20
    assert "| 4 modes, equal CPU / classical |" in capsys.readouterr().out
