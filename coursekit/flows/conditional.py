"""Conditional flows ``p_θ(x | c)``: the context ``c`` is fed to every conditioner (notebook 09).

A conditional affine coupling is eq. (12) with a conditioner that also sees the context::

    z1 = x1,   z2 = x2 ⊙ exp(s(x1, c)) + t(x1, c),   log|det ∂z/∂x| = Σ_j s_j(x1, c)

For each fixed ``c`` it is an ordinary coupling layer, so the stack ``f_θ(·; c)`` is a
bijection of x for every c, and ``log p_θ(x | c) = log N(f_θ(x; c); 0, I) + log|det ∂f_θ/∂x|``
(eq. 14 at fixed c). ``c`` is never transformed and needs no inverse: it may be any vector
(a class, a physical parameter, an observation). Trained by maximum likelihood on pairs
``(x, c)``, the model is one density per c, sharing its weights across all c
(Winkler et al., 2019; Papamakarios et al., 2021, §5.3).

Shapes: ``x``, ``z`` (batch, d); ``c`` (batch, context_dim); log-dets (batch,).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import (
    check_generator,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from coursekit.flows.base import standard_normal_log_prob
from coursekit.flows.coupling import affine_forward, affine_inverse, bounded_log_scale
from coursekit.flows.nets import mlp
from coursekit.flows.realnvp import alternating_masks


class ConditionalAffineCoupling(nn.Module):
    """Eq. (12) with ``(s, t) = net([x1, c])``.

    Args:
        mask: length-d 0/1 sequence, 1 = kept coordinate (``x1``), 0 = changed (``x2``).
        context_dim: size of the context vector ``c``.
        hidden: hidden widths of the MLP ``[x1, c] -> (ŝ, t)`` (last layer zero: identity
            at initialisation).
        scale_bound: ``B`` in ``s = B·tanh(ŝ/B)``.
    """

    def __init__(
        self,
        mask: Sequence[int],
        context_dim: int,
        hidden: Sequence[int] = (64, 64),
        scale_bound: float = 3.0,
    ):
        super().__init__()
        m = torch.as_tensor(mask, dtype=torch.bool)
        if m.dim() != 1 or int(m.sum()) in (0, m.numel()):
            raise ValueError(f"mask: expected 0/1 with both kept and changed entries, got {mask}")
        self.context_dim = check_positive_int(context_dim, "context_dim")
        self.scale_bound = check_positive_float(scale_bound, "scale_bound")
        self.register_buffer("kept", torch.nonzero(m).flatten())
        self.register_buffer("changed", torch.nonzero(~m).flatten())
        self.dim = m.numel()
        self.net = mlp(len(self.kept) + self.context_dim, 2 * len(self.changed), hidden)

    def scale_and_shift(self, x1: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """``s`` (bounded) and ``t`` from the kept part and the context; each (batch, d − k)."""
        raw_s, t = self.net(torch.cat([x1, c], dim=1)).chunk(2, dim=1)
        return bounded_log_scale(raw_s, self.scale_bound), t

    def _join(self, x1: Tensor, x2: Tensor) -> Tensor:
        out = torch.empty(x1.shape[0], self.dim, dtype=x1.dtype, device=x1.device)
        out[:, self.kept] = x1
        out[:, self.changed] = x2
        return out

    def forward(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (z, log|det ∂z/∂x|)`` at context ``c``."""
        x1, x2 = x[:, self.kept], x[:, self.changed]
        s, t = self.scale_and_shift(x1, c)
        z2, log_det = affine_forward(x2, s, t)
        return self._join(x1, z2), log_det

    def inverse(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """``z -> (x, log|det ∂x/∂z|)`` at context ``c``."""
        z1, z2 = z[:, self.kept], z[:, self.changed]
        s, t = self.scale_and_shift(z1, c)
        x2, log_det = affine_inverse(z2, s, t)
        return self._join(z1, x2), log_det


class ConditionalRealNVP(nn.Module):
    """A RealNVP ``p_θ(x | c)`` on R^dim: alternating conditional couplings, base N(0, I).

    Args:
        dim: number of features d (≥ 2).
        context_dim: size of the context c.
        n_layers: number of couplings.
        hidden: hidden widths of each conditioner.
        scale_bound: bound of each log-scale.
    """

    def __init__(
        self,
        dim: int,
        context_dim: int,
        n_layers: int = 8,
        hidden: Sequence[int] = (64, 64),
        scale_bound: float = 3.0,
    ):
        super().__init__()
        dim = check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(f"dim: expected at least 2 features for a coupling flow, got {dim}")
        self.dim = dim
        self.context_dim = check_positive_int(context_dim, "context_dim")
        self.event_shape = (dim,)
        self.layers = nn.ModuleList(
            ConditionalAffineCoupling(mask, context_dim, hidden, scale_bound)
            for mask in alternating_masks(dim, check_positive_int(n_layers, "n_layers"))
        )

    def _inputs(self, x: Tensor, c: Tensor, name: str) -> tuple[Tensor, Tensor]:
        check_tensor(x, name, event_shape=(self.dim,))
        if isinstance(c, (int, float)) and not isinstance(c, bool):
            c = torch.full((x.shape[0], self.context_dim), float(c))
        check_tensor(c, "c", event_shape=(self.context_dim,))
        if c.shape[0] != x.shape[0]:
            raise ValueError(
                f"c: expected one context per point ({x.shape[0]} rows), got {c.shape[0]}"
            )
        dtype = self.layers[0].net[0].weight.dtype
        return x.to(dtype), c.to(dtype)

    def forward(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (z, log|det ∂z/∂x|)`` at context ``c`` (a tensor (batch, context_dim) or a
        number used for every point)."""
        x, c = self._inputs(x, c, "x")
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x, c)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """``z -> (x, log|det ∂x/∂z|)`` at context ``c``."""
        z, c = self._inputs(z, c, "z")
        log_det = z.new_zeros(z.shape[0])
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z, c)
            log_det = log_det + ld
        return z, log_det

    def log_prob(self, x: Tensor, c: Tensor) -> Tensor:
        """``log p_θ(x | c)`` by eq. (14) at fixed c; (batch,)."""
        z, log_det = self.forward(x, c)
        return standard_normal_log_prob(z) + log_det

    def sample(self, n: int, c: float, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of ``p_θ(· | c)`` for one context value ``c`` (a number or a vector)."""
        n = check_positive_int(n, "n")
        check_generator(generator, "generator")
        dtype = self.layers[0].net[0].weight.dtype
        context = torch.as_tensor(c, dtype=dtype).reshape(1, -1).expand(n, self.context_dim)
        eps = torch.randn(n, self.dim, generator=generator, dtype=dtype)
        with torch.no_grad():
            return self.inverse(eps, context)[0]


def conditional_nll_loss(model: ConditionalRealNVP, batch: Tensor) -> Tensor:
    """``−mean log p_θ(x | c)`` for a batch of rows ``[x, c]`` (batch, d + context_dim): the
    ``loss_fn`` that lets :func:`coursekit.training.fit` train a conditional flow."""
    return -model.log_prob(batch[:, : model.dim], batch[:, model.dim :]).mean()
