"""RealNVP for vectors: alternating affine couplings and a standard normal base.

``f_θ = l_n ∘ … ∘ l_1`` maps data to ``N(0, I)`` (slides: INN – REALNVP). Consecutive
couplings keep complementary halves of the coordinates (alternating masks), so every
coordinate is transformed by every other layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from coursekit._validation import check_positive_int
from coursekit.flows.base import Bijection, Flow, FlowSequence, Permutation
from coursekit.flows.coupling import AffineCoupling


def alternating_masks(dim: int, n_layers: int) -> list[list[int]]:
    """Masks keeping the first ``⌈d/2⌉`` then the last ``⌊d/2⌋`` coordinates, alternately.

    For ``d = 2`` this is ``[1, 0], [0, 1], [1, 0], …``.
    """
    half = (dim + 1) // 2
    first = [1] * half + [0] * (dim - half)
    second = [1 - m for m in first]
    return [first if i % 2 == 0 else second for i in range(n_layers)]


class RealNVP(Flow):
    """RealNVP density model on ``R^dim`` (Dinh et al., 2017).

    Args:
        dim: number of features ``d`` (at least 2).
        n_layers: number of affine coupling layers ``n``.
        hidden: hidden widths of each coupling's MLP conditioner.
        scale_bound: bound ``B`` of each coupling's log-scale, ``|s| ≤ B``.
        permutation: ``"alternate"`` (complementary masks, no permutation layers) or
            ``"random"`` (a fixed random :class:`Permutation` before every coupling,
            drawn from ``generator``).
        generator: random generator for the random permutations.

    ``forward(x) -> (z, log_det)``, ``inverse(z) -> (x, log_det)``, ``log_prob(x)`` (eq. 14),
    ``sample(n, temperature)`` and ``trajectory(x)`` (every ``x_i``).
    """

    def __init__(
        self,
        dim: int,
        n_layers: int = 12,
        hidden: Sequence[int] = (32, 32),
        scale_bound: float = 3.0,
        permutation: str = "alternate",
        generator: torch.Generator | None = None,
    ):
        dim = check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(f"dim: expected at least 2 features for a coupling flow, got {dim}")
        n_layers = check_positive_int(n_layers, "n_layers")
        if permutation not in ("alternate", "random"):
            raise ValueError(f"permutation: expected 'alternate' or 'random', got {permutation!r}")
        layers: list[Bijection] = []
        masks = alternating_masks(dim, n_layers)
        for i in range(n_layers):
            if permutation == "random":
                layers.append(Permutation.random(dim, generator=generator))
                mask = masks[0]
            else:
                mask = masks[i]
            layers.append(AffineCoupling(mask, hidden=hidden, scale_bound=scale_bound))
        super().__init__(FlowSequence(layers), event_shape=(dim,))
        self.dim = dim
        self.n_layers = n_layers

    @property
    def couplings(self) -> list[AffineCoupling]:
        """The coupling layers ``l_1, …, l_n`` in forward order."""
        return [layer for layer in self.transform.layers if isinstance(layer, AffineCoupling)]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_layers={self.n_layers}"
