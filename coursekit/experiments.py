"""Measuring a density model against the truth: KL with its Monte Carlo standard error, the
mass in the gap between the modes, the cost of a grid normaliser (the four modes in ``d``
dimensions: :class:`coursekit.datasets.PlaneFourModes`). (CPU-time training budgets:
``coursekit.training_run.fit_run(..., clock=time.process_time)``.)

* ``KL(p ‖ p_θ) = E_p[log p(X) − log p_θ(X)]`` (eq. 1) (:mod:`coursekit.metrics`) is the mean of
  ``d_i = log p(x_i) − log p_θ(x_i)`` over ``n`` samples ``x_i ~ p``; its standard error is
  ``std(d) / √n``. A single estimate can be negative when the true KL is within a few
  standard errors of 0: each ``d_i`` can be negative, only their expectation cannot.
* The **gap region** of the slides' 4-mode mixture (centres ``(±2, ±2)``, ``σ = 0.5``) is the
  square spanned by the centres minus a disc of radius ``3σ`` around each centre::

      G = {x : |x_1| ≤ 2, |x_2| ≤ 2, ‖x − μ_k‖ > 1.5 for k = 1..4}

  (only the first two coordinates count in ``D > 2``). The true mixture puts little mass
  there; a continuous bijection of a Gaussian stretches thin filaments across it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from coursekit._validation import check_positive_int, check_tensor
from coursekit.datasets import MODE_CENTRES
from coursekit.grid import make_grid
from coursekit.metrics import Estimate

#: half-width of the square spanned by the four centres (±2, ±2)
GAP_HALF_WIDTH = 2.0
#: radius of the disc around each centre left out of the gap region: 3σ with σ = 0.5
GAP_RADIUS = 1.5


def in_gap_region(x: Tensor) -> Tensor:
    """Boolean (batch,): is ``(x_1, x_2)`` in the gap region ``G`` (module docstring)?"""
    check_tensor(x, "x")
    if x.dim() != 2 or x.shape[1] < 2:
        raise ValueError(f"x: expected shape (batch, D) with D ≥ 2, got {tuple(x.shape)}")
    xy = x[:, :2].double()
    centres = torch.tensor(MODE_CENTRES[4], dtype=torch.float64)
    inside_square = (xy.abs() <= GAP_HALF_WIDTH).all(dim=1)
    far = torch.cdist(xy, centres).min(dim=1).values > GAP_RADIUS
    return inside_square & far


def gap_share(samples: Tensor) -> Estimate:
    """Share of ``samples`` (batch, D) in the gap region, with its binomial standard error."""
    hit = in_gap_region(samples).double()
    p = float(hit.mean())
    return Estimate(p, math.sqrt(max(p * (1 - p), 0.0) / hit.numel()), hit.numel())


@torch.no_grad()
def gap_mass_on_grid(log_prob: Callable[[Tensor], Tensor], n: int = 400) -> float:
    """``∫_G p(x) dx`` for a 2-D density by the midpoint rule on an ``n × n`` grid of the
    square ``[−2, 2]²`` (the cells whose centre lies in ``G``)."""
    grid = make_grid(-GAP_HALF_WIDTH, GAP_HALF_WIDTH, n)
    pts = grid.points
    mask = in_gap_region(pts)
    values = torch.cat([log_prob(chunk) for chunk in pts[mask].split(20_000)]).double().exp()
    return float(values.sum() * grid.cell_area)


def grid_cost(points_per_axis: int, dim: int, bytes_per_number: int = 4) -> tuple[int, int]:
    """``(m^D, m^D · D · bytes)``: the points of a grid normaliser and the memory to store them.

    A grid-normalised density (notebook 01's MLP) evaluates its network at every one of the
    ``m^D`` points at every step; storing the points alone takes ``m^D · D`` numbers.
    """
    m = check_positive_int(points_per_axis, "points_per_axis")
    d = check_positive_int(dim, "dim")
    points = m**d
    return points, points * d * bytes_per_number
