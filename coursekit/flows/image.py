"""RealNVP for images (Dinh et al., 2017): checkerboard and channel couplings, squeeze, and
a multi-scale architecture (slides: INN – REALNVP, eq. 12–14).

Every layer is a :class:`~coursekit.flows.base.Bijection` on tensors ``(batch, C, H, W)``:

* :class:`CheckerboardCoupling`: mask ``b`` with ``b[i, j] = (i + j + parity) mod 2``;
  ``z = b ⊙ x + (1 − b) ⊙ (x ⊙ exp(s(b ⊙ x)) + t(b ⊙ x))``,
  ``log|det| = Σ (1 − b) ⊙ s``.
* :class:`ChannelCoupling`: the same with the channels split in two halves.
* :class:`Squeeze`: ``(C, H, W) → (4C, H/2, W/2)``, each 2×2 block becomes 4 channels
  (a permutation: ``log|det| = 0``).
* :class:`MultiScaleLevel`: checkerboard couplings, squeeze, channel couplings, then half of
  the channels are *factored out* (left as they are: they are final latent variables) and
  the other half goes through the next level; the result is unsqueezed, so the output has the
  input's shape and the whole model maps ``(1, 28, 28)`` to ``z`` of shape ``(1, 28, 28)``.

Scale log-outputs are bounded, ``s = B·tanh(ŝ/B)``, and each conditioner's last convolution is
zero-initialised, so every coupling starts as the identity.

Options from Glow (Kingma & Dhariwal, 2018), used by the shipped MNIST model:

* :class:`ActNorm`: a learned per-channel (or per-pixel) affine map with data-dependent init.
* :class:`InvertibleConv1x1`: a learned ``C×C`` channel mixing before each channel coupling,
  ``log|det| = H·W·log|det W|``.
* a learned prior for each factored-out half (``split_prior``): one more channel coupling just
  before the split.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_positive_float, check_positive_int, check_tensor
from coursekit.flows.base import Bijection, Flow, FlowSequence, standard_normal_log_prob
from coursekit.flows.preprocessing import Logit

#: Activation functions of the conditioners, by name.
ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "relu": nn.ReLU}


def _activation(name: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


class ResidualBlock(nn.Module):
    """A residual block that keeps the width: ``h + net(h)``.

    ``kernel_size=3`` (the default): ``net = conv3×3 ∘ act ∘ conv3×3 ∘ act``, mixing
    neighbouring pixels. ``kernel_size=1``: ``net = conv1×1 ∘ act``, one channel-mixing layer
    (the middle 1×1 convolution of Glow's conditioner, with a skip connection), about 18×
    cheaper. ``act`` is ``activation`` ("silu" or "relu").
    """

    def __init__(self, width: int, kernel_size: int = 3, activation: str = "silu"):
        super().__init__()
        act = _activation(activation)
        if kernel_size == 3:
            self.net = nn.Sequential(
                act(),
                nn.Conv2d(width, width, 3, padding=1),
                act(),
                nn.Conv2d(width, width, 3, padding=1),
            )
        elif kernel_size == 1:
            self.net = nn.Sequential(act(), nn.Conv2d(width, width, 1))
        else:
            raise ValueError(f"kernel_size: expected 1 or 3, got {kernel_size!r}")

    def forward(self, h: Tensor) -> Tensor:
        return h + self.net(h)


class ConvConditioner(nn.Module):
    """Convolutional residual network ``(batch, c_in, H, W) → (batch, c_out, H, W)``.

    3×3 input convolution to ``hidden`` channels, ``n_blocks`` residual blocks (``k×k``
    convolutions, ``k = block_kernel``), then a 3×3 output convolution whose weights and bias
    are zero (so the coupling starts as identity). ``activation``: "silu" or "relu".
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        n_blocks: int,
        block_kernel: int = 3,
        activation: str = "silu",
    ):
        super().__init__()
        self.inp = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.blocks = nn.Sequential(
            *[ResidualBlock(hidden, block_kernel, activation) for _ in range(n_blocks)]
        )
        self.out = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.act = _activation(activation)()

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.act(self.blocks(self.inp(x))))


