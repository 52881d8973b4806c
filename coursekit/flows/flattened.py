"""A vector flow on images: the slides' RealNVP on flattened pixels (notebook 06, section 4).

:class:`FlattenedImageFlow` puts the image model's preprocessing in front of a flow on
``R^D`` (``D = C·H·W``), so that the two models see the same data and are scored the same
way::

    x in [0, 1]^(C×H×W)  --Logit(α)-->  y  --flatten-->  y ∈ R^D  --vector flow-->  z ∈ R^D
                                                              --reshape--> z (C, H, W)

``log p(x) = log N(z; 0, I) + log|det J_vector(y)| + log|det J_logit(x)|`` (eq. 14); the
flattening and the reshaping only move numbers (``log|det| = 0``). The vector flow (e.g.
:class:`~coursekit.flows.realnvp.RealNVP` with ``dim = D``) ignores the image's geometry:
its masks split the list of pixels, its conditioners are MLPs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

from coursekit._validation import check_image_shape, check_tensor
from coursekit.flows.base import Bijection, Flow, FlowSequence
from coursekit.flows.image import LogitImageFlow
from coursekit.flows.preprocessing import Logit


class Reshape(Bijection):
    """``(batch, *in_shape) -> (batch, *out_shape)``, the same numbers in the same order;
    ``log|det| = 0``."""

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.out_shape = tuple(int(s) for s in out_shape)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError(
                f"out_shape: expected {math.prod(self.in_shape)} numbers like in_shape "
                f"{self.in_shape}, got {self.out_shape}"
            )

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.reshape(x.shape[0], *self.out_shape), x.new_zeros(x.shape[0])

    def _inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z.reshape(z.shape[0], *self.in_shape), z.new_zeros(z.shape[0])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (batch, *in_shape) -> ``(x reshaped to (batch, *out_shape), 0)``."""
        return self._forward(check_tensor(x, "x", event_shape=self.in_shape))

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z`` (batch, *out_shape) -> ``(z reshaped to (batch, *in_shape), 0)``."""
        return self._inverse(check_tensor(z, "z", event_shape=self.out_shape))

    def extra_repr(self) -> str:
        return f"{self.in_shape} -> {self.out_shape}"


class FlattenedImageFlow(LogitImageFlow):
    """A vector flow on the flattened logit-space image, with a standard normal base.

    Args:
        vector_flow: a :class:`~coursekit.flows.base.Flow` on vectors of size
            ``D = C·H·W`` (its ``event_shape`` must be ``(D,)``), e.g.
            ``RealNVP(784, n_layers=8, hidden=(16,))``. Its bijection is used as is.
        image_shape: ``(C, H, W)``, e.g. ``(1, 28, 28)``.
        alpha: ``α`` of the logit preprocessing, as in
            :class:`~coursekit.flows.image.ImageRealNVP`.

    Same interface as :class:`~coursekit.flows.image.ImageRealNVP`: ``forward(x)`` on
    ``x`` (batch, C, H, W) in ``[0, 1]`` returns ``z`` of the image's shape, ``log_prob(x)``,
    ``sample(n, temperature, generator)`` (clamped into ``[0, 1]``), :attr:`logit`,
    :attr:`core` (logit space → noise) and :meth:`num_parameters`.
    """

    def __init__(
        self,
        vector_flow: Flow,
        image_shape: Sequence[int] = (1, 28, 28),
        alpha: float = 1e-5,
    ):
        if not isinstance(vector_flow, Flow):
            raise TypeError(
                f"vector_flow: expected a Flow on vectors, got {type(vector_flow).__name__}"
            )
        shape = check_image_shape(image_shape, "image_shape")
        d = math.prod(shape)
        if tuple(vector_flow.event_shape) != (d,):
            raise ValueError(
                f"vector_flow: expected a flow on vectors of size C·H·W = {d}, got event "
                f"shape {tuple(vector_flow.event_shape)}"
            )
        core = FlowSequence([Reshape(shape, (d,)), vector_flow.transform, Reshape((d,), shape)])
        super().__init__(FlowSequence([Logit(alpha), core]), event_shape=shape)
        self.dim = d

    def extra_repr(self) -> str:
        return f"dim={self.dim}, alpha={self.logit.alpha:g}"
