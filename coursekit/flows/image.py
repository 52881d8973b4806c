"""Multi-scale RealNVP on images (Dinh et al., 2017; slides: INN – REALNVP, eq. 12–14).

* :class:`~coursekit.flows.multiscale.MultiScaleLevel` (one scale): checkerboard couplings,
  squeeze, channel couplings, half of the channels factored out, the other half to the next
  scale; the whole model maps ``(1, 28, 28)`` to ``z`` of shape ``(1, 28, 28)``.
* :class:`ImageRealNVP`: the logit preprocessing, then the levels, with a standard normal
  base: ``log p(x) = log N(f(x); 0, I) + log|det J_f(x)|`` (eq. 14).

Layers: :mod:`coursekit.flows.image_coupling` (couplings, squeeze), :mod:`coursekit.flows.glow`
(Glow's options), :mod:`coursekit.flows.nets`, :mod:`coursekit.flows.multiscale`; files:
:mod:`coursekit.flows.checkpoint`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from coursekit._validation import (
    check_image_shape,
    check_nonnegative_int,
    check_positive_int,
    check_tensor,
    check_unit_interval,
    per_scale,
)
from coursekit.flows.base import (
    Bijection,
    Flow,
    FlowSequence,
    as_module_dtype,
)
from coursekit.flows.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from coursekit.flows.glow import ActNorm
from coursekit.flows.multiscale import MultiScaleLevel
from coursekit.flows.nets import activation_module
from coursekit.flows.preprocessing import LEVELS, Logit


def _widths(hidden: object, n_scales: int) -> list[int]:
    """``hidden`` (a positive int, or one per scale) as ``n_scales`` widths; a string, a
    fraction or a bool is an error (``"64"`` would otherwise split into digits)."""
    values = [hidden] * n_scales if isinstance(hidden, numbers.Integral) else hidden
    if (
        isinstance(hidden, (str, bytes, bool))
        or not isinstance(values, Sequence)
        or len(values) != n_scales
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0 for v in values)
    ):
        raise ValueError(
            f"hidden: expected a positive integer or {n_scales} of them (one per scale), "
            f"got {hidden!r}"
        )
    return [int(v) for v in values]


def _check_init_images(x: Tensor) -> None:
    """Images that ActNorm can standardise: several, not all equal, dequantized."""
    if x.shape[0] < 2:
        raise ValueError(f"x: expected at least 2 images to initialise, got {x.shape[0]}")
    if float(x.amax()) == float(x.amin()):
        raise ValueError(
            "x: the images are all equal (constant): ActNorm would divide by a zero standard "
            "deviation; initialise on real, dequantized images"
        )
    if bool(((x * LEVELS) == (x * LEVELS).round()).all()):
        raise ValueError(
            "x: expected dequantized images (k + u)/256, got pixels on the 256-level grid "
            "k/256: without the noise ActNorm's statistics and the bits/dim are meaningless; "
            "use coursekit.flows.dequantize(images) / 256"
        )


def _config(base: dict, **options: object) -> dict:
    """:attr:`ImageRealNVP.config`: every constructor argument, ``base`` then ``options``
    (a config records every field; an older checkpoint's missing fields take the
    constructor's defaults, the values it was trained with)."""
    return {**base, **options}


def _check_structure(
    image_shape: Sequence[int],
    n_scales: int,
    hidden: int | Sequence[int],
    n_blocks: int,
    n_checker: int | Sequence[int],
    n_channel: int | Sequence[int],
    n_final: int,
    n_final_checker: int | None,
    block_kernel: int,
    activation: str,
) -> tuple:
    """:class:`ImageRealNVP`'s sizes checked: ``(C, H, W)``, the number of scales, the widths
    per scale, the blocks, the checkerboard and channel couplings per scale, the channel and
    checkerboard couplings of the last scale."""
    c, h, w = check_image_shape(image_shape, "image_shape")
    n_scales = check_positive_int(n_scales, "n_scales")
    if h % 2 ** (n_scales - 1) or w % 2 ** (n_scales - 1):
        raise ValueError(
            f"image_shape: height and width must be divisible by 2^(n_scales-1) = "
            f"{2 ** (n_scales - 1)}, got {tuple(image_shape)}"
        )
    widths = _widths(hidden, n_scales)
    n_blocks = check_positive_int(n_blocks, "n_blocks")
    if block_kernel not in (1, 3):
        raise ValueError(f"block_kernel: expected 1 or 3, got {block_kernel!r}")
    checkers = per_scale(n_checker, "n_checker", n_scales - 1)
    channels = per_scale(n_channel, "n_channel", n_scales - 1)
    n_final = check_positive_int(n_final, "n_final")
    final_checker = n_final if n_final_checker is None else n_final_checker
    final_checker = check_nonnegative_int(final_checker, "n_final_checker")
    activation_module(activation)
    return (c, h, w), n_scales, widths, n_blocks, checkers, channels, n_final, final_checker


def _levels(
    shape: tuple[int, int, int],
    widths: list[int],
    n_checker: list[int],
    n_channel: list[int],
    **options: object,
) -> Bijection:
    """The multi-scale network: level ``i`` (of ``len(widths)``) works on
    ``(C·2^i, H/2^i, W/2^i)`` with ``n_checker[i]`` checkerboard and ``n_channel[i]`` channel
    couplings, and holds level ``i + 1`` inside it (the last level has none)."""
    c, h, w = shape
    level: Bijection | None = None
    for i in reversed(range(len(widths))):
        level = MultiScaleLevel(
            (c * 2**i, h // 2**i, w // 2**i),
            hidden=widths[i],
            n_checker=n_checker[i],
            n_channel=n_channel[i],
            inner=level,
            **options,
        )
    return level


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
            slab, which the couplings model more easily (benchmarks/README.md).
        actnorm: per-pixel :class:`ActNorm` after the logit, per-channel ActNorm in every
            coupling step (initialise them with :meth:`initialize`).
        invconv: a learned :class:`InvertibleConv1x1` before every channel coupling (Glow).
        block_kernel: 3 or 1, the kernel of the conditioners' residual blocks.
        split_prior: a learned conditional prior for each factored-out half (Glow).
        activation: the conditioners' nonlinearity, "silu" (default) or "relu" (cheaper).

    ``z = f(x)`` has the shape of ``x``, (batch, *image_shape); :attr:`config` rebuilds it.
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
        sizes = _check_structure(
            image_shape,
            n_scales,
            hidden,
            n_blocks,
            n_checker,
            n_channel,
            n_final,
            n_final_checker,
            block_kernel,
            activation,
        )
        (c, h, w), n_scales, widths, n_blocks, checkers, channels, n_final, final_checker = sizes
        level = _levels(
            (c, h, w),
            widths,
            n_checker=[*checkers, final_checker],
            n_channel=[*channels, n_final],
            n_blocks=n_blocks,
            scale_bound=scale_bound,
            actnorm=actnorm,
            invconv=invconv,
            block_kernel=block_kernel,
            split_prior=split_prior,
            activation=activation,
        )
        logit = Logit(alpha)
        core: Bijection = level
        if actnorm:
            core = FlowSequence([ActNorm((c, h, w), per_pixel=True), level])
        super().__init__(FlowSequence([logit, core]), event_shape=(c, h, w))
        self.config = _config(
            dict(
                image_shape=[c, h, w],
                n_scales=n_scales,
                hidden=widths,
                n_blocks=n_blocks,
                n_checker=n_checker if isinstance(n_checker, int) else list(checkers),
                n_channel=n_channel if isinstance(n_channel, int) else list(channels),
                n_final=n_final,
                scale_bound=float(scale_bound),
                alpha=float(alpha),
            ),
            actnorm=bool(actnorm),
            invconv=bool(invconv),
            block_kernel=block_kernel,
            split_prior=bool(split_prior),
            n_final_checker=None if n_final_checker == n_final else n_final_checker,
            activation=activation,
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (batch, C, H, W) in ``[0, 1]`` -> ``(z, log|det ∂z/∂x|)``."""
        check_tensor(x, "x", event_shape=self.event_shape)
        check_unit_interval(x, "x", "dequantized pixels divided by 256")
        return self.transform._forward(as_module_dtype(self, x))

    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``n`` images ``x = f⁻¹(T·ε)`` in ``[0, 1]``, shape (n, C, H, W).

        The inverse logit maps every finite ``z`` into ``[−α/(1−2α), (1−α)/(1−2α)]``, a little
        wider than ``[0, 1]``; the samples are clamped into ``[0, 1]``, the model's domain, so
        that ``log_prob(sample(n))`` is defined.
        """
        return super().sample(n, temperature=temperature, generator=generator).clamp_(0, 1)

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
        check_tensor(x, "x", event_shape=self.event_shape)
        check_unit_interval(x, "x", "dequantized pixels divided by 256")
        if norms:
            _check_init_images(x)
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

    def save(self, path: str | Path, **metadata: object) -> None:
        """Save ``{"config", "state_dict", **metadata}`` atomically (loadable with
        ``weights_only=True``); see :func:`~coursekit.flows.checkpoint.save_checkpoint`."""
        save_checkpoint(self, path, **metadata)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> ImageRealNVP:
        """Rebuild a model saved by :meth:`save`.

        Raises:
            CheckpointError: naming ``path`` when the file is missing, empty, truncated,
                corrupt, or holds weights that do not fit its config.
        """
        return cls.from_checkpoint(read_checkpoint(path, map_location), source=str(path))

    @classmethod
    def from_checkpoint(cls, checkpoint: dict, source: str = "checkpoint") -> ImageRealNVP:
        """Build from a ``{"config", "state_dict"}`` dict, in eval mode; a
        :class:`~coursekit.flows.checkpoint.CheckpointError` if they disagree."""
        return model_from_checkpoint(cls, checkpoint, source)

    def extra_repr(self) -> str:
        return f"config={self.config}"
