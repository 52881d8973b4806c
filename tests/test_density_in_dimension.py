"""The four modes in d dimensions, the MLP density in d dimensions, the importance-sampled
normaliser, and the benchmarks that notebooks 01 and 05 read (density_in_dimension, live_bands):
a fast run of each script's code path, and the committed results checked against the claims
the notebooks print."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _benchmarks import BENCHMARKS, import_benchmark

from coursekit.datasets import PlaneFourModes, four_modes
from coursekit.mlp_density import (
    MLPDensity,
    MonteCarloMLPDensity,
    grid_log_normalizer,
    grid_log_normalizer_nd,
    importance_log_normalizer,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_net(module: torch.nn.Module, seed: int = 0, scale: float = 0.4) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_plane_four_modes_is_the_slides_mixture_on_a_rotated_plane() -> None:
    x2 = four_modes().sample(500, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(PlaneFourModes(2).log_prob(x2), four_modes().log_prob(x2), atol=1e-12)
    target = PlaneFourModes(6, seed=3)
    means = target.means
    assert means.shape == (4, 6)
    # the centres keep their 2-D geometry: |c_k| = 2√2, and c_k · c_j as for (±2, ±2)
    plane = torch.tensor([[-2.0, -2.0], [2.0, 2.0], [2.0, -2.0], [-2.0, 2.0]], dtype=torch.float64)
    assert torch.allclose(means @ means.T, plane @ plane.T, atol=1e-12)
    assert (means.abs() > 1e-3).sum() > 8  # not aligned with the axes
    # the exact density, written out
    x = target.sample(300, generator=torch.Generator().manual_seed(1))
    sq = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    want = (
        torch.logsumexp(-sq / (2 * 0.25), dim=1)
        - math.log(4)
        - 6 * math.log(0.5 * math.sqrt(2 * math.pi))
    )
    assert torch.allclose(target.log_prob(x), want, atol=1e-12)
    # samples: mean 0, covariance σ² I + (1/4) Σ c_k c_kᵀ
    xs = target.sample(200_000, generator=torch.Generator().manual_seed(2))
    cov = 0.25 * torch.eye(6, dtype=torch.float64) + means.T @ means / 4
    assert (xs.mean(0).abs() < 0.03).all() and (torch.cov(xs.T) - cov).abs().max() < 0.05
    with pytest.raises(ValueError, match="dim"):
        PlaneFourModes(1)
    with pytest.raises(ValueError, match="x"):
        target.log_prob(x[:, :5])


def test_mlp_density_in_three_dimensions_is_normalised_on_its_grid() -> None:
    model = MLPDensity(hidden=(8, 8), lo=-2.0, hi=2.0, grid_size=12, dim=3).double()
    _random_net(model)
    assert model.grid_points.shape == (12**3, 3) and "[-2, 2]³" in repr(model)
    log_z = float(model.log_normalizer().detach())
    assert log_z == pytest.approx(grid_log_normalizer_nd(model.net, 3, 12, -2.0, 2.0), abs=1e-6)
    assert grid_log_normalizer(model, 12) == pytest.approx(log_z, abs=1e-6)
    with torch.no_grad():
        total = float(model.log_prob(model.grid_points.double()).exp().sum()) * model.cell_area
    assert total == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="x"):
        model.log_prob(torch.zeros(4, 2, dtype=torch.float64))


def test_monte_carlo_normaliser_in_dimension_d() -> None:
    model = MonteCarloMLPDensity(hidden=(8,), lo=-2.0, hi=2.0, samples=20_000, seed=1, dim=3)
    model = model.double()
    _random_net(model, seed=2)
    exact = grid_log_normalizer_nd(model.net, 3, 40, -2.0, 2.0)
    assert float(model.log_normalizer().detach()) == pytest.approx(exact, abs=0.02)
    assert "[-2, 2]³" in repr(model) and "^8" in repr(MonteCarloMLPDensity(dim=8))


def test_importance_normaliser_agrees_with_the_grid_in_two_dimensions() -> None:
    model = MLPDensity(hidden=(16, 16), grid_size=10).double()
    _random_net(model, seed=4)
    exact = grid_log_normalizer(model, 500)
    est = importance_log_normalizer(
        model, four_modes(), n=100_000, generator=torch.Generator().manual_seed(0)
    )
    assert est.n == 100_000 and 0 < est.se < 0.05
    assert abs(est.mean - exact) < 4 * est.se
    with pytest.raises(TypeError, match="proposal"):
        importance_log_normalizer(model, object())


def test_density_in_dimension_runs_and_skips_the_grid_beyond_its_memory(tmp_path) -> None:
    bench = import_benchmark("density_in_dimension")
    bench.KL_SAMPLES, bench.Z_SAMPLES = 1_000, 2_000
    out = tmp_path / "dim.json"
    args = ["--dims", "2", "4", "--seeds", "0", "1", "--seconds", "0.05", "--out", str(out)]
    result = bench.main(args)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["command"].endswith(f"--out {out}")
    summary = result["summary"]
    assert set(summary["flow"]) == set(summary["mc_mlp"]) == {"2", "4"}
    assert set(summary["grid_mlp"]) == {"2"}  # d = 4 needs more than a gigabyte
    assert result["grid_memory_bytes"]["4"] > 1e9 > result["grid_memory_bytes"]["2"]
    for row in result["rows"]:
        assert math.isfinite(row["kl"]) and row["kl_se"] >= 0 and row["steps"] >= 1
        assert row["method"] == "flow" or math.isfinite(row["log_z"])


def test_committed_density_in_dimension_results_support_the_notebooks() -> None:
    result = json.loads((BENCHMARKS / "density_in_dimension.json").read_text())
    assert result["dims"] == [2, 3, 4, 6, 8] and len(result["seeds"]) >= 5
    summary = result["summary"]
    kl = {m: {int(d): r["kl_mean"] for d, r in summary[m].items()} for m in summary}
    assert all(r["seeds"] == len(result["seeds"]) for m in summary for r in summary[m].values())
    assert max(kl["flow"].values()) < 0.1
    assert kl["grid_mlp"][2] < kl["flow"][2] and set(kl["grid_mlp"]) == {2, 3}
    assert kl["mc_mlp"][2] < kl["mc_mlp"][4] < kl["mc_mlp"][6] < kl["mc_mlp"][8]
    assert kl["mc_mlp"][8] > 100 * kl["mc_mlp"][2]


@pytest.mark.parametrize("notebook", ["01", "05"])
def test_committed_live_bands_match_their_script(notebook: str) -> None:
    bench = import_benchmark("live_bands")
    result = json.loads((BENCHMARKS / f"live_bands_{notebook}.json").read_text())
    assert result["settings"] == json.loads(json.dumps(bench.SETTINGS[notebook]))
    assert result["seeds"] == list(range(10))
    lengths = {len(values) for values in result["figures"].values()}
    assert lengths == {10} and all(
        math.isfinite(v) for values in result["figures"].values() for v in values
    )


def test_live_bands_reads_the_code_the_notebooks_write() -> None:
    bench = import_benchmark("live_bands")
    ns = bench.notebook_namespace("05", ["Coupling", "OurRealNVP", "train_by_hand"])
    flow = ns["OurRealNVP"](2, n_layers=2, hidden=(4,))
    losses = ns["train_by_hand"](flow, four_modes(), steps=2, batch_size=8)
    assert len(losses) == 2
    extra = {"bench": {"settings": {"finite_data": {}}}}
    ns = bench.notebook_namespace("01", ["train_on_fixed_data"], extra)
    assert callable(ns["train_on_fixed_data"])
    with pytest.raises(RuntimeError, match="defines none"):
        bench.notebook_namespace("01", ["no_such_function"])
