"""Training by maximum likelihood (minimising the NLL of eq. 4/14): the one training loop.

:func:`fit` runs Adam (:class:`~coursekit.optim.FlatAdam`) on minibatches drawn either from
a sampler (any object with ``sample(n, generator=...)``: a toy distribution, or
:class:`~coursekit.flows.preprocessing.DequantizedImages` for MNIST) or from a fixed data
tensor, with a learning-rate warm-up then a cosine decay (:func:`~coursekit.optim.learning_rate`),
gradient-norm clipping, an optional exponential moving average (EMA) of the weights, an
optional training-time budget, periodic :class:`Callback` s (evaluation, checkpoints),
resumption from a saved state, a ``tqdm.auto`` progress bar (silenced by ``TQDM_DISABLE=1``)
and a :class:`TrainingDivergedError` naming the step when the loss is NaN, Inf or too large.
The MNIST command (:mod:`coursekit.train_mnist`) and the benchmarks use it.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from coursekit._validation import check_positive_float, check_positive_int
from coursekit.metrics import nll
from coursekit.optim import FlatAdam, learning_rate, make_adam, set_learning_rate
from coursekit.training_checks import check_batch, check_data, check_fit_args, check_loss
from coursekit.training_state import Callback, FitState, History, TrainingDivergedError

__all__ = [
    "Callback",
    "FitState",
    "FlatAdam",
    "History",
    "TrainingDivergedError",
    "fit",
    "negative_log_likelihood_loss",
    "seed_everything",
]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a ``torch.Generator`` seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def negative_log_likelihood_loss(model: nn.Module, batch: Tensor) -> Tensor:
    """The default loss: ``−mean(log p_θ(batch))`` (eq. 4 with the flow density of eq. 14);
    the same as :func:`coursekit.metrics.nll`."""
    return nll(model, batch)


def _draw(data: Tensor | object, n: int, generator: torch.Generator) -> Tensor:
    """``n`` training points: drawn with replacement from a tensor, or fresh from a sampler."""
    if isinstance(data, Tensor):
        return data[torch.randint(0, data.shape[0], (n,), generator=generator)]
    return check_batch(data.sample(n, generator=generator), n)


#: a loss more than this many times max(1, |first loss|) above the first loss of a run is a
#: divergence, like NaN or Inf (a finite blow-up, e.g. 6.3 → 7e23 after a too large lr).
BLOW_UP = 1e6


def _average_model(model: nn.Module) -> tuple[nn.Module, list[Tensor]]:
    """A copy of ``model`` for the moving average of its weights, and its parameters that
    match ``model``'s trainable ones (the copy needs no gradients)."""
    averaged = copy.deepcopy(model)
    pairs = list(zip(averaged.parameters(), model.parameters(), strict=True))
    for a, _ in pairs:
        a.requires_grad_(False)
    return averaged, [a for a, p in pairs if p.requires_grad]


def _update(
    state: FitState, loss: Tensor, params: list[Tensor], clip_grad: float | None, step: int
) -> None:
    """Backward pass, gradient clipping and one Adam step; a NaN or Inf gradient raises
    :class:`TrainingDivergedError` before the step, so the weights stay finite."""
    optimizer = state.optimizer
    limit = math.inf if clip_grad is None else clip_grad
    if isinstance(optimizer, FlatAdam):
        optimizer.zero_grad()
        loss.backward()
        norm = optimizer.clip_grad_norm(limit)
    else:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, limit)
    if not bool(torch.isfinite(norm)):
        raise TrainingDivergedError(
            f"the gradient became {float(norm)} at step {step} although the loss "
            f"({float(loss.detach()):.6g}) is finite; the step was not taken (weights kept). "
            "Look for log(0), division by zero or sqrt at 0 in the model or loss",
            step=step,
            loss=float(loss.detach()),
            elapsed=state.elapsed,
        )
    optimizer.step()


@torch.no_grad()
def _average_step(averaged: list[Tensor], params: list[Tensor], decay: float) -> None:
    """``θ̄ ← decay · θ̄ + (1 − decay) · θ`` for every trainable parameter."""
    torch._foreach_lerp_(averaged, params, 1.0 - decay)


