"""The slides' four modes in ``d`` dimensions: a target whose density is exact in every ``d``.

:class:`PlaneFourModes` puts the four Gaussians of the slides' example (centres ``(±2, ±2)``,
``σ = 0.5``) on a 2-D plane of ``R^d`` in general position (a fixed random rotation for
``d ≥ 3``; ``d = 2`` is :func:`coursekit.datasets.four_modes` itself) and gives every mode the
same width ``σ`` in the ``d − 2`` directions off the plane::

    p(x) = (1/4) Σ_k N(x; c_k, σ² I_d),     c_k = Q[:, :2] μ_k,

with ``Q`` a ``d × d`` orthogonal matrix. The modes are not aligned with the axes, so a model
cannot treat the coordinates one by one, and the share of the box ``[−5, 5]^d`` where the data
live shrinks geometrically with ``d`` — what makes an affordable normaliser of a density model
fail as the dimension grows (notebook 01), while a flow's density is normalised by
construction (notebook 05).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from coursekit._validation import (
    check_float_dtype,
    check_generator,
    check_positive_float,
    check_positive_int,
    check_tensor,
)
from coursekit.datasets.toy import MODE_CENTRES
from coursekit.flows.base import LOG_2PI

__all__ = ["PlaneFourModes"]


class PlaneFourModes:
    """Four equal-weight ``N(c_k, σ² I_d)`` with centres on a rotated plane of ``R^d``.

    Args:
        dim: ``d ≥ 2``.
        std: ``σ`` of every mode, in every direction (0.5, as in the slides).
        seed: seed of the random rotation ``Q`` (Haar, by QR of a Gaussian matrix); unused
            for ``d = 2``, where ``Q = I``.

    Attributes:
        means: (4, d) float64 centres ``c_k``; each is at distance ``2√2`` from 0.
    """

    has_log_prob = True

    def __init__(self, dim: int, std: float = 0.5, seed: int = 0):
        self.dim = check_positive_int(dim, "dim")
        if self.dim < 2:
            raise ValueError(f"dim: expected at least 2 coordinates, got {dim}")
        self.std = check_positive_float(std, "std")
        centres = torch.tensor(MODE_CENTRES[4], dtype=torch.float64)  # (4, 2)
        if self.dim == 2:
            basis = torch.eye(2, dtype=torch.float64)
        else:
            g = torch.Generator().manual_seed(int(seed))
            gaussian = torch.randn(self.dim, self.dim, generator=g, dtype=torch.float64)
            q, r = torch.linalg.qr(gaussian)
            basis = (q * torch.sign(torch.diagonal(r)))[:, :2]  # (d, 2) orthonormal columns
        self.means = centres @ basis.T  # (4, d)
        self.name = f"4 modes in d = {self.dim}"

    def sample(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
    ) -> Tensor:
        """``n`` i.i.d. points; returns (n, d) of floating ``dtype``."""
        n = check_positive_int(n, "n")
        check_generator(generator, "generator")
        dtype = check_float_dtype(dtype, "dtype")
        k = torch.randint(0, 4, (n,), generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return (self.means[k] + self.std * noise).to(dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)``; ``x`` (batch, d) -> (batch,)."""
        check_tensor(x, "x", event_shape=(self.dim,))
        means = self.means.to(x)
        squared_distances = ((x[:, None, :] - means[None]) ** 2).sum(-1)  # (batch, 4)
        log_comp = -0.5 * squared_distances / self.std**2 - self.dim * (
            math.log(self.std) + 0.5 * LOG_2PI
        )
        return torch.logsumexp(log_comp, dim=1) - math.log(4)

    def __repr__(self) -> str:
        return f"PlaneFourModes(dim={self.dim}, std={self.std:g})"
