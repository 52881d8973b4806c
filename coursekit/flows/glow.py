"""Glow's layers (Kingma & Dhariwal, 2018), used by the shipped MNIST model.

* :class:`ActNorm`: a learned per-channel (or per-pixel) affine map with data-dependent
  initialisation, ``z = (x − μ) ⊙ exp(−ℓ)``, ``log|det ∂z/∂x| = −Σ ℓ`` (summed over every
  position it applies to).
* :class:`InvertibleConv1x1`: a learned ``C×C`` channel mixing ``W`` at every pixel,
  ``log|det ∂z/∂x| = H·W·log|det W|``.

Both act on images ``(batch, C, H, W)``; their log-determinants have shape ``(batch,)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_image_shape, check_positive_int, check_tensor
from coursekit.flows.base import Bijection


class ActNorm(Bijection):
    """Learned affine normalisation ``z = (x − μ) ⊙ exp(−ℓ)`` with data-dependent init.

    Per channel (``per_pixel=False``: ``μ, ℓ`` of shape ``(1, C, 1, 1)``, as in Glow) or per
    pixel (``(1, C, H, W)``). ``log|det ∂z/∂x| = −Σ ℓ`` over every pixel and channel.

    At construction ``μ = 0, ℓ = 0`` (the identity).
    :meth:`~coursekit.flows.image.ImageRealNVP.initialize` sets them from a batch of data so
    that the output has zero mean and unit variance: the couplings then do not have to learn
    the large offsets and scales of the data first (in logit space MNIST's black background
    sits near ``logit(α)`` with a tiny spread).

    Args:
        shape: ``(C, H, W)`` of the input.
        per_pixel: one ``(μ, ℓ)`` per pixel instead of per channel.
    """

    def __init__(self, shape: Sequence[int], per_pixel: bool = False):
        super().__init__()
        c, h, w = check_image_shape(shape)
        self.event_shape = (c, h, w)
        self.per_pixel = bool(per_pixel)
        stat_shape = (1, c, h, w) if self.per_pixel else (1, c, 1, 1)
        self.loc = nn.Parameter(torch.zeros(stat_shape))
        self.log_scale = nn.Parameter(torch.zeros(stat_shape))
        self.pending_init = False  # set by ImageRealNVP.initialize

    def _log_det(self, x: Tensor) -> Tensor:
        repeats = 1 if self.per_pixel else x.shape[2] * x.shape[3]
        return (-self.log_scale.sum() * repeats).expand(x.shape[0])

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        dims = (0,) if self.per_pixel else (0, 2, 3)
        self.loc.copy_(x.mean(dim=dims, keepdim=True))
        std = x.std(dim=dims, keepdim=True) if x.shape[0] > 1 else torch.ones_like(self.loc)
        self.log_scale.copy_(torch.log(std.clamp_min(1e-3)))
        self.pending_init = False

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.pending_init:
            self._initialize(x)
        return (x - self.loc) * torch.exp(-self.log_scale), self._log_det(x)

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z * torch.exp(self.log_scale) + self.loc, -self._log_det(z)

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, per_pixel={self.per_pixel}"


class InvertibleConv1x1(Bijection):
    """Glow's invertible 1×1 convolution: the same learned ``C×C`` matrix ``W`` mixes the
    channels at every pixel, ``z[:, :, i, j] = W x[:, :, i, j]``.

    ``log|det ∂z/∂x| = H·W·log|det W|`` (``H·W`` copies of ``W`` on the diagonal). Between
    channel couplings it is a learned mixing in place of the fixed "swap the two halves" (a
    permutation is the special case of a permutation matrix). ``W`` starts as a random
    rotation (``log|det W| = 0``), drawn from ``generator`` or torch's global generator.

    Args:
        channels: ``C``.
        generator: random generator for the initial rotation.
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None):
        super().__init__()
        channels = check_positive_int(channels, "channels")
        q, r = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
        # sign fix so the rotation is uniformly distributed and deterministic given the draw
        self.weight = nn.Parameter(q * torch.sign(torch.diagonal(r)).unsqueeze(0))
        self.channels = channels

    def _check(self, x: Tensor, name: str) -> None:
        check_tensor(x, name)
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"{name}: expected shape (batch, {self.channels}, H, W), got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (batch, C, H, W) -> ``(W x per pixel, H·W·log|det W|)``."""
        self._check(x, "x")
        return self._forward(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` (batch, C, H, W) -> ``(W⁻¹ z per pixel, −H·W·log|det W|)``."""
        self._check(z, "z")
        return self._inverse(z)

    def _log_det(self, x: Tensor) -> Tensor:
        return (torch.linalg.slogdet(self.weight)[1] * (x.shape[2] * x.shape[3])).expand(x.shape[0])

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        weight = self.weight.to(x.dtype)
        return torch.einsum("ij,bjhw->bihw", weight, x), self._log_det(x)

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        weight_inv = torch.linalg.inv(self.weight.to(z.dtype))
        return torch.einsum("ij,bjhw->bihw", weight_inv, z), -self._log_det(z)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
