"""Checks of :func:`coursekit.training.fit`'s arguments and of what its pieces return.

Everything :func:`~coursekit.training.fit` would otherwise discover deep inside a step (a
model without ``log_prob``, a loss of shape (batch,), a sampler returning numpy, a negative
weight decay, a fractional seed…) raises ``ValueError`` naming the argument, before the first
step or at the first batch.
"""

from __future__ import annotations

import math
import numbers

from torch import Tensor, nn

from coursekit._validation import check_positive_int, check_tensor
from coursekit.training_state import Callback


def check_data(data: Tensor | object) -> None:
    """``data`` is a non-empty floating tensor of training points or has ``sample``."""
    if isinstance(data, Tensor):
        check_tensor(data, "data")
        if data.shape[0] == 0:
            raise ValueError("data: expected at least one training point, got an empty tensor")
    elif not callable(getattr(data, "sample", None)):
        raise ValueError(
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


def check_fit_args(
    model: object,
    loss_fn: object,
    weight_decay: object,
    seed: object,
    log_every: object,
    callbacks: object,
    max_loss: object,
) -> None:
    """The arguments :func:`fit` would otherwise only discover deep inside a step."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is None and not callable(getattr(model, "log_prob", None)):
        raise ValueError(
            f"model: expected a flow with log_prob(x) for the default NLL loss, got a "
            f"{type(model).__name__} without one; pass loss_fn=..."
        )
    if loss_fn is not None and not callable(loss_fn):
        raise ValueError(f"loss_fn: expected a function loss_fn(model, batch), got {loss_fn!r}")
    wd_ok = isinstance(weight_decay, (int, float)) and not isinstance(weight_decay, bool)
    if not wd_ok or not 0 <= weight_decay < math.inf:
        raise ValueError(f"weight_decay: expected a finite number >= 0, got {weight_decay!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
    ):
        raise ValueError(f"seed: expected None or an integer >= 0, got {seed!r}")
    check_positive_int(log_every, "log_every")
    bad = [c for c in callbacks if not isinstance(c, Callback)]  # type: ignore[union-attr]
    if bad:
        raise ValueError(f"callbacks: expected Callback objects, got {type(bad[0]).__name__}")
    if isinstance(max_loss, bool) or not isinstance(max_loss, (int, float)) or max_loss != max_loss:
        raise ValueError(f"max_loss: expected a number (math.inf: no limit), got {max_loss!r}")
