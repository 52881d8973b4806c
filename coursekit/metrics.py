"""Metrics: negative log-likelihood (eq. 4), bits per dimension, and KL(p ‖ p_θ) (eq. 1).

Each is written once here; :func:`coursekit.training.fit` minimises :func:`nll` and
:func:`coursekit.flows.preprocessing.image_bits_per_dim` evaluates :func:`bits_per_dim`.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

from coursekit._validation import check_positive_float, check_positive_int, check_tensor


class HasLogProb(Protocol):
    def log_prob(self, x: Tensor) -> Tensor: ...


class Target(Protocol):
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...

    def log_prob(self, x: Tensor) -> Tensor: ...


def nll(model: HasLogProb, x: Tensor) -> Tensor:
    """Negative log-likelihood ``L(θ) = −(1/n) Σ_i log p_θ(x_i)`` (eq. 4), a scalar in nats."""
    check_tensor(x, "x")
    return -model.log_prob(x).mean()


def bits_per_dim(log_prob: Tensor, num_dims: int, *, levels: float) -> Tensor:
    """Bits per dimension of dequantized data, counting every term (the one formula).

    The data are ``v = k + u`` in ``[0, levels)^D`` (``k`` integer, ``u`` uniform
    dequantization noise) and ``log_prob`` is the log-density of ``x = v / levels``, the
    scaled data a model sees. Since ``log p(v) = log p(x) − D log(levels)`` (the Jacobian
    of the scaling),

        bits/dim = −mean(log p(v)) / (D ln 2) = −mean(log p(x)) / (D ln 2) + log2(levels).

    Args:
        log_prob: (batch,) or scalar log-densities ``log p(x)`` in nats.
        num_dims: ``D``, the dimensions of one example (784 for MNIST).
        levels: the scale ``x = v / levels``: 256 for 8-bit images scaled to ``[0, 1)``
            (e.g. ``ImageRealNVP.log_prob``); 1 when ``log_prob`` already is the density of
            ``v`` (or of data that were never scaled).

    Returns:
        a scalar tensor.
    """
    check_tensor(log_prob, "log_prob", allow_nonfinite=True)
    num_dims = check_positive_int(num_dims, "num_dims")
    levels = check_positive_float(levels, "levels")
    log_prob_v = log_prob - num_dims * math.log(levels)
    return -log_prob_v.mean() / (num_dims * math.log(2))


@torch.no_grad()
def kl_to_target(
    model: HasLogProb,
    target: Target,
    n: int = 20_000,
    generator: torch.Generator | None = None,
    batch_size: int = 10_000,
) -> float:
    """Monte Carlo estimate of ``KL(p ‖ p_θ) = E_p[log p(x) − log p_θ(x)]`` in nats (eq. 1).

    Draws ``n`` fresh samples from ``target`` (which must have an exact ``log_prob``) and
    evaluates both densities in the model's dtype.
    """
    n = check_positive_int(n, "n")
    if not getattr(target, "has_log_prob", True):
        raise ValueError(f"target: expected a distribution with an exact log_prob, got {target!r}")
    param = next(iter(getattr(model, "parameters", lambda: iter(()))()), None)
    dtype = param.dtype if param is not None else torch.float64
    device = param.device if param is not None else torch.device("cpu")
    total = 0.0
    done = 0
    while done < n:
        m = min(batch_size, n - done)
        x = target.sample(m, generator=generator).to(device=device, dtype=dtype)
        diff = target.log_prob(x.double()).to(dtype) - model.log_prob(x)
        total += float(diff.double().sum())
        done += m
    return total / n
