"""Regular 2-D grids: evaluate a density on a grid and integrate it numerically.

Used to draw densities (``imshow``/``contourf``), to check that a density integrates to 1,
and to normalise the MLP density model of notebook 01 (which is only possible because the
grid is 2-D: a grid with ``m`` points per axis in ``D`` dimensions has ``m^D`` points).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from coursekit._validation import check_positive_int


@dataclass(frozen=True)
class Grid2D:
    """A regular ``n × n`` grid of cell centres on ``[lo, hi]²``.

    Attributes:
        xs, ys: (n,) coordinates of the cell centres along each axis.
        points: (n·n, 2) all cell centres, row-major (``y`` varies slowest), so
            ``values.reshape(n, n)`` is an image with ``y`` along rows (``imshow`` with
            ``origin="lower"``).
        cell_area: area of one cell.
    """

    xs: Tensor
    ys: Tensor
    points: Tensor
    cell_area: float
    lo: float
    hi: float

    @property
    def n(self) -> int:
        return self.xs.numel()

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(lo, hi, lo, hi)`` for ``imshow(..., extent=grid.extent)``."""
        return (self.lo, self.hi, self.lo, self.hi)

    def as_image(self, values: Tensor) -> Tensor:
        """Reshape (n·n,) values to an (n, n) image (rows = y, columns = x)."""
        return values.reshape(self.n, self.n)


def make_grid(
    lo: float = -4.0, hi: float = 4.0, n: int = 200, dtype: torch.dtype = torch.float64
) -> Grid2D:
    """A grid of ``n × n`` cell centres covering ``[lo, hi]²`` (midpoint rule)."""
    n = check_positive_int(n, "n")
    if not hi > lo:
        raise ValueError(f"hi: expected hi > lo, got lo={lo}, hi={hi}")
    step = (hi - lo) / n
    axis = lo + step * (torch.arange(n, dtype=dtype) + 0.5)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    return Grid2D(xs=axis, ys=axis.clone(), points=points, cell_area=step * step, lo=lo, hi=hi)


@torch.no_grad()
def log_prob_on_grid(
    log_prob: Callable[[Tensor], Tensor], grid: Grid2D, batch_size: int = 20_000
) -> Tensor:
    """Evaluate ``log_prob`` on every grid point (in batches); returns (n·n,)."""
    out = [log_prob(chunk) for chunk in grid.points.split(batch_size)]
    return torch.cat(out)


def integrate_on_grid(values: Tensor, grid: Grid2D) -> float:
    """Midpoint-rule integral ``Σ values · cell_area`` of (n·n,) density values."""
    return float(values.double().sum() * grid.cell_area)
