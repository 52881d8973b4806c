"""Training by maximum likelihood (minimising the NLL of eq. 4/14): the loop.

:func:`fit` checks its arguments, seeds, builds Adam and runs :func:`train_loop`, the loop a
student reads whole: draw a minibatch (with replacement from a tensor of points, or fresh
from a sampler with ``sample(n, generator=...)``), compute the loss (default
:func:`~coursekit.metrics.nll`), stop with a :class:`TrainingDivergedError` naming the step if
it is NaN, Inf or blew up, set the learning rate of the warm-up then cosine schedule
(:func:`~coursekit.optim.learning_rate`), back-propagate, clip the gradient norm, take an Adam
step. What the MNIST command adds around the same loop (an EMA of the weights, callbacks,
resuming, a CPU-time clock) is :func:`coursekit.training_run.fit_run`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from coursekit.metrics import nll
from coursekit.optim import FlatAdam, clip_gradients, learning_rate, make_adam, set_learning_rate
from coursekit.training_checks import FitSettings, check_batch, check_fit_args, check_loss

#: a loss more than this many times max(1, |first loss|) above the first loss of a run is a
#: divergence, like NaN or Inf (a finite blow-up, e.g. 6.3 → 7e23 after a too large lr).
BLOW_UP = 1e6


class TrainingDivergedError(RuntimeError):
    """The loss became NaN, Inf or too large, or the gradient NaN or Inf; the message names
    the step. Attributes: ``step`` (1-based), ``loss``, ``elapsed`` (training seconds)."""

    def __init__(self, message: str, step: int, loss: float, elapsed: float):
        super().__init__(message)
        self.step, self.loss, self.elapsed = step, loss, elapsed


@dataclass
class History:
    """What a training did: ``losses`` and ``learning_rates`` of every step of this call;
    ``steps`` done in all (a resumed run counts those before it); ``seconds`` of training
    (callbacks excluded); ``ema_model``: the moving average of the weights (``fit_run``)."""

    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped_by_time: bool = False
    stopped_by_callback: bool = False
    ema_model: nn.Module | None = None

    def smoothed(self, window: int = 50) -> np.ndarray:
        """Running mean of the losses over ``window`` steps (for plots)."""
        losses = np.asarray(self.losses, dtype=float)
        if len(losses) < window:
            return losses
        return np.convolve(losses, np.ones(window) / window, mode="valid")


@dataclass
class FitState:
    """The training objects and where the run is (what a callback of ``fit_run`` sees).

    ``step``: steps done; ``elapsed``: training seconds so far; ``loss``, ``lr``: those of the
    last step; ``generator``: the minibatch generator; ``ema_model``: the moving average of
    the weights, if any. ``generator_state``: set by ``fit_run`` while a timed callback runs,
    the generator's state before the batch of the step about to be done, so that a
    checkpoint of :meth:`state_dict` redoes exactly that step when resumed.
    """

    model: nn.Module
    optimizer: FlatAdam | torch.optim.Optimizer
    generator: torch.Generator
    history: History
    ema_model: nn.Module | None = None
    step: int = 0
    elapsed: float = 0.0
    loss: float = math.nan
    lr: float = math.nan
    generator_state: Tensor | None = None

    def state_dict(self) -> dict[str, object]:
        """``{model, ema, optimizer, generator, step, elapsed}``: what ``resume`` needs."""
        generator = self.generator_state
        return dict(
            model=self.model.state_dict(),
            ema=None if self.ema_model is None else self.ema_model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            generator=self.generator.get_state() if generator is None else generator,
            step=self.step,
            elapsed=self.elapsed,
        )

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore the weights, EMA, optimizer, generator, step and time of :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        if self.ema_model is not None and state.get("ema") is not None:
            self.ema_model.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.history.steps = self.step


class Hooks:
    """Where :func:`coursekit.training_run.fit_run` plugs into :func:`train_loop` (EMA,
    callbacks). These do nothing; ``True`` from a ``before_update``/``after_update`` stops."""

    def before_batch(self, state: FitState) -> None:
        """Called before the minibatch of the step about to be done is drawn."""

    def before_update(self, state: FitState) -> bool:
        """Called once that step's loss was found finite, before its update."""
        return False

    def after_update(self, state: FitState) -> bool:
        """Called after the update (``state`` holds the step just done)."""
        return False


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a ``torch.Generator`` seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def draw(data: Tensor | object, n: int, generator: torch.Generator) -> Tensor:
    """``n`` training points: drawn with replacement from a tensor, or fresh from a sampler."""
    if isinstance(data, Tensor):
        return data[torch.randint(0, data.shape[0], (n,), generator=generator)]
    return check_batch(data.sample(n, generator=generator), n)


def check_diverged(value: float, step: int, state: FitState, max_loss: float) -> float:
    """``value`` (the loss of ``step``), or :class:`TrainingDivergedError` if it is NaN, Inf,
    above ``max_loss`` or more than :data:`BLOW_UP` ``· max(1, |L₁|)`` above the first loss."""
    losses = state.history.losses
    first = losses[0] if losses else value
    blown_up = value - first > BLOW_UP * max(1.0, abs(first))
    if math.isfinite(value) and value <= max_loss and not blown_up:
        return value
    raise TrainingDivergedError(
        f"loss became {value:.6g} at step {step} (first loss {first:.6g}, last "
        f"{losses[-1] if losses else 'none'}); try a smaller lr, a smaller scale_bound, or "
        "gradient clipping",
        step=step,
        loss=value,
        elapsed=state.elapsed,
    )


