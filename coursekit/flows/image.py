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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_positive_float, check_positive_int, check_tensor
from coursekit.flows.base import Bijection, Flow, FlowSequence, standard_normal_log_prob
from coursekit.flows.preprocessing import Logit


class ResidualBlock(nn.Module):
    """``h + conv(act(conv(act(h))))`` with 3×3 convolutions keeping the width."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, h: Tensor) -> Tensor:
        return h + self.net(h)


class ConvConditioner(nn.Module):
    """Convolutional residual network ``(batch, c_in, H, W) → (batch, c_out, H, W)``.

    3×3 input convolution to ``hidden`` channels, ``n_blocks`` residual blocks, then a 3×3
    output convolution whose weights and bias are zero (so the coupling starts as identity).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int, n_blocks: int):
        super().__init__()
        self.inp = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(hidden) for _ in range(n_blocks)])
        self.out = nn.Conv2d(hidden, out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.act = nn.SiLU()

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
    """

    def __init__(
        self,
        shape: Sequence[int],
        hidden: int = 64,
        n_blocks: int = 2,
        parity: int = 0,
        scale_bound: float = 3.0,
    ):
        super().__init__()
        c, h, w = _check_shape(shape)
        if parity not in (0, 1):
            raise ValueError(f"parity: expected 0 or 1, got {parity!r}")
        self.event_shape = (c, h, w)
        self.parity = parity
        self.scale_bound = check_positive_float(scale_bound, "scale_bound")
        self.register_buffer("mask", checkerboard_mask(h, w, parity))
        self.conditioner = ConvConditioner(c + 1, 2 * c, hidden, n_blocks)

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
        self.conditioner = ConvConditioner(c // 2, c, hidden, n_blocks)

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
    ):
        super().__init__()
        c, h, w = _check_shape(shape)
        self.event_shape = (c, h, w)
        kw = dict(hidden=hidden, n_blocks=n_blocks, scale_bound=scale_bound)
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
        self.channel = nn.ModuleList(
            [
                _with_actnorm(ChannelCoupling(sq, parity=i % 2, **kw), sq, actnorm)
                for i in range(n_channel)
            ]
            if sq[0] % 2 == 0
            else []
        )

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
        n_checker, n_channel: checkerboard / channel couplings per scale.
        n_final: checkerboard couplings (and as many channel couplings) of the last scale.
        scale_bound: ``B`` of every coupling's bounded log-scale.
        alpha: ``α`` of the logit preprocessing.

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
        for name, v in (("n_checker", n_checker), ("n_channel", n_channel)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {v!r}")
        n_final = check_positive_int(n_final, "n_final")
        shapes = [(c * 2**i, h // 2**i, w // 2**i) for i in range(n_scales)]
        level: Bijection | None = None
        for i in reversed(range(n_scales)):
            last = i == n_scales - 1
            level = MultiScaleLevel(
                shapes[i],
                hidden=widths[i],
                n_blocks=n_blocks,
                n_checker=n_final if last else n_checker,
                n_channel=n_final if last else n_channel,
                inner=level,
                scale_bound=scale_bound,
                actnorm=actnorm,
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
            n_checker=n_checker,
            n_channel=n_channel,
            n_final=n_final,
            scale_bound=float(scale_bound),
            alpha=float(alpha),
        )
        if actnorm:  # only recorded when used, so older checkpoints keep their config
            self.config["actnorm"] = True

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