class ActNorm(Bijection):
    """Learned affine normalisation ``z = (x − μ) ⊙ exp(−ℓ)`` with data-dependent init.

    Per channel (``per_pixel=False``: ``μ, ℓ`` of shape ``(1, C, 1, 1)``, as in Glow) or per
    pixel (``(1, C, H, W)``). ``log|det ∂z/∂x| = −Σ ℓ`` over every pixel and channel.

    At construction ``μ = 0, ℓ = 0`` (the identity). :meth:`ImageRealNVP.initialize` sets
    them from a batch of data so that the output has zero mean and unit variance; this
    removes the large offsets and scales that the couplings would otherwise have to learn
    first (in logit space MNIST's black background sits near ``logit(α)`` with a tiny
    spread), and speeds up training a lot.

    Args:
        shape: ``(C, H, W)`` of the input.
        per_pixel: one ``(μ, ℓ)`` per pixel instead of per channel.
    """

    def __init__(self, shape: Sequence[int], per_pixel: bool = False):
        super().__init__()
        c, h, w = _check_shape(shape)
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

    ``log|det ∂z/∂x| = H·W·log|det W|`` (``H·W`` copies of ``W`` on the diagonal). It replaces
    the fixed "swap the two halves" between channel couplings by a learned mixing (a
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
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"{name}: expected shape (batch, {self.channels}, H, W), got {tuple(x.shape)}"
            )

    def _log_det(self, x: Tensor) -> Tensor:
        return (torch.linalg.slogdet(self.weight)[1] * (x.shape[2] * x.shape[3])).expand(x.shape[0])

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self._check(x, "x")
        weight = self.weight.to(x.dtype)
        return torch.einsum("ij,bjhw->bihw", weight, x), self._log_det(x)

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        self._check(z, "z")
        weight_inv = torch.linalg.inv(self.weight.to(z.dtype))
        return torch.einsum("ij,bjhw->bihw", weight_inv, z), -self._log_det(z)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


def _with_actnorm(coupling: Bijection, shape: Sequence[int], actnorm: bool) -> Bijection:
    """``coupling`` followed by a per-channel :class:`ActNorm` when ``actnorm``."""
    if not actnorm:
        return coupling
    return FlowSequence([coupling, ActNorm(shape)])


def checkerboard_mask(height: int, width: int, parity: int = 0) -> Tensor:
    """``(1, 1, H, W)`` float mask with ``b[i, j] = (i + j + parity) mod 2`` (1 = kept)."""
    i = torch.arange(height).view(-1, 1)
    j = torch.arange(width).view(1, -1)
    return ((i + j + parity) % 2).float().view(1, 1, height, width)


