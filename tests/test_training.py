"""``fit``: it learns, it is reproducible, and it stops cleanly (NaN, time budget, bad args)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from coursekit.datasets import modes
from coursekit.flows import RealNVP
from coursekit.metrics import nll
from coursekit.training import History, TrainingDivergedError, fit, seed_everything
from coursekit.training_run import fit_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_flow(seed: int = 0) -> RealNVP:
    torch.manual_seed(seed)
    return RealNVP(2, n_layers=4, hidden=(16,))


class Gaussian(nn.Module):
    """``N(μ, exp(2ρ) I)`` on R², a tiny density model with two parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(2))
        self.log_std = nn.Parameter(torch.zeros(()))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        u = (x - self.mu) / self.log_std.exp()
        return -0.5 * (u**2).sum(1) - 2 * self.log_std - math.log(2 * math.pi)


def test_fit_reduces_the_nll_of_a_flow_on_toy_data() -> None:
    target = modes(2)
    test_x = target.sample(2_000, generator=torch.Generator().manual_seed(9), dtype=torch.float32)
    model = small_flow()
    with torch.no_grad():
        before = float(nll(model, test_x))
    history = fit(model, target, steps=200, batch_size=128, lr=1e-2, progress=False)
    with torch.no_grad():
        after = float(nll(model, test_x))
    assert isinstance(history, History)
    assert history.steps == 200 and len(history.losses) == 200
    assert not history.stopped_by_time
    assert after < before - 0.5, (before, after)
    assert sum(history.losses[-20:]) / 20 < sum(history.losses[:20]) / 20 - 0.5
    assert not model.training  # fit leaves the model in eval mode


def test_fit_recovers_the_gaussian_mle_from_a_data_tensor() -> None:
    """Minimising the NLL of a Gaussian converges to the closed-form MLE (eq. 2-4)."""
    gen = torch.Generator().manual_seed(0)
    data = torch.tensor([1.0, -2.0]) + 0.7 * torch.randn(4_000, 2, generator=gen)
    model = Gaussian()
    fit(model, data, steps=300, batch_size=1_000, lr=0.05, progress=False)
    mle_mu = data.mean(0)
    mle_std = ((data - mle_mu) ** 2).mean().sqrt()
    assert (model.mu.detach() - mle_mu).abs().max() < 0.02
    assert abs(float(model.log_std.detach().exp()) - float(mle_std)) < 0.02


def test_seeding_gives_identical_losses() -> None:
    base = small_flow()
    runs = [
        fit(copy.deepcopy(base), modes(4), steps=30, batch_size=64, seed=7, progress=False)
        for _ in range(2)
    ]
    assert runs[0].losses == runs[1].losses
    other = fit(copy.deepcopy(base), modes(4), steps=30, batch_size=64, seed=8, progress=False)
    assert other.losses != runs[0].losses
    data = modes(4).sample(500, generator=torch.Generator().manual_seed(0))
    tensor_runs = [
        fit(copy.deepcopy(base), data, steps=20, batch_size=64, seed=3, progress=False)
        for _ in range(2)
    ]
    assert tensor_runs[0].losses == tensor_runs[1].losses


def test_seed_everything_returns_a_seeded_generator() -> None:
    gen = seed_everything(11)
    a = torch.rand(3)
    b = torch.rand(3, generator=gen)
    seed_everything(11)
    assert torch.equal(a, torch.rand(3))
    assert torch.equal(b, torch.rand(3, generator=torch.Generator().manual_seed(11)))


