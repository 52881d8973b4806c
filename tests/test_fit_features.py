"""``fit``'s warm-up, and what ``fit_run`` adds around the same loop (EMA, callbacks, resume,
divergence threshold, clock: what the MNIST command and the benchmarks use), checked exactly
in float64."""

from __future__ import annotations

import math

import pytest
import torch

from coursekit.datasets import modes
from coursekit.flows import RealNVP
from coursekit.optim import learning_rate
from coursekit.training import FitState, TrainingDivergedError, fit
from coursekit.training_run import Callback, fit_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KW = dict(batch_size=16, progress=False, lr=5e-3)


def flow() -> RealNVP:
    torch.manual_seed(0)
    return RealNVP(2, n_layers=2, hidden=(8,)).double()


def test_warmup_then_cosine_is_the_one_schedule():
    history = fit(flow(), modes(2), steps=20, warmup=5, **KW)
    expected = [learning_rate(s, 20, 5e-3, 5) for s in range(20)]
    assert history.learning_rates == expected
    assert expected[:5] == pytest.approx([1e-3, 2e-3, 3e-3, 4e-3, 5e-3], abs=1e-15)
    assert expected[5] == 5e-3 and expected[-1] < 5e-3 * 0.02
    assert learning_rate(3, 10, 1.0, schedule="constant") == 1.0


def test_ema_follows_its_recursion_exactly():
    seen: list[list[torch.Tensor]] = []

    def record(state: FitState) -> None:
        seen.append([p.detach().clone() for p in state.model.parameters()])

    model = flow()
    initial = [p.detach().clone() for p in model.parameters()]
    history = fit_run(model, modes(2), steps=6, ema=0.9, callbacks=[Callback(record, 1)], **KW)
    average = initial
    for k, weights in enumerate(seen, start=1):
        d = min(0.9, k / (k + 9))
        average = [d * a + (1 - d) * w for a, w in zip(average, weights, strict=True)]
    got = list(history.ema_model.parameters())
    for a, b in zip(got, average, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    assert not any(p.requires_grad for p in got)


def test_callbacks_run_when_asked_and_can_stop_the_run():
    steps_seen: list[int] = []
    ends: list[int] = []
    fit_run(
        flow(),
        modes(2),
        steps=10,
        callbacks=[
            Callback(lambda s: steps_seen.append(s.step), every_steps=4),
            Callback(lambda s: ends.append(s.step), at_end=True),
        ],
        **KW,
    )
    assert steps_seen == [4, 8, 10] and ends == [10]
    history = fit_run(
        flow(), modes(2), steps=10, callbacks=[Callback(lambda s: s.step == 3, 1)], **KW
    )
    assert history.steps == 3 and history.stopped_by_callback and len(history.losses) == 3


def test_timed_callbacks_see_the_state_before_a_step_whose_loss_was_finite():
    seen: list[tuple[int, float]] = []

    def timed(state: FitState) -> None:
        seen.append((state.step, state.loss))

    history = fit_run(flow(), modes(2), steps=5, callbacks=[Callback(timed, every_seconds=0)], **KW)
    # not before the first step; then at every step, before its update
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    assert [loss for _, loss in seen] == history.losses[:4]


def test_resume_continues_exactly():
    straight = flow()
    reference = fit_run(straight, modes(2), steps=10, warmup=3, ema=0.9, **KW)
    saved: dict = {}

    def keep_and_stop(state: FitState) -> bool:
        saved.update(state.state_dict())
        return True

    first = flow()
    fit_run(
        first, modes(2), steps=10, warmup=3, ema=0.9, callbacks=[Callback(keep_and_stop, 5)], **KW
    )
    second = flow()  # fresh weights: everything comes from the saved state
    resumed = fit_run(second, modes(2), steps=10, warmup=3, ema=0.9, resume=saved, **KW)
    assert resumed.steps == 10 and len(resumed.losses) == 5
    assert resumed.losses == reference.losses[5:]
    for a, b in zip(second.parameters(), straight.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(resumed.ema_model.parameters(), reference.ema_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_max_loss_counts_as_a_divergence():
    with pytest.raises(TrainingDivergedError, match=r"at step 1\b") as info:
        fit_run(flow(), modes(2), steps=5, max_loss=-math.inf, **KW)
    assert info.value.step == 1 and math.isfinite(info.value.loss)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"warmup": -1}, "warmup"), ({"ema": 1.0}, "ema"), ({"max_loss": math.nan}, "max_loss")],
)
def test_bad_new_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: "):
        fit_run(flow(), modes(2), steps=2, **kwargs, **KW)


@pytest.mark.parametrize("optimizer", ["flat", "torch"])
def test_fit_run_without_extras_is_fit_bit_for_bit(optimizer):
    a, b = flow(), flow()
    plain = fit(a, modes(2), steps=12, warmup=3, optimizer=optimizer, **KW)
    run = fit_run(b, modes(2), steps=12, warmup=3, optimizer=optimizer, **KW)
    assert plain.losses == run.losses and plain.learning_rates == run.learning_rates
    assert plain.steps == run.steps == 12 and run.ema_model is None
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_resumed_state_without_an_average_starts_the_average_from_its_weights():
    saved: dict = {}

    def keep_and_stop(state: FitState) -> bool:
        saved.update(state.state_dict())
        return True

    fit_run(flow(), modes(2), steps=10, callbacks=Callback(keep_and_stop, 5), **KW)
    assert saved["ema"] is None and saved["step"] == 5
    weights = flow()
    weights.load_state_dict(saved["model"])
    # the average of the resumed run starts at the checkpoint's weights, not a fresh model's
    resumed = fit_run(flow(), modes(2), steps=10, ema=0.999, resume=saved, **KW)
    for a, w, p in zip(
        resumed.ema_model.parameters(), weights.parameters(), flow().parameters(), strict=True
    ):
        if not torch.equal(w, p):
            assert (a - w).abs().max() < (a - p).abs().max()
    with pytest.raises(ValueError, match="^resume: .*ema"):
        saved_ema = {**saved, "ema": resumed.ema_model.state_dict()}
        fit_run(flow(), modes(2), steps=10, resume=saved_ema, **KW)


def test_fit_budgets_by_the_clock_it_is_given() -> None:
    """fit_run's max_seconds is measured by ``clock``: a fake clock that shows one second per
    training step (the number of loss evaluations so far), however often it is read."""
    torch.manual_seed(0)
    model = RealNVP(2, n_layers=2, hidden=(8,))
    calls = [0]

    def loss_fn(m: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return -m.log_prob(batch).mean()

    history = fit_run(
        model,
        modes(2),
        steps=1_000,
        batch_size=16,
        max_seconds=5.0,
        progress=False,
        loss_fn=loss_fn,
        clock=lambda: float(calls[0]),
    )
    # steps 1..5 start at t = 0..4; at the start of step 6 the clock shows 5 s: stop
    assert history.stopped_by_time and history.steps == 5
    assert history.seconds == 5.0