class CheckerboardCoupling(Bijection):
    """Affine coupling with a checkerboard mask on ``(batch, C, H, W)`` (eq. 12 per pixel).

    Args:
        shape: ``(C, H, W)`` of the input.
        hidden: width of the conditioner network.
        n_blocks: residual blocks in the conditioner.
        parity: 0 or 1; which squares are kept (alternate it between layers).
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
        c, h, w = _check_shape(shape)
        if parity not in (0, 1):
            raise ValueError(f"parity: expected 0 or 1, got {parity!r}")
        self.event_shape = (c, h, w)
        self.parity = parity
        self.scale_bound = check_positive_float(scale_bound, "scale_bound")
        self.register_buffer("mask", checkerboard_mask(h, w, parity))
        self.conditioner = ConvConditioner(c + 1, 2 * c, hidden, n_blocks, block_kernel, activation)

    def scale_and_shift(self, x_kept: Tensor) -> tuple[Tensor, Tensor]:
        """Bounded ``s`` and ``t``, zero on the kept squares; each ``(batch, C, H, W)``."""
        mask = self.mask.to(x_kept.dtype).expand(x_kept.shape[0], 1, *x_kept.shape[2:])
        raw_s, t = self.conditioner(torch.cat([x_kept, mask], dim=1)).chunk(2, dim=1)
        free = 1 - self.mask.to(x_kept.dtype)
        s = self.scale_bound * torch.tanh(raw_s / self.scale_bound) * free
        return s, t * free

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mask = self.mask.to(x.dtype)
        s, t = self.scale_and_shift(x * mask)
        z = x * mask + (1 - mask) * (x * torch.exp(s) + t)
        return z, s.flatten(1).sum(1)

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        mask = self.mask.to(z.dtype)
        s, t = self.scale_and_shift(z * mask)
        x = z * mask + (1 - mask) * ((z - t) * torch.exp(-s))
        return x, -s.flatten(1).sum(1)

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, parity={self.parity}, scale_bound={self.scale_bound:g}"


class ChannelCoupling(Bijection):
    """Affine coupling that keeps one half of the channels and transforms the other.

    ``parity = 0`` keeps the first ``C/2`` channels, ``parity = 1`` the last ones.
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
        c, h, w = _check_shape(shape)
        if c % 2 != 0:
            raise ValueError(f"shape: expected an even number of channels, got {c}")
        if parity not in (0, 1):
            raise ValueError(f"parity: expected 0 or 1, got {parity!r}")
        self.event_shape = (c, h, w)
        self.parity = parity
        self.scale_bound = check_positive_float(scale_bound, "scale_bound")
        self.conditioner = ConvConditioner(c // 2, c, hidden, n_blocks, block_kernel, activation)

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        a, b = x.chunk(2, dim=1)
        return (a, b) if self.parity == 0 else (b, a)

    def _join(self, kept: Tensor, changed: Tensor) -> Tensor:
        return torch.cat([kept, changed] if self.parity == 0 else [changed, kept], dim=1)

    def scale_and_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.conditioner(kept).chunk(2, dim=1)
        return self.scale_bound * torch.tanh(raw_s / self.scale_bound), t

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        kept, changed = self._split(x)
        s, t = self.scale_and_shift(kept)
        return self._join(kept, changed * torch.exp(s) + t), s.flatten(1).sum(1)

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        kept, changed = self._split(z)
        s, t = self.scale_and_shift(kept)
        return self._join(kept, (changed - t) * torch.exp(-s)), -s.flatten(1).sum(1)

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, parity={self.parity}, scale_bound={self.scale_bound:g}"


def squeeze(x: Tensor) -> Tensor:
    """``(batch, C, H, W) → (batch, 4C, H/2, W/2)``: each 2×2 block becomes 4 channels."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(z: Tensor) -> Tensor:
    """Inverse of :func:`squeeze`: ``(batch, 4C, H, W) → (batch, C, 2H, 2W)``."""
    b, c4, h, w = z.shape
    z = z.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return z.reshape(b, c4 // 4, 2 * h, 2 * w)


class Squeeze(Bijection):
    """The squeeze permutation as a bijection (``log|det| = 0``); H and W must be even."""

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"x: expected even height and width to squeeze, got {x.shape}")
        return squeeze(x), x.new_zeros(x.shape[0])

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if z.shape[1] % 4:
            raise ValueError(f"z: expected a multiple of 4 channels to unsqueeze, got {z.shape}")
        return unsqueeze(z), z.new_zeros(z.shape[0])


class MultiScaleLevel(Bijection):
    """One scale of the multi-scale RealNVP, output shape = input shape ``(C, H, W)``.

    ``n_checker`` checkerboard couplings; then, if ``inner`` is given: squeeze to
    ``(4C, H/2, W/2)``, ``n_channel`` channel couplings, factor out the last ``2C`` channels
    and send the first ``2C`` through ``inner``, concatenate and unsqueeze. Without ``inner``
    (the last scale): ``n_checker`` checkerboard couplings then, if ``C`` is even,
    ``n_channel`` channel couplings.

    With ``split_prior=True`` (and ``inner``) one more channel coupling transforms the
    factored-out half given the kept half just before the split: the factored-out variables
    then follow a Gaussian whose mean and scale depend on the kept ones (Glow's learned
    prior), instead of N(0, I).

    With ``invconv=True`` each channel coupling is preceded by a learned
    :class:`InvertibleConv1x1` (and by an :class:`ActNorm` when ``actnorm``): Glow's "step
    of flow" ``ActNorm → 1×1 conv → coupling``; otherwise consecutive channel couplings
    alternate which half they keep, each followed by an ActNorm when ``actnorm``.
    """

    def __init__(
        self,
        shape: Sequence[int],
        hidden: int,
        n_blocks: int,
        n_checker: int,
        n_channel: int,
        inner: Bijection | None = None,
        scale_bound: float = 3.0,
        actnorm: bool = False,
        invconv: bool = False,
        block_kernel: int = 3,
        split_prior: bool = False,
        activation: str = "silu",
    ):
        super().__init__()
        c, h, w = _check_shape(shape)
        self.event_shape = (c, h, w)
        kw = dict(
            hidden=hidden,
            n_blocks=n_blocks,
            scale_bound=scale_bound,
            block_kernel=block_kernel,
            activation=activation,
        )
        self.checker = nn.ModuleList(
            [
                _with_actnorm(
                    CheckerboardCoupling((c, h, w), parity=i % 2, **kw), (c, h, w), actnorm
                )
                for i in range(n_checker)
            ]
        )
        self.inner = inner
        if inner is not None:
            if h % 2 or w % 2:
                raise ValueError(f"shape: expected even height and width to squeeze, got {shape}")
            sq = (4 * c, h // 2, w // 2)
            if tuple(inner.event_shape or ()) != (2 * c, h // 2, w // 2):
                raise ValueError(
                    f"inner: expected event_shape {(2 * c, h // 2, w // 2)}, "
                    f"got {inner.event_shape}"
                )
        else:
            sq = (c, h, w)
        channel: list[Bijection] = []
        if sq[0] % 2 == 0:
            for i in range(n_channel):
                if invconv:
                    step: list[Bijection] = [ActNorm(sq)] if actnorm else []
                    step += [InvertibleConv1x1(sq[0]), ChannelCoupling(sq, parity=0, **kw)]
                    channel.append(FlowSequence(step))
                else:
                    coupling = ChannelCoupling(sq, parity=i % 2, **kw)
                    channel.append(_with_actnorm(coupling, sq, actnorm))
        # Glow's learned prior for the factored-out half: one more channel coupling, so the
        # factored-out variables are N(μ(kept), σ(kept)²) rather than N(0, I).
        if split_prior and inner is not None:
            channel.append(ChannelCoupling(sq, parity=0, **kw))
        self.channel = nn.ModuleList(channel)

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_det = x.new_zeros(x.shape[0])
        for layer in self.checker:
            x, ld = layer._forward(x)
            log_det = log_det + ld
        if self.inner is not None:
            x = squeeze(x)
        for layer in self.channel:
            x, ld = layer._forward(x)
            log_det = log_det + ld
        if self.inner is not None:
            kept, out = x.chunk(2, dim=1)
            kept, ld = self.inner._forward(kept)
            x = unsqueeze(torch.cat([kept, out], dim=1))
            log_det = log_det + ld
        return x, log_det

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        log_det = z.new_zeros(z.shape[0])
        if self.inner is not None:
            kept, out = squeeze(z).chunk(2, dim=1)
            kept, ld = self.inner._inverse(kept)
            z = torch.cat([kept, out], dim=1)
            log_det = log_det + ld
        for layer in reversed(self.channel):
            z, ld = layer._inverse(z)
            log_det = log_det + ld
        if self.inner is not None:
            z = unsqueeze(z)
        for layer in reversed(self.checker):
            z, ld = layer._inverse(z)
            log_det = log_det + ld
        return z, log_det


def _per_scale(value: int | Sequence[int], name: str, n: int) -> list[int]:
    """``value`` (an int, or one non-negative int per scale) as a list of ``n`` counts."""
    values = [value] * n if isinstance(value, int) else list(value)
    if len(values) != n or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values
    ):
        raise ValueError(
            f"{name}: expected a non-negative integer or {n} of them (one per scale but the "
            f"last), got {value!r}"
        )
    return values


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        dims = tuple(int(s) for s in shape)
    except TypeError as err:
        raise ValueError(f"shape: expected (C, H, W), got {shape!r}") from err
    if len(dims) != 3 or min(dims) <= 0:
        raise ValueError(f"shape: expected three positive sizes (C, H, W), got {shape!r}")
    return dims  # type: ignore[return-value]


class ImageRealNVP(Flow):
    """Multi-scale RealNVP on images scaled to ``[0, 1]``, with a standard normal base.

    ``f = core ∘ Logit(α)``: ``log p(x) = log N(f(x); 0, I) + log|det J_core| +
    log|det J_logit|`` is the density on ``[0, 1]^D``; use
    :func:`~coursekit.flows.preprocessing.image_bits_per_dim` for bits/dim on 0..255 images.

    Args:
        image_shape: ``(C, H, W)``, e.g. ``(1, 28, 28)``.
        n_scales: number of :class:`MultiScaleLevel` (each but the last squeezes and factors
            out half of the variables); ``H`` and ``W`` must be divisible by ``2^(n_scales−1)``.
        hidden: conditioner widths, one per scale (an int: same at every scale).
        n_blocks: residual blocks per conditioner.
        n_checker, n_channel: checkerboard / channel couplings of each scale but the last (an
            int: the same at each; a sequence: one value per scale but the last).
        n_final: checkerboard couplings (and as many channel couplings) of the last scale.
        n_final_checker: checkerboard couplings of the last scale if not ``n_final`` (0: the
            last scale is ``n_final`` channel couplings / Glow steps only).
        scale_bound: ``B`` of every coupling's bounded log-scale.
        alpha: ``α`` of the logit preprocessing. A small ``α`` (1e-5) spreads the black
            background's dequantization noise over a wide range of logits instead of a thin
            slab, which the couplings model far more easily (on MNIST, 1.43 instead of 1.95
            bits/dim after 4 minutes of training, ``benchmarks/mnist_probe.py``).
        actnorm: per-pixel :class:`ActNorm` after the logit, per-channel ActNorm in every
            coupling step (initialise them with :meth:`initialize`).
        invconv: a learned :class:`InvertibleConv1x1` before every channel coupling (Glow).
        block_kernel: 3 or 1, the kernel of the conditioners' residual blocks.
        split_prior: a learned conditional prior for each factored-out half (Glow).
        activation: the conditioners' nonlinearity, "silu" (default) or "relu" (cheaper).

    ``forward(x) -> (z, log_det)`` with ``z`` of shape ``(batch, *image_shape)``,
    ``inverse``, ``log_prob``, ``sample(n, temperature)``; :attr:`config` rebuilds the model.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        n_scales: int = 3,
        hidden: int | Sequence[int] = 64,
        n_blocks: int = 2,
        n_checker: int = 3,
        n_channel: int = 3,
        n_final: int = 4,
        scale_bound: float = 3.0,
        alpha: float = 0.05,
        actnorm: bool = False,
        invconv: bool = False,
        block_kernel: int = 3,
        split_prior: bool = False,
        n_final_checker: int | None = None,
        activation: str = "silu",
    ):
        c, h, w = _check_shape(image_shape)
        n_scales = check_positive_int(n_scales, "n_scales")
        if h % 2 ** (n_scales - 1) or w % 2 ** (n_scales - 1):
            raise ValueError(
                f"image_shape: height and width must be divisible by 2^(n_scales-1) = "
                f"{2 ** (n_scales - 1)}, got {tuple(image_shape)}"
            )
        widths = [hidden] * n_scales if isinstance(hidden, int) else [int(v) for v in hidden]
        if len(widths) != n_scales:
            raise ValueError(f"hidden: expected an int or {n_scales} widths, got {hidden!r}")
        for v in widths:
            check_positive_int(v, "hidden")
        n_blocks = check_positive_int(n_blocks, "n_blocks")
        if block_kernel not in (1, 3):
            raise ValueError(f"block_kernel: expected 1 or 3, got {block_kernel!r}")
        checkers = _per_scale(n_checker, "n_checker", n_scales - 1)
        channels = _per_scale(n_channel, "n_channel", n_scales - 1)
        n_final = check_positive_int(n_final, "n_final")
        final_checker = n_final if n_final_checker is None else n_final_checker
        if (
            isinstance(final_checker, bool)
            or not isinstance(final_checker, int)
            or final_checker < 0
        ):
            raise ValueError(
                f"n_final_checker: expected None or an int >= 0, got {n_final_checker!r}"
            )
        _activation(activation)
        shapes = [(c * 2**i, h // 2**i, w // 2**i) for i in range(n_scales)]
        level: Bijection | None = None
        for i in reversed(range(n_scales)):
            last = i == n_scales - 1
            level = MultiScaleLevel(
                shapes[i],
                hidden=widths[i],
                n_blocks=n_blocks,
                n_checker=final_checker if last else checkers[i],
                n_channel=n_final if last else channels[i],
                inner=level,
                scale_bound=scale_bound,
                actnorm=actnorm,
                invconv=invconv,
                block_kernel=block_kernel,
                split_prior=split_prior,
                activation=activation,
            )
        assert level is not None
        logit = Logit(alpha)
        core: Bijection = level
        if actnorm:
            core = FlowSequence([ActNorm((c, h, w), per_pixel=True), level])
        super().__init__(FlowSequence([logit, core]), event_shape=(c, h, w))
        self.config = dict(
            image_shape=[c, h, w],
            n_scales=n_scales,
            hidden=widths,
            n_blocks=n_blocks,
            n_checker=n_checker if isinstance(n_checker, int) else list(checkers),
            n_channel=n_channel if isinstance(n_channel, int) else list(channels),
            n_final=n_final,
            scale_bound=float(scale_bound),
            alpha=float(alpha),
        )
        # options recorded only when used, so older checkpoints keep their config
        if actnorm:
            self.config["actnorm"] = True
        if invconv:
            self.config["invconv"] = True
        if block_kernel != 3:
            self.config["block_kernel"] = block_kernel
        if split_prior:
            self.config["split_prior"] = True
        if n_final_checker is not None and n_final_checker != n_final:
            self.config["n_final_checker"] = n_final_checker
        if activation != "silu":
            self.config["activation"] = activation

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (batch, C, H, W) in ``[0, 1]`` -> ``(z, log|det ∂z/∂x|)``."""
        check_tensor(x, "x", event_shape=self.event_shape)
        if bool((x < 0).any()) or bool((x > 1).any()):
            raise ValueError(
                "x: expected values in [0, 1] (dequantized pixels divided by 256), got values "
                f"in [{float(x.min()):g}, {float(x.max()):g}]"
            )
        return self.transform._forward(x)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` on ``[0, 1]^D`` (eq. 14, the logit Jacobian included); (batch,)."""
        z, log_det = self.forward(x)
        return standard_normal_log_prob(z) + log_det

    @property
    def logit(self) -> Logit:
        """The preprocessing layer ``x ↦ logit(α + (1 − 2α) x)``."""
        return self.transform.layers[0]

    @property
    def core(self) -> Bijection:
        """Everything after the logit (logit space → noise): the multi-scale coupling
        network, preceded by the per-pixel :class:`ActNorm` when the model has ActNorm."""
        return self.transform.layers[1]

    @torch.no_grad()
    def initialize(self, x: Tensor) -> ImageRealNVP:
        """Data-dependent initialisation of every :class:`ActNorm` from images ``x``.

        ``x``: (batch, C, H, W) dequantized images in ``[0, 1]`` (a few hundred are plenty).
        Runs one forward pass; each ActNorm, in order, sets its ``μ`` and ``ℓ`` to the mean
        and log-std of its input, so that its output is standardised. Without ActNorm
        layers this does nothing. Returns the model.
        """
        norms = [m for m in self.modules() if isinstance(m, ActNorm)]
        if norms and x.shape[0] < 2:
            raise ValueError(f"x: expected at least 2 images to initialise, got {x.shape[0]}")
        for m in norms:
            m.pending_init = True
        try:
            self.forward(x)
        finally:
            for m in norms:
                m.pending_init = False
        return self

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def save(self, path: str, **metadata: object) -> None:
        """Save ``{"config", "state_dict", **metadata}`` (loadable with ``weights_only=True``)."""
        torch.save({"config": self.config, "state_dict": self.state_dict(), **metadata}, path)

    @classmethod
    def load(cls, path: str, map_location: str | torch.device = "cpu") -> ImageRealNVP:
        """Rebuild a model saved by :meth:`save` (``torch.load(..., weights_only=True)``)."""
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        return cls.from_checkpoint(checkpoint, source=str(path))

    @classmethod
    def from_checkpoint(cls, checkpoint: dict, source: str = "checkpoint") -> ImageRealNVP:
        """Build from a ``{"config", "state_dict"}`` dict; clear error if they disagree."""
        if not isinstance(checkpoint, dict) or "config" not in checkpoint:
            raise ValueError(f"{source}: expected a dict with 'config' and 'state_dict'")
        model = cls(**checkpoint["config"])
        state = checkpoint.get("state_dict", {})
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(
                f"{source}: the weights do not match the architecture {checkpoint['config']}: "
                f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                f"(e.g. {unexpected[:2]}), {len(wrong)} with another shape (e.g. {wrong[:2]})"
            )
        model.load_state_dict(state)
        model.eval()
        return model

    def extra_repr(self) -> str:
        return f"config={self.config}"
