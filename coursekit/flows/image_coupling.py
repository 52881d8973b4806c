"""Image couplings and the squeeze (slides: INN – REALNVP, eq. 12 on images).

On tensors ``(batch, C, H, W)``; both couplings are :class:`AffineCouplingBase` layers, so
the affine maths of eq. (12) is the one in :mod:`coursekit.flows.coupling`; they differ only
in how they split the input into the kept part ``x1`` and the changed part ``x2``:

* :class:`CheckerboardCoupling`: mask ``b`` with ``b[i, j] = (i + j + parity) mod 2``
  (1 = kept); ``x1 = b ⊙ x`` and ``x2 = x``, with ``s`` and ``t`` zero on the kept squares,
  joined as ``z = b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s) + t)``, ``log|det| = Σ (1 − b) ⊙ s``.
* :class:`ChannelCoupling`: ``x1``, ``x2`` are the two halves of the channels.
* :class:`Squeeze`: ``(C, H, W) → (4C, H/2, W/2)``, each 2×2 block becomes 4 channels
  (a permutation: ``log|det| = 0``).

Each conditioner is a :class:`~coursekit.flows.nets.ConvConditioner` whose last convolution
is zero-initialised, so every coupling starts as the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from coursekit._validation import check_image_shape, check_positive_float, check_tensor
from coursekit.flows.base import Bijection
from coursekit.flows.coupling import AffineCouplingBase, bounded_log_scale
from coursekit.flows.nets import ConvConditioner


def checkerboard_mask(height: int, width: int, parity: int = 0) -> Tensor:
    """``(1, 1, H, W)`` float mask with ``b[i, j] = (i + j + parity) mod 2`` (1 = kept)."""
    i = torch.arange(height).view(-1, 1)
    j = torch.arange(width).view(1, -1)
    return ((i + j + parity) % 2).float().view(1, 1, height, width)


class ImageCoupling(AffineCouplingBase):
    """What the image couplings share: arguments, checks and a convolutional conditioner.

    Args:
        shape: ``(C, H, W)`` of the input.
        hidden: width of the conditioner network.
        n_blocks: residual blocks in the conditioner.
        parity: 0 or 1; which part is kept (alternate it between layers).
        scale_bound: ``B`` in ``s = B·tanh(ŝ/B)``.
        block_kernel: 3 or 1, the kernel of the conditioner's residual blocks.
        activation: "silu" or "relu", the conditioner's nonlinearity.
    """

    def __init__(
        self,
        shape: Sequence[int],
        hidden: int = 64,
        n_blocks: int = 2,
        parity: int = 0,
        scale_bound: float = 3.0,
        block_kernel: int = 3,
        activation: str = "silu",
    ):
        super().__init__()
        c, h, w = check_image_shape(shape)
        c_in, c_out = self._conditioner_channels(c)
        if parity not in (0, 1):
            raise ValueError(f"parity: expected 0 or 1, got {parity!r}")
        self.event_shape = (c, h, w)
        self.parity = parity
        self.scale_bound = check_positive_float(scale_bound, "scale_bound")
        for name, buffer in self._buffers_for(h, w).items():
            self.register_buffer(name, buffer)
        self.conditioner = ConvConditioner(c_in, c_out, hidden, n_blocks, block_kernel, activation)

    def _conditioner_channels(self, channels: int) -> tuple[int, int]:
        """``(input, output)`` channels of the conditioner for an input of ``channels``."""
        raise NotImplementedError

    def _buffers_for(self, height: int, width: int) -> dict[str, Tensor]:
        """Constant tensors the coupling keeps (e.g. its mask), by name."""
        return {}

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, parity={self.parity}, scale_bound={self.scale_bound:g}"


class CheckerboardCoupling(ImageCoupling):
    """Affine coupling with a checkerboard mask on ``(batch, C, H, W)`` (eq. 12 per pixel).

    ``parity`` chooses which squares are kept; the conditioner sees the kept squares and
    the mask itself. Arguments as :class:`ImageCoupling`.
    """

    def _buffers_for(self, height: int, width: int) -> dict[str, Tensor]:
        return {"mask": checkerboard_mask(height, width, self.parity)}

    def _conditioner_channels(self, channels: int) -> tuple[int, int]:
        return channels + 1, 2 * channels

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(b ⊙ x, x)``: the conditioner sees the kept squares only."""
        return x * self.mask.to(x.dtype), x

    def _join(self, x1: Tensor, y2: Tensor) -> Tensor:
        """``b ⊙ x + (1 − b) ⊙ y2`` (``x1 = b ⊙ x``)."""
        return x1 + (1 - self.mask.to(y2.dtype)) * y2

    def scale_and_shift(self, x_kept: Tensor) -> tuple[Tensor, Tensor]:
        """Bounded ``s`` and ``t``, zero on the kept squares; each ``(batch, C, H, W)``."""
        mask = self.mask.to(x_kept.dtype).expand(x_kept.shape[0], 1, *x_kept.shape[2:])
        raw_s, t = self.conditioner(torch.cat([x_kept, mask], dim=1)).chunk(2, dim=1)
        free = 1 - self.mask.to(x_kept.dtype)
        return bounded_log_scale(raw_s, self.scale_bound) * free, t * free