class Diverges(nn.Module):
    """A model whose log-likelihood becomes ``bad_value`` (NaN or -Inf) at a given call."""

    def __init__(self, bad_call: int, bad_value: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.calls = 0
        self.bad_call = bad_call
        self.bad_value = bad_value

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = -(self.w * x).pow(2).sum(1)
        return out + self.bad_value if self.calls == self.bad_call else out


@pytest.mark.parametrize("bad_value", [math.nan, -math.inf])
def test_divergence_raises_naming_the_step(bad_value: float) -> None:
    model = Diverges(bad_call=4, bad_value=bad_value)
    with pytest.raises(TrainingDivergedError, match=r"at step 4\b") as info:
        fit(model, modes(1), steps=10, batch_size=8, progress=False)
    assert "lr" in str(info.value)  # suggests a remedy
    assert not model.training


def test_max_seconds_stops_early() -> None:
    ticks = iter(range(10**6))  # a clock that advances one second each time it is read

    history = fit_run(
        Gaussian(),
        modes(1),
        steps=10_000,
        batch_size=8,
        max_seconds=30.0,
        progress=False,
        clock=lambda: float(next(ticks)),
    )
    assert history.stopped_by_time
    assert 1 <= history.steps < 30 and history.seconds >= 30.0  # the budget, on this clock
    # the cosine schedule is stretched over the time budget: the learning rate decayed
    assert history.learning_rates[-1] < history.learning_rates[0]


def test_learning_rate_schedules() -> None:
    cos = fit(Gaussian(), modes(1), steps=50, batch_size=8, lr=0.01, progress=False)
    assert cos.learning_rates[0] == pytest.approx(0.01)
    assert cos.learning_rates[25] == pytest.approx(0.005)
    assert cos.learning_rates[-1] < 1e-4
    const = fit(
        Gaussian(), modes(1), steps=20, batch_size=8, lr=0.01, schedule="constant", progress=False
    )
    assert const.learning_rates == [0.01] * 20


def test_clip_grad_bounds_the_gradient_norm() -> None:
    def steep(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return 1e6 * (model.mu**2).sum() + 1e6 * model.log_std**2 - 1e6 * batch.mean()

    model = Gaussian()
    with torch.no_grad():
        model.mu.fill_(1.0)
    fit(model, modes(1), steps=3, batch_size=8, clip_grad=0.5, loss_fn=steep, progress=False)
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert float(norm) <= 0.5 + 1e-6
    model = Gaussian()
    with torch.no_grad():
        model.mu.fill_(1.0)
    fit(model, modes(1), steps=3, batch_size=8, clip_grad=None, loss_fn=steep, progress=False)
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert float(norm) > 1e3


def test_history_smoothed() -> None:
    h = History(losses=[float(i) for i in range(10)])
    assert h.smoothed(window=5) == pytest.approx([2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    assert h.smoothed(window=20).tolist() == h.losses


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"steps": 0}, "steps"),
        ({"steps": 1.5}, "steps"),
        ({"batch_size": -1}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"max_seconds": 0}, "max_seconds"),
        ({"clip_grad": -1.0}, "clip_grad"),
        ({"schedule": "linear"}, "schedule"),
        ({"data": torch.zeros(0, 2)}, "data"),
        ({"data": torch.tensor([[0.0, math.nan]])}, "data"),
        ({"data": torch.zeros(4, 2, dtype=torch.int64)}, "data"),
        ({"model": nn.Identity()}, "model"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, name: str) -> None:
    args = {"model": Gaussian(), "data": modes(1), "steps": 5, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=rf"^{name}: "):
        fit(**args)


def test_arguments_of_a_wrong_type_raise_type_error() -> None:
    with pytest.raises(TypeError, match="^data: "):
        fit(Gaussian(), "four modes", steps=5, progress=False)
    with pytest.raises(TypeError, match="^progress: "):
        fit(Gaussian(), modes(1), steps=5, progress="no")


def _reference_adam_run(model, batches, lr, weight_decay, clip):
    """``torch.optim.Adam`` (per-tensor loop) and ``clip_grad_norm_``: the reference update."""
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=False)
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        (-model.log_prob(batch).mean()).backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()


@pytest.mark.parametrize(("weight_decay", "clip"), [(0.0, 10.0), (1e-2, 0.05)])
def test_flat_adam_matches_torch_adam_with_clipping(weight_decay, clip) -> None:
    """FlatAdam (fit's optimizer) makes the same updates as torch's Adam + clip_grad_norm_.

    float64, 15 steps on a small flow; ``clip=0.05`` makes the clipping bite on every step.
    """
    from coursekit.optim import FlatAdam

    reference = small_flow().double()
    flat_model = copy.deepcopy(reference)
    gen = torch.Generator().manual_seed(3)
    batches = [torch.randn(64, 2, generator=gen, dtype=torch.float64) for _ in range(15)]
    _reference_adam_run(reference, batches, 3e-3, weight_decay, clip)

    params = list(flat_model.parameters())
    optimizer = FlatAdam(params, lr=3e-3, weight_decay=weight_decay)
    norms = []
    for batch in batches:
        optimizer.zero_grad()
        (-flat_model.log_prob(batch).mean()).backward()
        norms.append(float(optimizer.clip_grad_norm(clip)))
        optimizer.step()
    if clip < 1:
        assert min(norms) > clip  # the clipping did act
    for (name, p_ref), p in zip(reference.named_parameters(), params, strict=True):
        torch.testing.assert_close(p, p_ref, rtol=0, atol=1e-12, msg=name)
        assert not torch.equal(p, small_flow().double().state_dict()[name])  # it moved