def fit(
    model: nn.Module,
    data: Tensor | object,
    steps: int = 3_500,
    batch_size: int = 1_024,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    clip_grad: float | None = 10.0,
    schedule: str = "cosine",
    max_seconds: float | None = None,
    seed: int | None = 0,
    loss_fn: Callable[[nn.Module, Tensor], Tensor] | None = None,
    progress: bool | None = None,
    log_every: int = 50,
    *,
    warmup: int = 0,
    ema: float | None = None,
    callbacks: Sequence[Callback] = (),
    resume: Mapping[str, object] | None = None,
    lr_scale: float = 1.0,
    max_loss: float = math.inf,
    clock: Callable[[], float] | None = None,
) -> History:
    """Train ``model`` by minimising ``loss_fn`` (default: the NLL, eq. 4) with Adam.

    Args:
        model: a module with ``log_prob`` (or any module if ``loss_fn`` is given).
        data: a tensor (n, …) of training points (minibatches drawn with replacement) or a
            sampler with ``sample(n, generator=...)`` giving fresh points every step.
        steps: number of optimisation steps (a resumed run continues up to ``steps``).
        batch_size: points per step.
        lr: peak learning rate.
        weight_decay: Adam's L2 penalty.
        clip_grad: maximum gradient norm (``None`` disables clipping).
        schedule: ``"cosine"`` (decay to 0 over ``steps``) or ``"constant"``, after the
            warm-up (:func:`~coursekit.optim.learning_rate`).
        max_seconds: stop after this much training time (callbacks excluded); the cosine
            schedule then ends at the budget if that comes before the last step.
        seed: seeds torch, NumPy and Python, and the minibatch generator; ``None`` keeps
            the current global state.
        loss_fn: ``loss_fn(model, batch) -> scalar``.
        progress: show a progress bar; ``None`` shows it unless ``TQDM_DISABLE`` is set.
        log_every: how often the progress bar's loss is refreshed.
        warmup: steps of linear warm-up of the learning rate (0: none).
        ema: decay ``d`` of an exponential moving average of the weights,
            ``θ̄ ← d_k θ̄ + (1 − d_k) θ`` after step ``k`` with ``d_k = min(d, k / (k + 9))``
            (short memory at first); ``None``: no average. Returned as ``History.ema_model``.
        callbacks: :class:`Callback` s (evaluation, checkpoints, early stop).
        resume: a :meth:`FitState.state_dict` to continue from (weights, EMA, optimizer,
            minibatch generator, step and training time).
        lr_scale: a factor on the whole schedule (e.g. halved after a divergence).
        max_loss: a loss above this counts as a divergence, like NaN or Inf.
        clock: the clock that ``max_seconds`` and ``History.seconds`` are measured by;
            ``None``: wall time (``time.perf_counter``). ``time.process_time`` budgets by the
            process's CPU time (with one torch thread, a budget that the load of a shared
            machine does not shrink).

    Returns:
        a :class:`History` with the loss of every step.

    Raises:
        TrainingDivergedError: when the loss becomes NaN, Inf, exceeds ``max_loss`` or
            blows up (more than :data:`BLOW_UP` ``· max(1, |L₁|)`` above the first loss
            ``L₁``), or the gradient becomes NaN or Inf (the step is then not taken); the
            message names the step.
        ValueError: naming the argument, for every bad argument (checked before the first
            step), a ``loss_fn`` that does not return a scalar connected to the model, a
            sampler that does not return a floating tensor (n, …), or a ``max_seconds``
            that ran out before the first step.
    """
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_positive_float(lr, "lr")
    lr_scale = check_positive_float(lr_scale, "lr_scale")
    if max_seconds is not None:
        max_seconds = check_positive_float(max_seconds, "max_seconds")
    if clip_grad is not None:
        clip_grad = check_positive_float(clip_grad, "clip_grad")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule: expected 'cosine' or 'constant', got {schedule!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup: expected a non-negative integer, got {warmup!r}")
    if ema is not None and not (isinstance(ema, float) and 0.0 < ema < 1.0):
        raise ValueError(f"ema: expected None or a float in (0, 1), got {ema!r}")
    check_fit_args(model, loss_fn, weight_decay, seed, log_every, callbacks, max_loss)
    check_data(data)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: expected trainable parameters, found none")
    loss_fn = loss_fn or negative_log_likelihood_loss

    generator = (
        seed_everything(seed)
        if seed is not None
        else torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
    )
    history = History()
    averaged, ema_params = _average_model(model) if ema is not None else (None, [])
    state = FitState(
        model=model,
        ema_model=averaged,
        optimizer=make_adam(params, lr=lr, weight_decay=weight_decay),
        generator=generator,
        history=history,
    )
    if resume is not None:
        state.load_state_dict(resume)
    history.ema_model = state.ema_model
    first, first_step = params[0], state.step + 1
    bar = tqdm(
        total=steps,
        initial=state.step,
        desc="training",
        disable=None if progress is None else not progress,
    )
    paused = 0.0  # seconds spent in callbacks, not counted as training time
    clock = time.perf_counter if clock is None else clock
    start = clock() - state.elapsed
    last_call = {id(c): clock() for c in callbacks if c.every_seconds is not None}

    def run(callback: Callback) -> bool:
        nonlocal paused
        t0 = clock()
        stop = callback.fn(state) is True
        now = clock()
        paused += now - t0
        if callback.every_seconds is not None:
            last_call[id(callback)] = now
        return stop

    model.train()
    try:
        for step in range(first_step, steps + 1):
            state.elapsed = clock() - start - paused
            if max_seconds is not None and state.elapsed >= max_seconds:
                history.stopped_by_time = True
                break
            current_lr = lr_scale * learning_rate(
                step - 1, steps, lr, warmup, schedule, state.elapsed, max_seconds
            )
            set_learning_rate(state.optimizer, current_lr)
            now = clock()
            due = [
                c
                for c in callbacks
                if c.every_seconds is not None
                and step > first_step
                and now - last_call[id(c)] >= c.every_seconds
            ]
            state.generator_state = generator.get_state() if due else None
            batch = _draw(data, batch_size, generator).to(device=first.device, dtype=first.dtype)
            loss = check_loss(loss_fn(model, batch))
            value = float(loss.detach())
            first_loss = history.losses[0] if history.losses else value
            blown_up = value - first_loss > BLOW_UP * max(1.0, abs(first_loss))
            if not math.isfinite(value) or value > max_loss or blown_up:
                raise TrainingDivergedError(
                    f"loss became {value:.6g} at step {step} (first loss {first_loss:.6g}, last "
                    f"{history.losses[-1] if history.losses else 'none'}); try a smaller lr, "
                    "a smaller scale_bound, or gradient clipping",
                    step=step,
                    loss=value,
                    elapsed=state.elapsed,
                )
            if any([run(c) for c in due]):
                history.stopped_by_callback = True
                break
            state.generator_state = None
            _update(state, loss, params, clip_grad, step)
            if ema is not None:
                _average_step(ema_params, params, min(ema, step / (step + 9)))
            state.step, state.loss, state.lr = step, value, current_lr
            state.elapsed = clock() - start - paused
            history.losses.append(value)
            history.learning_rates.append(current_lr)
            history.steps = step
            bar.update(1)
            if step % log_every == 0:
                bar.set_postfix(loss=f"{value:.4f}")
            periodic = [
                c
                for c in callbacks
                if c.every_steps and (step % c.every_steps == 0 or step == steps)
            ]
            if any([run(c) for c in periodic]):
                history.stopped_by_callback = True
                break
        state.elapsed = clock() - start - paused
        if history.stopped_by_time and state.step == 0:
            raise ValueError(
                f"max_seconds: the budget of {max_seconds:g} s ran out before the first step "
                "(nothing was trained); give the run at least a few seconds"
            )
        for c in callbacks:
            if c.at_end:
                run(c)
    finally:
        bar.close()
        history.seconds = clock() - start - paused
        model.eval()
    return history