def check_gradient(norm: Tensor, loss: float, step: int, state: FitState) -> None:
    """:class:`TrainingDivergedError` if the gradient norm is NaN or Inf (the step is not taken,
    so the weights stay finite)."""
    if not bool(torch.isfinite(norm)):
        raise TrainingDivergedError(
            f"the gradient became {float(norm)} at step {step} although the loss ({loss:.6g}) "
            "is finite; the step was not taken (weights kept). Look for log(0), division by "
            "zero or sqrt at 0 in the model or loss",
            step=step,
            loss=loss,
            elapsed=state.elapsed,
        )


def train_loop(
    state: FitState,
    data: Tensor | object,
    loss_fn: Callable[[nn.Module, Tensor], Tensor],
    s: FitSettings,
    hooks: Hooks | None = None,
) -> History:
    """Steps ``state.step + 1 … s.steps``: batch, loss, divergence check, schedule, Adam step
    with the gradient norm clipped at ``s.clip_grad``; stops early at ``s.max_seconds``."""
    model, optimizer, history, hooks = state.model, state.optimizer, state.history, hooks or Hooks()
    params = [p for p in model.parameters() if p.requires_grad]
    start = s.clock() - state.elapsed
    bar = tqdm(total=s.steps, initial=state.step, desc="training", disable=s.hide_progress)
    model.train()
    try:
        for step in range(state.step + 1, s.steps + 1):
            state.elapsed = s.clock() - start
            if s.max_seconds is not None and state.elapsed >= s.max_seconds:
                history.stopped_by_time = True
                break
            lr = learning_rate(
                step - 1, s.steps, s.lr, s.warmup, s.schedule, state.elapsed, s.max_seconds
            )
            set_learning_rate(optimizer, lr)
            hooks.before_batch(state)
            batch = draw(data, s.batch_size, state.generator).to(params[0])  # its dtype, device
            loss = check_loss(loss_fn(model, batch))
            value = check_diverged(float(loss.detach()), step, state, s.max_loss)
            if hooks.before_update(state):
                history.stopped_by_callback = True
                break
            optimizer.zero_grad()
            loss.backward()
            check_gradient(clip_gradients(optimizer, params, s.clip_grad), value, step, state)
            optimizer.step()
            state.step, state.loss, state.lr, state.elapsed = step, value, lr, s.clock() - start
            history.losses.append(value)
            history.learning_rates.append(lr)
            history.steps = step
            bar.update(1)
            if step % s.log_every == 0:
                bar.set_postfix(loss=f"{value:.4f}")
            if hooks.after_update(state):
                history.stopped_by_callback = True
                break
    finally:
        bar.close()
        history.seconds = state.elapsed = s.clock() - start
        model.eval()
    if history.stopped_by_time and state.step == 0:
        raise ValueError(
            f"max_seconds: the budget of {s.max_seconds:g} s ran out before the first step "
            "(nothing was trained); give the run at least a few seconds"
        )
    return history


def prepare(
    model: nn.Module, data: Tensor | object, **options: object
) -> tuple[FitState, FitSettings, Callable[[nn.Module, Tensor], Tensor]]:
    """What :func:`train_loop` needs from :func:`fit`'s arguments (checked, then seeded):
    a fresh :class:`FitState`, the :class:`FitSettings` and the loss."""
    settings, seed, loss_fn = check_fit_args(model, data, **options)
    generator = (
        seed_everything(seed)
        if seed is not None
        else torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, ()).item()))
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_adam(params, settings.lr, settings.weight_decay, settings.optimizer)
    return FitState(model, optimizer, generator, History()), settings, loss_fn or nll


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
    optimizer: str = "flat",
) -> History:
    """Train ``model`` by minimising ``loss_fn`` (default: the NLL, eq. 4) with Adam.

    Args:
        model: a module with ``log_prob`` (or any module if ``loss_fn`` is given).
        data: a tensor (n, …) of training points (minibatches drawn with replacement) or a
            sampler with ``sample(n, generator=...)`` giving fresh points every step.
        steps: number of optimisation steps.
        batch_size: points per step.
        lr: peak learning rate.
        weight_decay: Adam's L2 penalty.
        clip_grad: maximum gradient norm (``None`` disables clipping).
        schedule: ``"cosine"`` (decay to 0 over ``steps``) or ``"constant"``, after the
            warm-up (:func:`~coursekit.optim.learning_rate`).
        max_seconds: stop after this many seconds of wall time; the cosine schedule then
            ends at the budget if that comes before the last step.
        seed: seeds torch, NumPy and Python, and the minibatch generator; ``None`` keeps the
            current global state.
        loss_fn: ``loss_fn(model, batch) -> scalar``.
        progress: show a progress bar; ``None`` shows it unless ``TQDM_DISABLE`` is set.
        log_every: how often the progress bar's loss is refreshed.
        warmup: steps of linear warm-up of the learning rate (0: none).
        optimizer: ``"flat"`` (:class:`~coursekit.optim.FlatAdam`, Adam on one flat vector,
            the faster on the course's small flows) or ``"torch"`` (``torch.optim.Adam``).

    Returns:
        a :class:`History` with the loss of every step.

    Raises:
        TrainingDivergedError: when the loss becomes NaN, Inf or blows up (more than
            :data:`BLOW_UP` ``· max(1, |L₁|)`` above the first loss ``L₁``), or the gradient
            becomes NaN or Inf (the step is then not taken); the message names the step.
        TypeError, ValueError: naming the argument, for every bad argument (checked before
            the first step), a ``loss_fn`` that does not return a scalar connected to the
            model, a sampler that does not return a floating tensor (n, …), or a
            ``max_seconds`` that ran out before the first step.
    """
    options = {k: v for k, v in locals().items() if k not in ("model", "data")}
    state, settings, loss = prepare(model, data, **options)
    return train_loop(state, data, loss, settings)