class ChannelCoupling(ImageCoupling):
    """Affine coupling that keeps one half of the channels and transforms the other.

    ``parity = 0`` keeps the first ``C/2`` channels, ``parity = 1`` the last ones; ``C`` must
    be even. Arguments as :class:`ImageCoupling`.
    """

    def _conditioner_channels(self, channels: int) -> tuple[int, int]:
        if channels % 2 != 0:
            raise ValueError(f"shape: expected an even number of channels, got {channels}")
        return channels // 2, channels

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = x.chunk(2, dim=1)
        return (a, b) if self.parity == 0 else (b, a)

    def _join(self, kept: Tensor, changed: Tensor) -> Tensor:
        return torch.cat([kept, changed] if self.parity == 0 else [changed, kept], dim=1)

    def scale_and_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        """Bounded ``s`` and ``t`` for the changed half; each ``(batch, C/2, H, W)``."""
        raw_s, t = self.conditioner(kept).chunk(2, dim=1)
        return bounded_log_scale(raw_s, self.scale_bound), t


def squeeze(x: Tensor) -> Tensor:
    """``(batch, C, H, W) → (batch, 4C, H/2, W/2)``: each 2×2 block becomes 4 channels.

    ``ValueError`` naming ``x`` unless it is a 4-D tensor with even ``H`` and ``W``.
    """
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[2] % 2 or x.shape[3] % 2:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"x: expected a tensor (batch, C, H, W) with even H and W to squeeze, got {got}"
        )
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(z: Tensor) -> Tensor:
    """Inverse of :func:`squeeze`: ``(batch, 4C, H, W) → (batch, C, 2H, 2W)``.

    ``ValueError`` naming ``z`` unless it is a 4-D tensor whose channels divide by 4.
    """
    if not isinstance(z, Tensor) or z.dim() != 4 or z.shape[1] % 4:
        got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise ValueError(
            f"z: expected a tensor (batch, 4C, H, W) (channels a multiple of 4) to unsqueeze, "
            f"got {got}"
        )
    b, c4, h, w = z.shape
    z = z.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return z.reshape(b, c4 // 4, 2 * h, 2 * w)


class Squeeze(Bijection):
    """The squeeze permutation as a bijection (``log|det| = 0``); H and W must be even."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (batch, C, H, W), H and W even -> ``(squeeze(x), 0)``."""
        check_tensor(x, "x")
        if x.dim() != 4 or x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(
                f"x: expected shape (batch, C, H, W) with even H and W to squeeze, got "
                f"{tuple(x.shape)}"
            )
        return self._forward(x)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` (batch, 4C, H, W) -> ``(unsqueeze(z), 0)``."""
        check_tensor(z, "z")
        if z.dim() != 4 or z.shape[1] % 4:
            raise ValueError(
                f"z: expected shape (batch, 4C, H, W) (a multiple of 4 channels) to unsqueeze, "
                f"got {tuple(z.shape)}"
            )
        return self._inverse(z)

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return squeeze(x), x.new_zeros(x.shape[0])

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return unsqueeze(z), z.new_zeros(z.shape[0])
