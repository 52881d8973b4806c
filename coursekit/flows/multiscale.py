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
        c, h, w = check_image_shape(shape)
        self.event_shape = (c, h, w)
        options = dict(
            hidden=hidden,
            n_blocks=n_blocks,
            scale_bound=scale_bound,
            block_kernel=block_kernel,
            activation=activation,
        )
        self.checker = nn.ModuleList(
            [
                _with_actnorm(
                    CheckerboardCoupling((c, h, w), parity=i % 2, **options), (c, h, w), actnorm
                )
                for i in range(n_checker)
            ]
        )
        self.inner = inner
        if inner is not None:
            if h % 2 or w % 2:
                raise ValueError(f"shape: expected even height and width to squeeze, got {shape}")
            channel_shape = (4 * c, h // 2, w // 2)
            if tuple(inner.event_shape or ()) != (2 * c, h // 2, w // 2):
                raise ValueError(
                    f"inner: expected event_shape {(2 * c, h // 2, w // 2)}, "
                    f"got {inner.event_shape}"
                )
        else:
            channel_shape = (c, h, w)
        channel: list[Bijection] = []
        if channel_shape[0] % 2 == 0:
            for i in range(n_channel):
                if invconv:
                    step: list[Bijection] = [ActNorm(channel_shape)] if actnorm else []
                    step.append(InvertibleConv1x1(channel_shape[0]))
                    step.append(ChannelCoupling(channel_shape, parity=0, **options))
                    channel.append(FlowSequence(step))
                else:
                    coupling = ChannelCoupling(channel_shape, parity=i % 2, **options)
                    channel.append(_with_actnorm(coupling, channel_shape, actnorm))
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
