"""The triangular (Knothe–Rosenblatt) map of a 2-D density: why flows are universal (notebook 09).

For a density ``p`` on R² with marginal ``p₁(x₁)`` and conditional ``p(x₂ | x₁)``, let ``F₁``
and ``F₂|₁`` be their cumulative distribution functions and ``Φ`` the standard normal one.
The map

    T(x) = ( Φ⁻¹(F₁(x₁)),  Φ⁻¹(F₂|₁(x₂ | x₁)) )

is lower-triangular (``z₁`` depends on ``x₁`` only), increasing in each diagonal variable, and
sends ``p`` exactly to ``N(0, I)``: ``z₁ = Φ⁻¹(F₁(X₁))`` is standard normal (the 1-D case of
notebook 07), and given ``X₁`` the second coordinate is standard normal whatever ``X₁`` is, so
``z₂`` is independent of ``z₁``. Its Jacobian is lower-triangular with diagonal

    ∂z₁/∂x₁ = p₁(x₁) / φ(z₁),    ∂z₂/∂x₂ = p(x₂ | x₁) / φ(z₂)                 (eq. 9)

so ``log|det J_T(x)| = log p₁(x₁) + log p(x₂ | x₁) − log φ(z₁) − log φ(z₂)`` and eq. (14),
``log N(T(x); 0, I) + log|det J_T(x)|``, returns ``log p(x)`` exactly. Every density with a
positive continuous density has such a map, so a flow that can represent increasing
triangular maps (an autoregressive flow with monotone transforms) can represent any density
(Knothe, 1957; Rosenblatt, 1952; Papamakarios et al., 2021, §2.2).

:class:`MixtureTriangularMap` builds it for a mixture of isotropic Gaussians in closed form
(:class:`coursekit.datasets.GaussianMixture`): the marginal of ``x₁`` is a 1-D mixture with the
same weights, and ``p(x₂ | x₁)`` is a 1-D mixture with weights ``π_k(x₁) ∝ w_k N(x₁; μ_k1, σ_k²)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from coursekit._validation import check_tensor
from coursekit.datasets.toy import GaussianMixture
from coursekit.flows.base import LOG_2PI, standard_normal_log_prob


def _log_normal_1d(u: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``log N(u; mean, std²)`` broadcast over the last axis (components)."""
    return -0.5 * ((u - mean) / std) ** 2 - torch.log(std) - 0.5 * LOG_2PI


