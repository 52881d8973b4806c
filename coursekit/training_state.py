"""What a :func:`coursekit.training.fit` run records and shows its callbacks.

* :class:`History`: the losses and learning rates of every step, the steps and time.
* :class:`FitState`: the training objects and where the run is, given to every
  :class:`Callback` (evaluation, checkpoints); its :meth:`FitState.state_dict` is what
  ``fit(resume=…)`` continues from.
* :class:`TrainingDivergedError`: the loss became NaN, Inf or too large.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from coursekit.optim import FlatAdam


class TrainingDivergedError(RuntimeError):
    """The loss became NaN, Inf or larger than ``max_loss``; the message names the step.

    Attributes: ``step`` (1-based, the step whose loss diverged), ``loss``, and ``elapsed``
    (training seconds until then).
    """

    def __init__(self, message: str, step: int, loss: float, elapsed: float):
        super().__init__(message)
        self.step, self.loss, self.elapsed = step, loss, elapsed


@dataclass
class History:
    """What a :func:`fit` run did.

    ``losses`` and ``learning_rates``: one entry per step of this call; ``steps``: the steps
    done in all (a resumed run counts the steps before it); ``seconds``: the training time
    (callbacks excluded); ``ema_model``: the moving average of the weights (``fit(ema=…)``).
    """

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
        kernel = np.ones(window) / window
        return np.convolve(losses, kernel, mode="valid")


@dataclass
class FitState:
    """What a :class:`Callback` sees: the training objects and where the run is.

    ``step``: steps done; ``elapsed``: training seconds so far (callbacks excluded; for a
    time-based callback, until the start of the step about to be done); ``loss``, ``lr``: those
    of the last step; ``generator``: the minibatch generator. For a time-based callback,
    ``generator_state`` is the generator's state before the batch of the step about to be
    done, so that a checkpoint of :meth:`state_dict` redoes exactly that step when resumed.
    """

    model: nn.Module
    ema_model: nn.Module | None
    optimizer: FlatAdam | torch.optim.Optimizer
    generator: torch.Generator
    history: History
    step: int = 0
    elapsed: float = 0.0
    loss: float = math.nan
    lr: float = math.nan
    generator_state: Tensor | None = None

    def state_dict(self) -> dict[str, object]:
        """``{model, ema, optimizer, generator, step, elapsed}``: what ``fit(resume=…)`` needs."""
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


@dataclass
class Callback:
    """``fn(state)`` called during :func:`fit`; if it returns ``True`` the training stops.

    ``every_steps``: after the update of every ``every_steps``-th step and of the last step.
    ``every_seconds``: at the first step once that much wall time has passed since the last
    call (or the start), after that step's loss was found finite, before its update (so a
    checkpoint never holds weights that diverge on their next batch). ``at_end``: once more
    when the training ends (steps done, time budget or a stop), not after a divergence.
    """

    fn: Callable[[FitState], object]
    every_steps: int | None = None
    every_seconds: float | None = None
    at_end: bool = False
