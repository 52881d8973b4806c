"""What a long run adds around :func:`coursekit.training.train_loop`: :func:`fit_run`.

The MNIST command and the benchmarks train with the same loop as
:func:`~coursekit.training.fit` (same arguments, same steps: ``fit_run`` without extras
gives ``fit``'s history bit for bit), plus:

* an exponential moving average (EMA) of the weights (``ema``);
* :class:`Callback` s every so many steps or seconds, or at the end (evaluation,
  checkpoints, early stop), whose time is not counted as training time;
* ``resume``: continue from a :meth:`~coursekit.training.FitState.state_dict`;
* ``max_loss``: a loss above it counts as a divergence;
* ``clock``: what ``max_seconds`` measures, e.g. ``time.process_time`` for a CPU-time budget.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from coursekit.training import FitState, History, Hooks, fit, prepare, train_loop


@dataclass
class Callback:
    """``fn(state)`` called during :func:`fit_run`; if it returns ``True`` the training stops.

    ``every_steps``: after the update of every ``every_steps``-th step and of the last step.
    ``every_seconds``: at the first step once that much time (of ``fit_run``'s clock) has
    passed since the last call (or the start), after that step's loss was found finite,
    before its update (so a checkpoint never holds weights that diverge on their next batch).
    ``at_end``: once more when the training ends (steps done, time budget or a stop), not
    after a divergence.
    """

    fn: Callable[[FitState], object]
    every_steps: int | None = None
    every_seconds: float | None = None
    at_end: bool = False

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"fn: expected a function fn(state), got {self.fn!r}")
        steps, seconds = self.every_steps, self.every_seconds
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, numbers.Integral)
        ):
            raise TypeError(f"every_steps: expected None or a positive integer, got {steps!r}")
        if steps is not None and steps <= 0:
            raise ValueError(f"every_steps: expected None or a positive integer, got {steps!r}")
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, numbers.Real)
        ):
            raise TypeError(f"every_seconds: expected None or a number >= 0, got {seconds!r}")
        if seconds is not None and not 0 <= seconds < math.inf:
            raise ValueError(
                f"every_seconds: expected None or a finite number >= 0, got {seconds!r}"
            )
        if not isinstance(self.at_end, bool):
            raise TypeError(f"at_end: expected True or False, got {self.at_end!r}")


class _Clock:
    """``clock()`` minus the time spent in callbacks (training time)."""

    def __init__(self, clock: Callable[[], float]):
        self.raw, self.paused = clock, 0.0

    def __call__(self) -> float:
        return self.raw() - self.paused

    def run(self, callback: Callback, state: FitState) -> bool:
        """``callback.fn(state)``, its time not counted; ``True`` if it asks to stop."""
        t0 = self.raw()
        try:
            return callback.fn(state) is True
        finally:
            self.paused += self.raw() - t0


class _RunHooks(Hooks):
    """EMA and callbacks, at the loop's hook points."""

    def __init__(
        self,
        state: FitState,
        callbacks: list[Callback],
        ema: float | None,
        clock: _Clock,
        steps: int,
    ):
        self.callbacks, self.ema, self.clock, self.steps = callbacks, ema, clock, steps
        self.first_step = state.step + 1
        self.last_call = {id(c): clock.raw() for c in callbacks if c.every_seconds is not None}
        self.due: list[Callback] = []
        self.params = [p for p in state.model.parameters() if p.requires_grad]
        self.averaged: list[Tensor] = []
        if ema is not None and state.ema_model is not None:
            pairs = zip(state.ema_model.parameters(), state.model.parameters(), strict=True)
            self.averaged = [a for a, p in pairs if p.requires_grad]

    def before_batch(self, state: FitState) -> None:
        now, step = self.clock.raw(), state.step + 1
        self.due = [
            c
            for c in self.callbacks
            if c.every_seconds is not None
            and step > self.first_step
            and now - self.last_call[id(c)] >= c.every_seconds
        ]
        state.generator_state = state.generator.get_state() if self.due else None

    def before_update(self, state: FitState) -> bool:
        stop = any([self._run(c, state) for c in self.due])
        state.generator_state = None
        return stop

    def after_update(self, state: FitState) -> bool:
        if self.averaged:
            decay = min(self.ema, state.step / (state.step + 9))
            with torch.no_grad():
                torch._foreach_lerp_(self.averaged, self.params, 1.0 - decay)
        periodic = [
            c
            for c in self.callbacks
            if c.every_steps and (state.step % c.every_steps == 0 or state.step == self.steps)
        ]
        return any([self._run(c, state) for c in periodic])

    def _run(self, callback: Callback, state: FitState) -> bool:
        stop = self.clock.run(callback, state)
        if callback.every_seconds is not None:
            self.last_call[id(callback)] = self.clock.raw()
        return stop


def _check_callbacks(callbacks: object) -> list[Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Sequence):
        raise TypeError(
            f"callbacks: expected a Callback or a list of them, got {type(callbacks).__name__}"
        )
    bad = [c for c in callbacks if not isinstance(c, Callback)]
    if bad:
        raise TypeError(f"callbacks: expected Callback objects, got {type(bad[0]).__name__}")
    return list(callbacks)


def _check_extras(ema: object, max_loss: object, clock: object, resume: object) -> None:
    if ema is not None and (isinstance(ema, bool) or not isinstance(ema, numbers.Real)):
        raise TypeError(f"ema: expected None or a float in (0, 1), got {ema!r}")
    if ema is not None and not 0.0 < ema < 1.0:
        raise ValueError(f"ema: expected None or a float in (0, 1), got {ema!r}")
    if isinstance(max_loss, bool) or not isinstance(max_loss, numbers.Real):
        raise TypeError(f"max_loss: expected a number (math.inf: no limit), got {max_loss!r}")
    if math.isnan(max_loss):
        raise ValueError(f"max_loss: expected a number (math.inf: no limit), got {max_loss!r}")
    if clock is not None and not callable(clock):
        raise TypeError(
            f"clock: expected a function returning seconds (e.g. time.process_time), got {clock!r}"
        )
    if resume is not None and not isinstance(resume, Mapping):
        raise TypeError(
            "resume: expected a FitState.state_dict() (a dict; load a checkpoint file with "
            f"torch.load first), got {type(resume).__name__}"
        )
    keys = {"model", "optimizer", "generator", "step", "elapsed"}
    if resume is not None and not keys <= set(resume):
        raise ValueError(
            f"resume: expected a FitState.state_dict() with keys {sorted(keys)}, "
            f"got {sorted(resume)}"
        )
    if resume is not None and ema is None and resume.get("ema") is not None:
        raise ValueError(
            "resume: the state holds a moving average of the weights; pass the run's ema=..."
        )


def _resume(state: FitState, resume: Mapping[str, object]) -> None:
    try:
        state.load_state_dict(resume)
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        raise ValueError(
            f"resume: the state does not fit this model and optimizer ({error})"
        ) from None


def fit_run(
    model: nn.Module,
    data: Tensor | object,
    *,
    ema: float | None = None,
    callbacks: Callback | Sequence[Callback] | None = None,
    resume: Mapping[str, object] | None = None,
    max_loss: float = math.inf,
    clock: Callable[[], float] | None = None,
    **options: object,
) -> History:
    """:func:`~coursekit.training.fit` (``options``: its arguments, with its defaults) plus:

    Args:
        ema: decay ``d`` of an exponential moving average of the weights,
            ``θ̄ ← d_k θ̄ + (1 − d_k) θ`` after step ``k`` with ``d_k = min(d, k / (k + 9))``
            (short memory at first); returned as ``History.ema_model``. ``None``: none.
        callbacks: a :class:`Callback` or a list of them.
        resume: a :meth:`~coursekit.training.FitState.state_dict` to continue from (weights,
            EMA, optimizer, minibatch generator, step and training time); a resumed run
            continues up to ``steps``. A state without an EMA starts the average from its
            weights.
        max_loss: a loss above this counts as a divergence, like NaN or Inf.
        clock: what ``max_seconds`` and ``History.seconds`` measure; ``None``: wall time
            (``time.perf_counter``); ``time.process_time``: the process's CPU time.

    Raises:
        what ``fit`` raises; ``TypeError``/``ValueError`` naming a bad extra.
    """
    arguments = inspect.signature(fit).bind(model, data, **options)
    arguments.apply_defaults()
    _check_extras(ema, max_loss, clock, resume)
    callbacks = _check_callbacks(callbacks)
    kwargs = {k: v for k, v in arguments.arguments.items() if k not in ("model", "data")}
    state, settings, loss_fn = prepare(model, data, **kwargs)
    if resume is not None:
        _resume(state, resume)  # before the average is copied from the weights
    if ema is not None:
        state.ema_model = copy.deepcopy(model).requires_grad_(False)
        if resume is not None and resume.get("ema") is not None:
            state.ema_model.load_state_dict(resume["ema"])
    timer = _Clock(time.perf_counter if clock is None else clock)
    settings = replace(settings, max_loss=float(max_loss), clock=timer)
    hooks = _RunHooks(state, callbacks, ema, timer, settings.steps)
    history = train_loop(state, data, loss_fn, settings, hooks)
    history.ema_model = state.ema_model
    for callback in callbacks:
        if callback.at_end:
            timer.run(callback, state)
    return history
