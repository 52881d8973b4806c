"""Checks of :func:`coursekit.training.fit`'s arguments and of what its pieces return.

Everything :func:`~coursekit.training.fit` would otherwise discover deep inside a step (a
model without ``log_prob``, a loss of shape (batch,), a sampler returning numpy, a negative
weight decay, a fractional seed…) raises an error naming the argument, before the first step
or at the first batch: ``TypeError`` for a wrong type, ``ValueError`` for a wrong value.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from coursekit._validation import check_positive_float, check_positive_int, check_tensor

#: seeds are 63-bit: ``torch.manual_seed`` and the generators take integers below this.
SEED_LIMIT = 2**63


@dataclass(frozen=True)
class FitSettings:
    """:func:`~coursekit.training.fit`'s options as :func:`~coursekit.training.train_loop`
    reads them, checked; ``max_loss`` and ``clock`` are set by ``fit_run``."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    clip_grad: float | None
    schedule: str
    max_seconds: float | None
    progress: bool | None
    log_every: int
    warmup: int
    optimizer: str
    max_loss: float = math.inf
    clock: Callable[[], float] = time.perf_counter

    @property
    def hide_progress(self) -> bool | None:
        """tqdm's ``disable``: ``None`` (shown unless ``TQDM_DISABLE`` is set) or a bool."""
        return None if self.progress is None else not self.progress


def check_data(data: Tensor | object) -> None:
    """``data`` is a non-empty floating tensor of training points or has ``sample``."""
    if isinstance(data, Tensor):
        check_tensor(data, "data")
        if data.shape[0] == 0:
            raise ValueError("data: expected at least one training point, got an empty tensor")
    elif not callable(getattr(data, "sample", None)):
        raise TypeError(
            "data: expected a tensor of training points or a sampler with "
            f"sample(n, generator=...), got {type(data).__name__}"
        )


def check_batch(batch: object, n: int) -> Tensor:
    """What ``data.sample(n, generator=...)`` returned: a floating tensor ``(n, ...)``."""
    if not isinstance(batch, Tensor) or not batch.is_floating_point() or batch.shape[:1] != (n,):
        got = (
            f"a {batch.dtype} tensor of shape {tuple(batch.shape)}"
            if isinstance(batch, Tensor)
            else type(batch).__name__
        )
        raise ValueError(
            f"data: expected data.sample({n}, generator=...) to return a floating tensor "
            f"({n}, ...), got {got}"
        )
    return batch


def check_loss(loss: object) -> Tensor:
    """What ``loss_fn`` returned: a scalar tensor connected to the model's parameters."""
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        got = f"shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(
            f"loss_fn: expected a scalar tensor (e.g. the mean over the batch), got {got}"
        )
    if not loss.requires_grad:
        raise ValueError(
            "loss_fn: the loss is not connected to the model's parameters (computed under "
            "torch.no_grad(), .detach() or .item()?), so it cannot be minimised"
        )
    return loss


def check_seed(seed: object, name: str = "seed") -> int:
    """An integer in ``[0, 2**63)``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= 0, got {seed!r}")
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{name}: expected an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def _check_model(model: object, loss_fn: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is None and not callable(getattr(model, "log_prob", None)):
        raise ValueError(
            f"model: expected a flow with log_prob(x) for the default NLL loss, got a "
            f"{type(model).__name__} without one; pass loss_fn=..."
        )
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn: expected a function loss_fn(model, batch), got {loss_fn!r}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model: expected trainable parameters, found none")


def check_fit_args(
    model: object,
    data: object,
    *,
    steps: object,
    batch_size: object,
    lr: object,
    weight_decay: object,
    clip_grad: object,
    schedule: object,
    max_seconds: object,
    seed: object,
    loss_fn: object,
    progress: object,
    log_every: object,
    warmup: object,
    optimizer: object,
) -> tuple[FitSettings, int | None, Callable | None]:
    """:func:`~coursekit.training.fit`'s arguments checked: the settings, seed and loss."""
    _check_model(model, loss_fn)
    check_data(data)
    wd_ok = isinstance(weight_decay, numbers.Real) and not isinstance(weight_decay, bool)
    if not wd_ok or not 0 <= weight_decay < math.inf:
        raise ValueError(f"weight_decay: expected a finite number >= 0, got {weight_decay!r}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule: expected 'cosine' or 'constant', got {schedule!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
        raise ValueError(f"warmup: expected a non-negative integer, got {warmup!r}")
    if optimizer not in ("flat", "torch"):
        raise ValueError(f"optimizer: expected 'flat' or 'torch', got {optimizer!r}")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress: expected None, True or False, got {progress!r}")
    settings = FitSettings(
        steps=check_positive_int(steps, "steps"),
        batch_size=check_positive_int(batch_size, "batch_size"),
        lr=check_positive_float(lr, "lr"),
        weight_decay=float(weight_decay),
        clip_grad=None if clip_grad is None else check_positive_float(clip_grad, "clip_grad"),
        schedule=schedule,
        max_seconds=None
        if max_seconds is None
        else check_positive_float(max_seconds, "max_seconds"),
        progress=progress,
        log_every=check_positive_int(log_every, "log_every"),
        warmup=int(warmup),
        optimizer=optimizer,
    )
    return settings, None if seed is None else check_seed(seed), loss_fn
