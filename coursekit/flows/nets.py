"""Conditioner networks: the functions ``x1 ↦ (ŝ, t)`` of the coupling layers (eq. 12).

* :func:`mlp`: a multilayer perceptron for vectors ``(batch, k) → (batch, 2(d − k))``.
* :class:`ConvConditioner`: a convolutional residual network for images
  ``(batch, c_in, H, W) → (batch, c_out, H, W)``, built from :class:`ResidualBlock`.

Each network's last layer is zero-initialised, so it outputs ``ŝ = t = 0`` at
initialisation and the coupling it drives starts as the identity.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from torch import Tensor, nn


def mlp(in_features: int, out_features: int, hidden: Sequence[int]) -> nn.Sequential:
    """A multilayer perceptron ``in -> hidden[0] -> … -> out`` with SiLU activations.

    The last linear layer is zero-initialised (weights and bias), so the network outputs 0
    at initialisation.
    """
    widths = tuple(hidden) if isinstance(hidden, (Sequence, Tensor)) else None
    if widths is None or any(
        isinstance(h, bool) or not isinstance(h, numbers.Integral) or h <= 0 for h in widths
    ):
        raise ValueError(f"hidden: expected a sequence of positive integer widths, got {hidden!r}")
    layers: list[nn.Module] = []
    width = in_features
    for h in widths:
        layers += [nn.Linear(width, int(h)), nn.SiLU()]
        width = int(h)
    last = nn.Linear(width, out_features)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


#: Activation functions of the conditioners, by name.
ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "relu": nn.ReLU}


def activation_module(name: str) -> type[nn.Module]:
    """The activation class called ``name`` (a key of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


class ResidualBlock(nn.Module):
    """A residual block that keeps the width: ``h + net(h)``.

    ``kernel_size=3`` (the default): ``net = conv3×3 ∘ act ∘ conv3×3 ∘ act``, mixing
    neighbouring pixels. ``kernel_size=1``: ``net = conv1×1 ∘ act``, one channel-mixing layer
    (the middle 1×1 convolution of Glow's conditioner, with a skip connection). ``act`` is
    ``activation`` ("silu" or "relu").
    """

    def __init__(self, width: int, kernel_size: int = 3, activation: str = "silu"):
        super().__init__()
        act = activation_module(activation)
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
        self.act = activation_module(activation)()

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.act(self.blocks(self.inp(x))))
