"""Metrics: negative log-likelihood (eq. 4), bits per dimension, and KL(p ‖ p_θ) (eq. 1).

Each is written once here; :func:`coursekit.training.fit` minimises :func:`nll` and
:func:`coursekit.flows.preprocessing.image_bits_per_dim` evaluates :func:`bits_per_dim`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo mean with its standard error ``s / √n`` over ``n`` draws (or seeds)."""

    mean: float
    se: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.se:.4f}"


def mean_and_se(values: Sequence[float] | Tensor) -> Estimate:
    """Mean and standard error ``s / √n`` (``s``: sample standard deviation, ``n − 1``) of
    ``values``: per-draw log-ratios, per-seed results or paired differences."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if v.numel() < 2:
        raise ValueError(f"values: expected at least 2 numbers, got {v.numel()}")
    return Estimate(float(v.mean()), float(v.std() / math.sqrt(v.numel())), v.numel())


@torch.no_grad()
def log_ratio_samples(
    model: HasLogProb,
    target: Target,
    n: int = 20_000,
    generator: torch.Generator | None = None,
    batch_size: int = 10_000,
) -> Tensor:
    """``d_i = log p(x_i) − log p_θ(x_i)`` for ``n`` draws ``x_i ~ p`` (``target``); (n,) float64.

    Their mean is the Monte Carlo estimate of ``KL(p ‖ p_θ)`` (eq. 1). Each ``x_i`` is cast to
    the model's dtype and device; both densities are evaluated at that same point (the truth
    in float64). ``target`` needs ``sample(n, generator=...)`` and an exact ``log_prob``; the
    same generator state gives the same draws, so two models can be compared point by point.
    """
    n = check_positive_int(n, "n")
    batch_size = check_positive_int(batch_size, "batch_size")
    if not getattr(target, "has_log_prob", True) or not callable(getattr(target, "log_prob", None)):
        raise ValueError(f"target: expected a distribution with an exact log_prob, got {target!r}")
    param = next(iter(getattr(model, "parameters", lambda: iter(()))()), None)
    dtype = param.dtype if param is not None else torch.float64
    device = param.device if param is not None else torch.device("cpu")
    out = []
    done = 0
    while done < n:
        m = min(batch_size, n - done)
        x = target.sample(m, generator=generator).to(device=device, dtype=dtype)
        truth = target.log_prob(x.double().cpu()).double()
        out.append(truth - model.log_prob(x).double().cpu())
        done += m
    return torch.cat(out)


def kl_with_se(
    model: HasLogProb,
    target: Target,
    n: int = 20_000,
    generator: torch.Generator | None = None,
    batch_size: int = 10_000,
) -> Estimate:
    """Monte Carlo ``KL(p ‖ p_θ) = E_p[log p(x) − log p_θ(x)]`` in nats (eq. 1) with its
    standard error ``std(d) / √n`` over the ``n`` log-ratios of :func:`log_ratio_samples`."""
    return mean_and_se(log_ratio_samples(model, target, n, generator, batch_size))


def kl_to_target(
    model: HasLogProb,
    target: Target,
    n: int = 20_000,
    generator: torch.Generator | None = None,
    batch_size: int = 10_000,
) -> float:
    """Monte Carlo estimate of ``KL(p ‖ p_θ)`` in nats (eq. 1): the mean of
    :func:`log_ratio_samples` (:func:`kl_with_se` adds its standard error)."""
    return float(log_ratio_samples(model, target, n, generator, batch_size).mean())
