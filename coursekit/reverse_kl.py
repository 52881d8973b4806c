"""Reverse KL: training a flow to sample a density known only up to a constant (notebook 09).

The target is ``p(x) = exp(−E(x)) / Z`` with an energy ``E`` we can evaluate and a normaliser
``Z = ∫ exp(−E)`` we cannot (Boltzmann distributions in physics, posteriors in Bayesian
inference). There are no samples of ``p`` to fit by maximum likelihood (eq. 2–4), but the flow
``q_θ`` can be sampled: ``x = f_θ⁻¹(ε)``, ``ε ~ N(0, I)``, with
``log q_θ(x) = log N(ε; 0, I) − log|det ∂x/∂ε|`` (eq. 14 read backwards). Then

    KL(q_θ ‖ p) = E_ε[ log q_θ(x) + E(x) ] + log Z                                  (reverse KL)

and ``log Z`` does not depend on θ: minimising the Monte Carlo average of
``log q_θ(x) + E(x)`` over fresh ``ε`` (the reparameterisation trick: the gradient flows
through ``x = f_θ⁻¹(ε)``) minimises the reverse KL (Rezende & Mohamed, 2015; Papamakarios
et al., 2021, §2.3.2). The same samples give importance weights ``w = exp(−E(x)) / q_θ(x)``
whose mean is an unbiased estimate of ``Z`` (:func:`importance_log_z`).

:class:`Wells` is the notebook's target: ``E(x) = −log Σ_k exp(−|x − μ_k|² / (2σ²))``, K wells
at the centres ``μ_k``; its normaliser is known here (``Z = K·2πσ²``) only to check the
estimates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_positive_float, check_positive_int, check_tensor
from coursekit.flows.base import standard_normal_log_prob
from coursekit.metrics import Estimate, mean_and_se


class StandardNormal:
    """Noise ``ε ~ N(0, I_dim)`` with ``sample(n, generator)``: the "data" that
    :func:`coursekit.training.fit` draws every step when it minimises the reverse KL."""

    def __init__(self, dim: int = 2):
        self.dim = check_positive_int(dim, "dim")

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, dim) float64 standard normal draws."""
        n = check_positive_int(n, "n")
        return torch.randn(n, self.dim, generator=generator, dtype=torch.float64)


class Wells:
    """``p(x) ∝ exp(−E(x))`` with ``E(x) = −log Σ_k exp(−|x − μ_k|² / (2σ²))`` on R².

    Args:
        centres: (K, 2) centres ``μ_k`` of the wells.
        std: the width ``σ`` of each well.

    ``energy(x)`` is all a sampler may use. ``log_z`` (``log(K·2πσ²)``), ``log_prob`` and
    ``sample`` exist because ``p`` is secretly an equal-weight Gaussian mixture: they check the
    estimates and train the forward-KL flow that the notebook compares with.
    """

    def __init__(self, centres: Sequence[Sequence[float]] | Tensor, std: float = 0.5):
        self.centres = torch.as_tensor(centres, dtype=torch.float64)
        if self.centres.dim() != 2 or self.centres.shape[1] != 2 or len(self.centres) == 0:
            raise ValueError(f"centres: expected shape (K, 2), got {tuple(self.centres.shape)}")
        self.std = check_positive_float(std, "std")
        self.log_z = math.log(len(self.centres) * 2 * math.pi * self.std**2)
        self.has_log_prob = True

    def energy(self, x: Tensor) -> Tensor:
        """``E(x)``, (batch,), in the dtype of ``x``."""
        check_tensor(x, "x", event_shape=(2,))
        sq = ((x[:, None, :] - self.centres.to(x)) ** 2).sum(-1)
        return -torch.logsumexp(-0.5 * sq / self.std**2, dim=1)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x) = −E(x) − log Z``, (batch,)."""
        return -self.energy(x) - self.log_z

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, 2) float64 exact draws (a well chosen uniformly, then Gaussian noise)."""
        n = check_positive_int(n, "n")
        k = torch.randint(0, len(self.centres), (n,), generator=generator)
        eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.centres[k] + self.std * eps


