"""A plain MLP density model on R² (slides: DENSITY ESTIMATION, the 1–4 mode experiment).

The network outputs an unnormalised log density ``g_θ(x)``. A density must integrate to 1,
so ``p_θ(x) = exp(g_θ(x)) / Z_θ`` with ``Z_θ = ∫ exp(g_θ(x)) dx``, which we approximate by
the midpoint rule on a grid of ``[lo, hi]²`` (recomputed at every call, so that gradients
flow through ``Z_θ``). Without ``Z_θ`` the NLL has no lower bound: the network just raises
``g_θ`` everywhere. A grid with ``m`` points per axis costs ``m^D`` evaluations, which is
why this model cannot scale to MNIST's ``D = 784``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_tensor
from coursekit.grid import make_grid


class MLPDensity(nn.Module):
    """``p_θ(x) = exp(g_θ(x)) / Z_θ`` with an MLP ``g_θ: R² → R`` and a grid estimate of Z_θ.

    Args:
        hidden: hidden widths of the MLP.
        lo, hi: the square ``[lo, hi]²`` on which ``p_θ`` is normalised (and supported).
        grid_size: points per axis of the normalisation grid.
        normalize: if ``False``, ``log_prob`` returns the raw ``g_θ(x)`` (not a density:
            used to show that its NLL runs off to −∞).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128, 128, 128),
        lo: float = -5.0,
        hi: float = 5.0,
        grid_size: int = 100,
        normalize: bool = True,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = 2
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.normalize = normalize
        grid = make_grid(lo, hi, grid_size, dtype=torch.float32)
        self.register_buffer("grid_points", grid.points)
        self.cell_area = grid.cell_area
        self.lo, self.hi = lo, hi

    def unnormalized_log_prob(self, x: Tensor) -> Tensor:
        """``g_θ(x)``; (batch, 2) -> (batch,)."""
        return self.net(x).squeeze(-1)

    def log_normalizer(self) -> Tensor:
        """``log Z_θ ≈ log Σ_grid exp(g_θ(x_j)) · ΔA`` (a scalar, differentiable)."""
        g = self.unnormalized_log_prob(self.grid_points.to(self.net[0].weight.dtype))
        return torch.logsumexp(g, dim=0) + torch.log(g.new_tensor(self.cell_area))

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p_θ(x) = g_θ(x) − log Z_θ`` (or ``g_θ(x)`` when ``normalize=False``)."""
        check_tensor(x, "x", event_shape=(2,))
        g = self.unnormalized_log_prob(x)
        return g - self.log_normalizer() if self.normalize else g

    def extra_repr(self) -> str:
        return f"box=[{self.lo:g}, {self.hi:g}]², normalize={self.normalize}"
