"""Multi-scale RealNVP on images (Dinh et al., 2017; slides: INN – REALNVP, eq. 12–14).

* :class:`~coursekit.flows.multiscale.MultiScaleLevel` (one scale): checkerboard couplings,
  squeeze, channel couplings, half of the channels factored out, the other half to the next
  scale; the whole model maps ``(1, 28, 28)`` to ``z`` of shape ``(1, 28, 28)``.
* :class:`ImageRealNVP`: the logit preprocessing, then the levels, with a standard normal
  base: ``log p(x) = log N(f(x); 0, I) + log|det J_f(x)|`` (eq. 14).

Layers: :mod:`coursekit.flows.image_coupling` (couplings, squeeze), :mod:`coursekit.flows.glow`
(Glow's options), :mod:`coursekit.flows.nets`, :mod:`coursekit.flows.multiscale`; the
architecture: :mod:`coursekit.flows.image_config`; files:
:mod:`coursekit.flows.checkpoint`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import torch
from torch import Tensor

from coursekit._validation import ArgumentTypeError, check_tensor, check_unit_interval
from coursekit.flows.base import (
    Bijection,
    Flow,
    FlowSequence,
    as_module_dtype,
)
from coursekit.flows.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint
from coursekit.flows.glow import ActNorm
from coursekit.flows.image_config import ImageFlowConfig
from coursekit.flows.multiscale import MultiScaleLevel
from coursekit.flows.preprocessing import LEVELS, Logit


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


def _levels(config: ImageFlowConfig) -> Bijection:
    """The multi-scale network: level ``i`` (of ``n_scales``) works on
    ``(C·2^i, H/2^i, W/2^i)`` with its checkerboard and channel couplings, and holds level
    ``i + 1`` inside it (the last level has none). Built from the last level out."""
    c, h, w = config.image_shape
    checkers, channels = config.checker_counts(), config.channel_counts()
    level: Bijection | None = None
    for i in reversed(range(config.n_scales)):
        level = MultiScaleLevel(
            (c * 2**i, h // 2**i, w // 2**i),
            hidden=config.hidden[i],
            n_checker=checkers[i],
            n_channel=channels[i],
            inner=level,
            n_blocks=config.n_blocks,
            scale_bound=config.scale_bound,
            actnorm=config.actnorm,
            invconv=config.invconv,
            block_kernel=config.block_kernel,
            split_prior=config.split_prior,
            activation=config.activation,
        )
    return level


def _transform(config: ImageFlowConfig) -> FlowSequence:
    """``Logit(α)`` then the core: the levels, after a per-pixel ActNorm with ``actnorm``."""
    core = _levels(config)
    logit = Logit(config.alpha)
    if config.actnorm:
        core = FlowSequence([ActNorm(config.image_shape, per_pixel=True), core])
    return FlowSequence([logit, core])


class LogitImageFlow(Flow):
    """A flow on images scaled to ``[0, 1]`` whose bijection is ``core ∘ Logit(α)``, with a
    standard normal base: the interface :class:`ImageRealNVP` and
    :class:`~coursekit.flows.flattened.FlattenedImageFlow` share (the transform is
    ``FlowSequence([Logit(α), core])``)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (batch, C, H, W) in ``[0, 1]`` -> ``(z, log|det ∂z/∂x|)``, ``z`` of the
        shape of ``x``."""
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
        """Everything after the logit: logit space → noise."""
        return self.transform.layers[1]

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


class ImageRealNVP(LogitImageFlow):
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

    The arguments are checked, and kept, as an
    :class:`~coursekit.flows.image_config.ImageFlowConfig` (:attr:`architecture`). The keyword
    defaults are RealNVP's plain multi-scale model (Dinh et al., 2017), which notebook 06
    builds on; the config's defaults are the shipped Glow-like model:
    ``ImageRealNVP.from_config(ImageFlowConfig())``.

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
        config = ImageFlowConfig(
            image_shape=image_shape,
            n_scales=n_scales,
            hidden=hidden,
            n_blocks=n_blocks,
            n_checker=n_checker,
            n_channel=n_channel,
            n_final=n_final,
            scale_bound=scale_bound,
            alpha=alpha,
            actnorm=actnorm,
            invconv=invconv,
            block_kernel=block_kernel,
            split_prior=split_prior,
            n_final_checker=n_final_checker,
            activation=activation,
        )
        super().__init__(_transform(config), event_shape=config.image_shape)
        self.architecture = config

    @classmethod
    def from_config(cls, config: ImageFlowConfig) -> ImageRealNVP:
        """The model of ``config``, fresh weights (``ImageFlowConfig()``: the shipped model's
        architecture)."""
        if not isinstance(config, ImageFlowConfig):
            raise ArgumentTypeError(
                f"config: expected an ImageFlowConfig, got {type(config).__name__}"
            )
        return cls(**{f.name: getattr(config, f.name) for f in fields(config)})

    @property
    def config(self) -> dict[str, object]:
        """Every constructor argument, normalised (``hidden``: one width per scale; lists), as
        a dict (``architecture.as_dict()``): ``ImageRealNVP(**model.config)`` rebuilds the
        architecture, and a checkpoint stores it."""
        return self.architecture.as_dict()

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