def reverse_kl_loss(model: nn.Module, energy: Callable[[Tensor], Tensor], eps: Tensor) -> Tensor:
    """Monte Carlo ``KL(q_θ ‖ p) − log Z = mean_i [log q_θ(x_i) + E(x_i)]``, ``x_i = f_θ⁻¹(ε_i)``.

    ``model.inverse(ε)`` returns ``(x, log|det ∂x/∂ε|)``, so
    ``log q_θ(x) = log N(ε; 0, I) − log|det ∂x/∂ε|`` with no second pass. ``eps``: (n, d);
    returns a scalar through which the gradient reaches θ via ``x`` (reparameterisation).
    """
    x, log_det = model.inverse(eps)
    log_q = standard_normal_log_prob(eps.to(x)) - log_det
    return (log_q + energy(x)).mean()


@torch.no_grad()
def sample_with_log_q(
    model: nn.Module, n: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``n`` draws ``x = f⁻¹(ε)`` of the flow and their ``log q_θ(x)``; (n, d), (n,), float64."""
    n = check_positive_int(n, "n")
    param = next(iter(model.parameters()))
    dim = int(getattr(model, "event_shape", (2,))[0])
    eps = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    x, log_det = model.inverse(eps.to(param.dtype))
    return x.double(), standard_normal_log_prob(eps) - log_det.double()


def importance_log_z(log_w: Tensor) -> Estimate:
    """``log Ẑ = log (1/n) Σ_i w_i`` from log-weights ``log w_i = −E(x_i) − log q(x_i)``,
    ``x_i ~ q``, with its delta-method standard error ``sd(w) / (√n · mean(w))``.

    ``Ẑ`` is unbiased for ``Z`` when ``q > 0`` wherever ``p > 0``; the standard error only
    measures the spread of the weights that were drawn, so a ``q`` that misses a region of
    ``p`` gives a wrong ``log Ẑ`` with a small error bar. ``log_w``: (n,), n ≥ 2.
    """
    check_tensor(log_w, "log_w", event_shape=())
    if log_w.numel() < 2:
        raise ValueError(f"log_w: expected at least 2 log-weights, got {log_w.numel()}")
    log_w = log_w.double()
    n = log_w.numel()
    w = (log_w - log_w.max()).exp()  # rescaled weights, max 1
    estimate = float(torch.logsumexp(log_w, 0) - math.log(n))
    return Estimate(estimate, float(w.std() / (math.sqrt(n) * w.mean())), n)


def effective_sample_size(log_w: Tensor) -> float:
    """Kish's ``(Σ w)² / Σ w²`` from log-weights (n,): ``n`` for equal weights, 1 when one
    weight dominates."""
    check_tensor(log_w, "log_w", event_shape=())
    log_w = log_w.double()
    return float((2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)).exp())


def mode_masses(x: Tensor, centres: Tensor) -> list[Estimate]:
    """The share of the points ``x`` (n, d) nearest to each centre (K, d), with the binomial
    standard error ``√(m(1 − m)/n)`` of each share."""
    check_tensor(x, "x")
    centres = torch.as_tensor(centres, dtype=torch.float64)
    nearest = torch.cdist(x.double(), centres).argmin(dim=1)
    n = len(x)
    shares = torch.bincount(nearest, minlength=len(centres)).double() / n
    return [Estimate(float(m), math.sqrt(float(m * (1 - m)) / n), n) for m in shares]


def kl_both_ways(
    model: nn.Module, target: Wells, n: int = 20_000, generator: torch.Generator | None = None
) -> tuple[Estimate, Estimate]:
    """``(KL(p ‖ q_θ), KL(q_θ ‖ p))`` in nats, each a Monte Carlo mean with its standard error:
    the first over ``n`` draws of the target, the second over ``n`` draws of the flow."""
    x_p = target.sample(n, generator=generator)
    param = next(iter(model.parameters()))
    with torch.no_grad():
        forward = mean_and_se(target.log_prob(x_p) - model.log_prob(x_p.to(param.dtype)).double())
    x_q, log_q = sample_with_log_q(model, n, generator)
    reverse = mean_and_se(log_q - target.log_prob(x_q))
    return forward, reverse
