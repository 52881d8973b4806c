"""Checker of exercise 5.6: build and train your own RealNVP (slides: INN – REALNVP,
ENTRAÎNEMENT, eq. 12–14).

The student supplies two functions:

* ``build_flow(seed) -> flow``: a ``torch.nn.Module`` on ``R²`` with ``flow(x) -> (z, log_det)``
  (data → noise, log|det ∂z/∂x| of shape (batch,)) and ``flow.inverse(z) -> (x, log_det)``;
* ``train(flow, sampler, steps)``: ``steps`` optimisation steps, each on one fresh batch
  ``sampler.sample(batch_size)`` (float32, shape (batch_size, 2)) of the slides' 4 modes
  (:class:`TrainingSampler`: the same object a student can use to try ``train``).

The checker probes them in order, cheapest first, so that each classic bug gets its own hint
(steps 1–2 in :mod:`coursekit.checkers.ch05_flow_checks`):

1. exactness in float64 with random weights: ``inverse(forward(x)) = x`` and the log-dets
   cancel (≤ 1e-10), the log-det equals autograd's ``log|det J|``, the input is not modified;
2. every coordinate is transformed by some layer (masks alternate);
3. a 3-step gradient probe: after ``train(flow, spy, 3)`` the parameters' ``.grad`` is compared
   with the gradient of the mean NLL (14) on the last batch at the parameters of the last
   step — a detached loss, a sign error, a sum instead of a mean, and a missing ``zero_grad``
   (gradients of all three steps accumulated) each give a different ``.grad``;
4. a full training of ``TRAIN_STEPS`` steps in at most ``MAX_CPU_SECONDS`` of CPU time (one
   thread; no wall-clock limit, so a loaded machine cannot fail a right loop), then
   ``KL(p ‖ p_θ) < KL_BAR`` nats (Monte Carlo, 20,000 samples).

``KL_BAR`` comes from ``benchmarks/exercise_build_and_train.py`` (committed results in
``benchmarks/exercise_build_and_train.json``): the reference solution over 10 seeds of the
checker's draws under three numeric set-ups; the bar leaves a wide margin above the worst run.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from coursekit.checkers._common import call_mutating, checker
from coursekit.checkers._hints import Hint, StudentError, StudentTimeout
from coursekit.checkers.ch05_flow_checks import (
    StudentDensity,
    build_student_flow,
    check_exact_flow,
    student_log_prob,
)
from coursekit.datasets import four_modes

#: steps of the full training run by the checker
TRAIN_STEPS = 2_000
#: CPU-time limit of that training (seconds, one torch thread)
MAX_CPU_SECONDS = 60.0
#: the KL(p ‖ p_θ) the trained flow must beat, in nats
KL_BAR = 0.1

_WHERE_LOOP = "see notebook 05, section 'Training by hand'"


class TrainingSampler:
    """The slides' 4 modes as the checker gives them to ``train``: ``sample(n)`` returns ``n``
    fresh points, (n, 2), **float32** (the dtype of the flow's weights; ``four_modes().sample``
    returns float64 unless given ``dtype=torch.float32``). Use it to try your ``train``."""

    def __init__(self, seed: int = 0):
        self.target = four_modes()
        self.generator = torch.Generator().manual_seed(seed)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """``n`` fresh points of the 4 modes, (n, 2), float32 unless ``dtype`` says otherwise;
        ``generator`` is accepted for compatibility and ignored (the sampler has its own)."""
        return self.target.sample(int(n), generator=self.generator, dtype=dtype)


class RecordingSampler(TrainingSampler):
    """:class:`TrainingSampler` that records every batch it gives and the parameters at that
    moment (a deep copy of the flow's ``state_dict``), so that gradients can be recomputed."""

    def __init__(self, flow: nn.Module | None = None, seed: int = 0):
        super().__init__(seed)
        self.flow = flow
        self.batches: list[Tensor] = []
        self.given: list[Tensor] = []
        self.states: list[dict] = []

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """``n`` fresh points of the 4 modes, (n, 2), float32 unless ``dtype`` says otherwise."""
        x = super().sample(n, dtype=dtype)
        if self.flow is not None:
            self.states.append(copy.deepcopy(self.flow.state_dict()))
            self.batches.append(x.clone())
            self.given.append(x)
        return x


def _flat_grad(params: list[Tensor]) -> Tensor | None:
    grads = [p.grad for p in params]
    if all(gr is None for gr in grads):
        return None
    return torch.cat(
        [
            (gr if gr is not None else torch.zeros_like(p)).detach().double().flatten()
            for gr, p in zip(grads, params, strict=True)
        ]
    )


def _reference_grad(flow: nn.Module, state: dict, batch: Tensor) -> Tensor:
    twin = copy.deepcopy(flow)
    twin.load_state_dict(state)
    params = [p for p in twin.parameters() if p.requires_grad]
    for p in params:
        p.grad = None
    loss = -student_log_prob(twin, batch).mean()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat(
        [
            (gr if gr is not None else torch.zeros_like(p)).double().flatten()
            for gr, p in zip(grads, params, strict=True)
        ]
    )


def _matches(a: Tensor, b: Tensor, rtol: float = 1e-3) -> bool:
    return float((a - b).norm()) <= rtol * max(float(b.norm()), 1e-12)


def _check_gradients(build_flow: Callable, train: Callable) -> None:
    """Step 3: one short training, then the parameters' .grad against the candidates."""
    flow = build_student_flow(build_flow, 2)
    params = [p for p in flow.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    spy = RecordingSampler(flow, seed=3)
    try:
        call_mutating(train, flow, spy, 3)
    except StudentError as err:
        text = str(err)
        if "does not require grad" in text or "grad_fn" in text:
            raise Hint(
                "loss.backward() failed because the loss is detached from the parameters "
                f"(.detach(), .item(), torch.no_grad?) ({_WHERE_LOOP})"
            ) from None
        raise
    if len(spy.batches) != 3:
        raise Hint(
            f"train(flow, sampler, 3) drew {len(spy.batches)} batches: draw one fresh batch "
            f"sampler.sample(batch_size) per step ({_WHERE_LOOP})"
        )
    for given, kept in zip(spy.given, spy.batches, strict=True):
        if not torch.equal(given, kept):
            raise Hint(
                f"train modified a batch from the sampler in place: work on a copy ({_WHERE_LOOP})"
            )
    if all(torch.equal(p.detach(), b) for p, b in zip(params, before, strict=True)):
        raise Hint(
            "after 3 steps the parameters have not changed: the loss is detached from the "
            "graph (.detach(), .item(), torch.no_grad) or the optimiser does not hold the "
            f"flow's parameters ({_WHERE_LOOP})"
        )
    grad = _flat_grad(params)
    if grad is None or float(grad.abs().max()) == 0.0:
        return  # zero_grad after the step: nothing left to compare
    refs = [_reference_grad(flow, s, b) for s, b in zip(spy.states, spy.batches, strict=True)]
    last, total = refs[-1], torch.stack(refs).sum(0)
    batch = spy.batches[-1].shape[0]
    for scale in (1.0, float(batch)):
        for sign in (1.0, -1.0):
            for name, ref in (("last", last), ("total", total)):
                if not _matches(grad, sign * scale * ref):
                    continue
                if name == "total":
                    raise Hint(
                        "the gradients of successive steps add up: call "
                        f"optimizer.zero_grad() before each loss.backward() ({_WHERE_LOOP})"
                    )
                if sign < 0:
                    raise Hint(
                        "sign error: your loss is +mean log p(x); minimise the NEGATIVE "
                        f"log-likelihood −mean[log p_Z(f(x)) + log|det J|] (eq 14) ({_WHERE_LOOP})"
                    )
                if scale > 1:
                    raise Hint(
                        f"your loss sums over the batch ({batch} points): average it (.mean()), "
                        f"so the step size does not depend on the batch size ({_WHERE_LOOP})"
                    )
                return
    cosine = float(grad @ last) / max(float(grad.norm() * last.norm()), 1e-30)
    if cosine > 0.999 and float(grad.norm()) <= 1.001 * float(last.norm()):
        return  # the mean NLL's gradient, clipped
    raise Hint(
        "after train, the parameters' .grad is not the gradient of the mean NLL (14) of the "
        f"last batch: loss = −mean[log N(z; 0, I) + log_det] with (z, log_det) = flow(x) "
        f"({_WHERE_LOOP})"
    )


def train_with_cpu_limit(train: Callable, flow: nn.Module, seed: int = 4) -> float:
    """Run ``train(flow, TrainingSampler(seed), TRAIN_STEPS)`` in one torch thread under a
    limit of ``MAX_CPU_SECONDS`` of CPU time; return the CPU seconds it used.

    Only CPU time counts (never the wall clock), so a machine busy with other programs slows
    the run down without failing it; the limit is the training's own cost."""
    from coursekit.checkers import _common

    limit = _common.TIME_LIMIT
    _common.TIME_LIMIT = MAX_CPU_SECONDS
    start = time.process_time()
    try:
        call_mutating(train, flow, TrainingSampler(seed=seed), TRAIN_STEPS)
    except StudentTimeout:
        raise Hint(
            f"train(flow, sampler, {TRAIN_STEPS}) used more than {MAX_CPU_SECONDS:.0f} s of CPU "
            "time (the exercise's limit, one thread) and was stopped: use a smaller network "
            f"or batch ({_WHERE_LOOP})"
        ) from None
    finally:
        _common.TIME_LIMIT = limit
    return time.process_time() - start


@checker("5.6", "build and train your own RealNVP")
def check_build_and_train(build_flow: Callable, train: Callable) -> str:
    """``build_flow(seed) -> flow`` and ``train(flow, sampler, steps)`` (module docstring)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        check_exact_flow(build_flow)
        _check_gradients(build_flow, train)
        flow = build_student_flow(build_flow, 0)
        torch.manual_seed(0)
        cpu = train_with_cpu_limit(train, flow)
    finally:
        torch.set_num_threads(threads)
    kl, se = kl_after_training(flow)
    if not math.isfinite(kl):
        raise Hint(
            "after training your flow gives non-finite log-densities: bound s (tanh) "
            "(see notebook 04, section 'Why the log-scale is bounded')"
        )
    if kl >= KL_BAR:
        raise Hint(
            f"after {TRAIN_STEPS} steps KL(p ‖ p_θ) = {kl:.3f} ± {se:.3f} nats (bar {KL_BAR}): "
            "try a larger learning rate with a cosine decay, a larger batch, or more layers "
            f"({_WHERE_LOOP})"
        )
    return (
        f"exact inverse in float64, alternating masks, the right gradient, and after "
        f"{TRAIN_STEPS} steps ({cpu:.0f} s CPU) KL(p ‖ p_θ) = {kl:.3f} ± {se:.3f} nats "
        f"< {KL_BAR}."
    )


def kl_after_training(flow: nn.Module, seed: int = 5, n: int = 20_000) -> tuple[float, float]:
    """``KL(p ‖ p_θ)`` ± its standard error (nats) of a trained flow on the 4 modes: the mean
    of ``log p(x) − log p_θ(x)`` over ``n`` samples ``x ~ p`` (NaN if any term is not finite)."""
    target = four_modes()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = target.sample(n, generator=g, dtype=torch.float32)
        d = target.log_prob(x.double()) - StudentDensity(flow).log_prob(x).double()
    if not bool(torch.isfinite(d).all()):
        return math.nan, math.nan
    return float(d.mean()), float(d.std() / math.sqrt(d.numel()))
