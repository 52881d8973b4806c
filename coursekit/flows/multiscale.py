"""One scale of the multi-scale RealNVP (Dinh et al., 2017; slides: INN – REALNVP).

:class:`MultiScaleLevel`: checkerboard couplings, squeeze, channel couplings, then half of
the channels are *factored out* (left as they are: they are final latent variables) and the
other half goes through the next level; the result is unsqueezed, so the output has the
input's shape. Its log-determinant is the sum of its layers' (eq. 13).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_image_shape
from coursekit.flows.base import Bijection, FlowSequence, compose
from coursekit.flows.glow import ActNorm, InvertibleConv1x1
from coursekit.flows.image_coupling import ChannelCoupling, CheckerboardCoupling, squeeze, unsqueeze


def _with_actnorm(coupling: Bijection, shape: Sequence[int], actnorm: bool) -> Bijection:
    """``coupling`` followed by a per-channel :class:`ActNorm` when ``actnorm``."""
    if not actnorm:
        return coupling
    return FlowSequence([coupling, ActNorm(shape)])


def _checker_steps(
    shape: tuple[int, int, int], n: int, actnorm: bool, options: dict
) -> list[Bijection]:
    """``n`` checkerboard couplings of alternating parity, each followed by an ActNorm when
    ``actnorm``."""
    return [
        _with_actnorm(CheckerboardCoupling(shape, parity=i % 2, **options), shape, actnorm)
        for i in range(n)
    ]


def _channel_steps(
    shape: tuple[int, int, int], n: int, actnorm: bool, invconv: bool, options: dict
) -> list[Bijection]:
    """``n`` channel couplings on ``shape`` (none if its channels cannot be halved): Glow's
    steps ``ActNorm → 1×1 conv → coupling`` with ``invconv``, else couplings of alternating
    parity, each followed by an ActNorm when ``actnorm``."""
    if shape[0] % 2:
        return []
    steps: list[Bijection] = []
    for i in range(n):
        if invconv:
            step: list[Bijection] = [ActNorm(shape)] if actnorm else []
            step.append(InvertibleConv1x1(shape[0]))
            step.append(ChannelCoupling(shape, parity=0, **options))
            steps.append(FlowSequence(step))
        else:
            coupling = ChannelCoupling(shape, parity=i % 2, **options)
            steps.append(_with_actnorm(coupling, shape, actnorm))
    return steps


def _squeezed_shape(shape: tuple[int, int, int], inner: Bijection) -> tuple[int, int, int]:
    """``(4C, H/2, W/2)``, the shape after the squeeze, once ``inner`` is checked to take the
    kept half ``(2C, H/2, W/2)``."""
    c, h, w = shape
    if h % 2 or w % 2:
        raise ValueError(f"shape: expected even height and width to squeeze, got {shape}")
    if tuple(inner.event_shape or ()) != (2 * c, h // 2, w // 2):
        raise ValueError(
            f"inner: expected event_shape {(2 * c, h // 2, w // 2)}, got {inner.event_shape}"
        )
    return (4 * c, h // 2, w // 2)


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
        self.event_shape = check_image_shape(shape)
        options = dict(
            hidden=hidden,
            n_blocks=n_blocks,
            scale_bound=scale_bound,
            block_kernel=block_kernel,
            activation=activation,
        )
        self.checker = nn.ModuleList(_checker_steps(self.event_shape, n_checker, actnorm, options))
        self.inner = inner
        channel_shape = (
            self.event_shape if inner is None else _squeezed_shape(self.event_shape, inner)
        )
        channel = _channel_steps(channel_shape, n_channel, actnorm, invconv, options)
        # Glow's learned prior for the factored-out half: one more channel coupling, so the
        # factored-out variables are N(μ(kept), σ(kept)²) rather than N(0, I).
        if split_prior and inner is not None:
            channel.append(ChannelCoupling(channel_shape, parity=0, **options))
        self.channel = nn.ModuleList(channel)

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x, log_det = compose(self.checker, x, x.new_zeros(x.shape[0]))
        if self.inner is not None:
            x = squeeze(x)
        x, log_det = compose(self.channel, x, log_det)
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
        z, log_det = compose(self.channel, z, log_det, inverse=True)
        if self.inner is not None:
            z = unsqueeze(z)
        return compose(self.checker, z, log_det, inverse=True)
