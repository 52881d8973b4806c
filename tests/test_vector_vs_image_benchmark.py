"""benchmarks/vector_vs_image_mnist.py (notebook 06, section 4) and the vector flow on images
it trains (``coursekit.flows.flattened``): a few steps on synthetic images (no MNIST needed),
the committed results' structure, and the exactness bars of the wrapper (float64)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _benchmarks import BENCHMARKS, import_benchmark

from coursekit.flows import Logit, RealNVP, image_bits_per_dim
from coursekit.flows.flattened import FlattenedImageFlow, Reshape

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vvi():
    return import_benchmark("vector_vs_image_mnist")


def _images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)


def test_one_run_records_every_models_figures(vvi, monkeypatch):
    monkeypatch.setitem(vvi.SETTINGS, "fit", {**vvi.SETTINGS["fit"], "steps": 2, "warmup": 1})
    monkeypatch.setitem(vvi.SETTINGS, "vector_cpu_steps", 3)
    monkeypatch.setitem(vvi.SETTINGS, "notebook_test_images", 4)
    row = vvi.run(5, _images(64, 0), _images(8, 1))
    assert row["seed"] == 5 and set(row) == {"seed", *vvi.MODELS}
    assert [row[m]["steps"] for m in vvi.MODELS] == [2, 2, 3]
    assert row["image"]["parameters"] == 141_228 and row["vector"]["parameters"] == 156_928
    for name in vvi.MODELS:
        figures = row[name]
        for key in ("before_500", "after_500", "test_bits_per_dim", "train_cpu_s"):
            assert math.isfinite(figures[key]) and figures[key] >= 0, (name, key)
        # before training every coupling is the identity: both models are the logit alone
        assert figures["before_500"] == pytest.approx(row["image"]["before_500"], rel=1e-5)
    data = {"runs": [row, {**row, "seed": 6}]}
    s = vvi.summary(data)
    assert set(s) == set(vvi.MODELS) and s["vector"]["se"] == 0.0
    assert s["image"]["test_bits_per_dim"] == row["image"]["test_bits_per_dim"]


def test_the_committed_results_have_five_seeds_of_each_model(vvi):
    data = json.loads((BENCHMARKS / "vector_vs_image_mnist.json").read_text())
    assert data["settings"] == vvi.SETTINGS
    assert data["test_images"] == 10_000 and "--seeds" in data["command"]
    assert len(data["runs"]) >= 5 and len({r["seed"] for r in data["runs"]}) == len(data["runs"])
    for r in data["runs"]:
        for name in vvi.MODELS:
            figures = r[name]
            assert 0 < figures["test_bits_per_dim"] < 8 and 0 < figures["after_500"] < 8
            assert figures["before_500"] > figures["after_500"]
    assert data["runs"][0]["vector_cpu"]["steps"] > data["runs"][0]["vector"]["steps"]


def test_the_settings_are_the_notebooks(vvi):
    s = vvi.SETTINGS
    assert s["fit"] == {"steps": 400, "batch_size": 64, "lr": 5e-3, "warmup": 50, "clip_grad": 10.0}
    assert s["notebook_test_images"] == 500 and s["eval_seed"] == 1234 and s["alpha"] == 1e-5


def _random_vector_flow(seed: int) -> FlattenedImageFlow:
    flow = FlattenedImageFlow(RealNVP(784, n_layers=3, hidden=(8,)), alpha=1e-3).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():  # non-identity weights (the last layers start at zero)
            p.copy_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow


def test_the_wrapper_is_the_vector_flow_on_the_flattened_logit_image():
    flow = _random_vector_flow(0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 1, 28, 28, generator=g, dtype=torch.float64)
    y, ld_logit = Logit(1e-3)(x)
    vector = RealNVP(784, n_layers=3, hidden=(8,)).double()
    vector.transform = flow.core.layers[1]  # the same couplings, used as a vector flow
    expected = vector.log_prob(y.flatten(1)) + ld_logit
    assert (flow.log_prob(x) - expected).abs().max() < 1e-10
    z, ld = flow(x)
    x_back, ld_back = flow.inverse(z)
    assert z.shape == x.shape and (x_back - x).abs().max() < 1e-10
    assert (ld + ld_back).abs().max() < 1e-10
    s = flow.sample(3, temperature=0.5, generator=torch.Generator().manual_seed(2))
    assert s.shape == (3, 1, 28, 28) and 0 <= float(s.min()) and float(s.max()) <= 1
    k = _images(6, 3)
    bpd = image_bits_per_dim(flow, k, generator=torch.Generator().manual_seed(4))
    assert math.isfinite(bpd)


def test_the_wrapper_log_det_is_the_autograd_jacobians():
    flow = FlattenedImageFlow(RealNVP(4, n_layers=2, hidden=(4,)), image_shape=(1, 2, 2)).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = torch.rand(1, 1, 2, 2, generator=g, dtype=torch.float64) * 0.8 + 0.1
    jac = torch.autograd.functional.jacobian(
        lambda t: flow(t.view(1, 1, 2, 2))[0].flatten(), x.flatten()
    )
    with torch.no_grad():
        _, ld = flow(x)
    assert abs(float(torch.linalg.slogdet(jac)[1]) - float(ld)) < 1e-10


def test_bad_inputs_name_the_argument():
    with pytest.raises(TypeError, match="vector_flow"):
        FlattenedImageFlow(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="vector_flow: .*784"):
        FlattenedImageFlow(RealNVP(10))
    with pytest.raises(ValueError, match="image_shape"):
        FlattenedImageFlow(RealNVP(784), image_shape=(28, 28))
    with pytest.raises(ValueError, match="out_shape"):
        Reshape((1, 2, 2), (5,))
    flow = FlattenedImageFlow(RealNVP(784, n_layers=2, hidden=(4,)))
    with pytest.raises(ValueError, match="x"):
        flow.log_prob(torch.full((2, 1, 28, 28), 2.0))