def normal_quantile_of_mixture_cdf(u: Tensor, log_w: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``Φ⁻¹(F(u))`` for the 1-D mixture ``F(u) = Σ_k e^{log_w_k} Φ((u − mean_k)/std_k)``.

    ``u``: (batch,); ``log_w``: (batch, K) or (K,) log-weights summing to one;
    ``mean``, ``std``: (K,). Both tails stay accurate: below the median ``Φ⁻¹(F)``, above it
    ``−Φ⁻¹(1 − F)`` with ``1 − F = Σ_k w_k Φ(−(u − mean_k)/std_k)`` computed directly.
    """
    v = (u[:, None] - mean) / std
    w = log_w.exp()
    lower = (w * 0.5 * torch.special.erfc(-v / math.sqrt(2))).sum(-1)  # F(u), accurate tails
    upper = (w * 0.5 * torch.special.erfc(v / math.sqrt(2))).sum(-1)  # 1 - F(u)
    below = lower < 0.5
    return torch.where(
        below,
        torch.special.ndtri(torch.where(below, lower, 0.5 * torch.ones_like(lower))),
        -torch.special.ndtri(torch.where(below, 0.5 * torch.ones_like(upper), upper)),
    )


class MixtureTriangularMap:
    """The Knothe–Rosenblatt map ``T`` of a 2-D mixture of isotropic Gaussians (x₁ first).

    Args:
        mixture: a :class:`~coursekit.datasets.GaussianMixture` (weights ``w_k``, centres
            ``μ_k`` (K, 2), standard deviations ``σ_k``).

    ``forward(x) -> (z, log|det ∂z/∂x|)`` (data → noise, the course's direction),
    ``inverse(z) -> (x, log|det ∂x/∂z|)`` by bisection on each increasing coordinate,
    ``log_prob(x)`` by eq. (14). Shapes: ``x``, ``z`` (batch, 2); log-dets (batch,). Float64.
    """

    def __init__(self, mixture: GaussianMixture):
        if not isinstance(mixture, GaussianMixture):
            raise ValueError(
                f"mixture: expected a coursekit.datasets.GaussianMixture, got "
                f"{type(mixture).__name__}"
            )
        self.mixture = mixture
        self.log_w = mixture.weights.log()
        self.means = mixture.means
        self.stds = mixture.stds

    def marginal_log_prob(self, x1: Tensor) -> Tensor:
        """``log p₁(x₁)``, (batch,)."""
        log_joint = self.log_w + _log_normal_1d(x1[:, None], self.means[:, 0], self.stds)
        return torch.logsumexp(log_joint, -1)

    def conditional_log_weights(self, x1: Tensor) -> Tensor:
        """``log π_k(x₁) = log w_k + log N(x₁; μ_k1, σ_k²) − log p₁(x₁)``, (batch, K)."""
        joint = self.log_w + _log_normal_1d(x1[:, None], self.means[:, 0], self.stds)
        return joint - torch.logsumexp(joint, -1, keepdim=True)

    def conditional_log_prob(self, x2: Tensor, x1: Tensor) -> Tensor:
        """``log p(x₂ | x₁)``, (batch,)."""
        log_pi = self.conditional_log_weights(x1)
        log_joint = log_pi + _log_normal_1d(x2[:, None], self.means[:, 1], self.stds)
        return torch.logsumexp(log_joint, -1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``z = T(x)`` and ``log|det J_T(x)|`` (eq. 9 on each diagonal entry)."""
        x = check_tensor(x, "x", event_shape=(2,)).to(torch.float64)
        x1, x2 = x[:, 0], x[:, 1]
        z1 = normal_quantile_of_mixture_cdf(x1, self.log_w, self.means[:, 0], self.stds)
        z2 = normal_quantile_of_mixture_cdf(
            x2, self.conditional_log_weights(x1), self.means[:, 1], self.stds
        )
        log_phi = -0.5 * (z1**2 + z2**2) - LOG_2PI
        log_det = self.marginal_log_prob(x1) + self.conditional_log_prob(x2, x1) - log_phi
        return torch.stack([z1, z2], dim=1), log_det

    __call__ = forward

    def log_prob(self, x: Tensor) -> Tensor:
        """Eq. (14): ``log N(T(x); 0, I) + log|det J_T(x)|`` (equal to ``log p(x)``)."""
        z, log_det = self.forward(x)
        return standard_normal_log_prob(z) + log_det

    def inverse(self, z: Tensor, iterations: int = 100) -> tuple[Tensor, Tensor]:
        """``x = T⁻¹(z)``: solve ``Φ⁻¹(F₁(x₁)) = z₁``, then ``Φ⁻¹(F₂|₁(x₂ | x₁)) = z₂``, each
        by bisection (both are increasing); returns ``(x, log|det ∂x/∂z|)``."""
        z = check_tensor(z, "z", event_shape=(2,)).to(torch.float64)
        spread = float((self.means.abs().max() + 40 * self.stds.max()).item())

        def solve(target: Tensor, fn) -> Tensor:
            lo = torch.full_like(target, -spread)
            hi = torch.full_like(target, spread)
            for _ in range(iterations):
                mid = 0.5 * (lo + hi)
                up = fn(mid) < target
                lo, hi = torch.where(up, mid, lo), torch.where(up, hi, mid)
            return 0.5 * (lo + hi)

        x1 = solve(
            z[:, 0],
            lambda u: normal_quantile_of_mixture_cdf(u, self.log_w, self.means[:, 0], self.stds),
        )
        log_pi = self.conditional_log_weights(x1)
        x2 = solve(
            z[:, 1],
            lambda u: normal_quantile_of_mixture_cdf(u, log_pi, self.means[:, 1], self.stds),
        )
        x = torch.stack([x1, x2], dim=1)
        return x, -self.forward(x)[1]