def test_flat_adam_survives_a_loss_that_resets_the_gradients() -> None:
    """A loss_fn that calls ``model.zero_grad()`` (grads set to None) still trains correctly."""
    from coursekit.optim import FlatAdam

    model = small_flow().double()
    reference = copy.deepcopy(model)
    batch = torch.randn(32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    optimizer = FlatAdam(list(model.parameters()), lr=1e-3)
    for _ in range(3):
        optimizer.zero_grad()
        model.zero_grad(set_to_none=True)  # detaches the flat gradient's views
        (-model.log_prob(batch).mean()).backward()
        optimizer.clip_grad_norm(10.0)
        optimizer.step()
    _reference_adam_run(reference, [batch] * 3, 1e-3, 0.0, 10.0)
    for p, p_ref in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, p_ref, rtol=0, atol=1e-12)


def test_flat_adam_rejects_mixed_dtypes_and_fit_falls_back() -> None:
    from coursekit.optim import FlatAdam

    mixed = [nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.float64))]
    with pytest.raises(ValueError, match="params: expected parameters of one dtype"):
        FlatAdam(mixed, lr=1e-3)
    with pytest.raises(ValueError, match="params: expected at least one"):
        FlatAdam([], lr=1e-3)
    model = Gaussian()
    model.log_std.data = model.log_std.data.double()  # mixed dtypes: torch.optim.Adam path
    data = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    history = fit(model, data, steps=50, lr=1e-2, progress=False)
    assert history.steps == 50 and all(math.isfinite(v) for v in history.losses)


def test_flat_adam_handles_a_transposed_parameter_without_layout_warnings() -> None:
    """A parameter stored transposed (strides (1, n), like an invertible 1x1 conv's weight):
    its gradient view keeps that layout (no autograd warning) and the updates match Adam's."""
    import warnings

    from coursekit.optim import FlatAdam

    class Bilinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(0)
            self.w = nn.Parameter(torch.randn(4, 3, generator=gen, dtype=torch.float64).t())
            self.b = nn.Parameter(torch.zeros(4, dtype=torch.float64))

        def log_prob(self, x: torch.Tensor) -> torch.Tensor:
            return -((x @ self.w + self.b) ** 2).sum(1)

    model = Bilinear()
    assert model.w.stride() == (1, 3)
    reference = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(2)
    batches = [torch.randn(16, 3, generator=gen, dtype=torch.float64) for _ in range(5)]
    optimizer = FlatAdam(list(model.parameters()), lr=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for batch in batches:
            optimizer.zero_grad()
            (-model.log_prob(batch).mean()).backward()
            optimizer.clip_grad_norm(10.0)
            optimizer.step()
    assert model.w.grad.stride() == (1, 3)
    _reference_adam_run(reference, batches, 1e-2, 0.0, 10.0)
    for p, p_ref in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, p_ref, rtol=0, atol=1e-12)


def test_a_trained_realnvp_density_integrates_to_one_on_a_grid() -> None:
    """Eq. (14) gives a normalised density after training too: the mass of ``exp log p_θ`` on a
    fine grid of a box holding the 4 modes is 1 (midpoint rule; the tails outside are tiny),
    while the model did learn (its NLL fell well below the start)."""
    from coursekit.datasets import four_modes
    from coursekit.grid import integrate_on_grid, log_prob_on_grid, make_grid

    torch.manual_seed(0)
    model = RealNVP(2, n_layers=6, hidden=(32,)).double()
    history = fit(model, four_modes(), steps=300, batch_size=256, lr=5e-3, progress=False)
    assert history.losses[-1] < history.losses[0] - 1.0
    grid = make_grid(-7.0, 7.0, 400, dtype=torch.float64)
    with torch.no_grad():
        mass = integrate_on_grid(log_prob_on_grid(model.log_prob, grid).exp(), grid)
    assert abs(mass - 1.0) < 1e-4, mass
