"""A plain MLP density model on R^d (slides: DENSITY ESTIMATION, the 1–4 mode experiment).

"MLP" here always means the same network ``g_θ: R^d → R``: fully connected layers with SiLU
activations and a linear scalar output, read as an *unnormalised* log density. A density
must integrate to 1, so ``p_θ(x) = exp(g_θ(x)) / Z_θ`` with ``Z_θ = ∫ exp(g_θ(x)) dx`` over the
box ``[lo, hi]^d``. The models differ only in how ``Z_θ`` is obtained (eq. 4 is then the loss):

* :class:`MLPDensity` — the midpoint rule on an ``m^d`` grid of ``[lo, hi]^d``, recomputed
  at every call so that gradients flow through ``Z_θ`` (``normalize=False`` drops ``Z_θ``:
  the NLL then has no lower bound, the network just raises ``g_θ`` everywhere);
* :class:`MonteCarloMLPDensity` — an importance-sampling estimate with ``K`` fresh uniform
  points of the box per call, ``Ẑ = (hi − lo)^d · (1/K) Σ_k exp(g_θ(u_k))``: its cost does not
  grow with the dimension, but with few points the network learns to hide mass where the
  points rarely fall.

:func:`grid_log_normalizer` evaluates ``log Z_θ`` of any of them on a fine grid (to measure
the true density a model learned), :class:`GridRenormalized` wraps a model with that fixed
``Z_θ``, and :func:`grid_normalizer_cost` / :func:`grid_log_normalizer_nd` give the size and
the value of the grid normaliser in ``d`` dimensions: ``m^d`` points, which is why this model
cannot scale to MNIST's ``D = 784``. :func:`importance_log_normalizer` estimates ``log Z_θ`` in
any dimension (with its standard error), to measure the density a model really represents
where no grid fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit._validation import check_positive_int, check_tensor
from coursekit.device import module_dtype_device
from coursekit.grid import make_grid
from coursekit.metrics import Estimate

#: Bytes of one float32 number.
FLOAT32_BYTES = 4


def density_mlp(dim: int, hidden: Sequence[int]) -> nn.Sequential:
    """The MLP ``g_θ: R^dim → R``: ``Linear → SiLU`` for each hidden width, then ``Linear → 1``."""
    dim = check_positive_int(dim, "dim")
    widths = [check_positive_int(h, "hidden") for h in hidden]
    layers: list[nn.Module] = []
    width = dim
    for h in widths:
        layers += [nn.Linear(width, h), nn.SiLU()]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def _box_midpoints(dim: int, m: int, lo: float, hi: float) -> Tensor:
    """The ``m^dim`` cell centres of ``[lo, hi]^dim``, (m^dim, dim) float32; in 2-D the points
    of :func:`coursekit.grid.make_grid` (``y`` varies slowest)."""
    if dim == 2:
        return make_grid(lo, hi, m, dtype=torch.float32).points
    axis = lo + (torch.arange(m, dtype=torch.float64) + 0.5) * (hi - lo) / m
    mesh = torch.meshgrid(*([axis] * dim), indexing="ij")
    return torch.stack([c.reshape(-1) for c in reversed(mesh)], dim=1).float()


def _box_name(lo: float, hi: float, dim: int) -> str:
    power = {2: "²", 3: "³"}.get(dim, f"^{dim}")
    return f"[{lo:g}, {hi:g}]{power}"


class MLPDensity(nn.Module):
    """``p_θ(x) = exp(g_θ(x)) / Z_θ`` with an MLP ``g_θ: R^d → R`` and a grid estimate of Z_θ.

    Args:
        hidden: hidden widths of the MLP.
        lo, hi: the box ``[lo, hi]^d`` on which ``p_θ`` is normalised (and supported).
        grid_size: ``m``, points per axis of the normalisation grid (``m^d`` points, kept in
            memory with their activations at every training step: see
            :func:`grid_normalizer_cost`).
        normalize: if ``False``, ``log_prob`` returns the raw ``g_θ(x)`` (not a density:
            used to show that its NLL runs off to −∞).
        dim: ``d``, the dimension of the data (2 by default).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128, 128, 128),
        lo: float = -5.0,
        hi: float = 5.0,
        grid_size: int = 100,
        normalize: bool = True,
        dim: int = 2,
    ):
        super().__init__()
        if not hi > lo:
            raise ValueError(f"lo, hi: expected lo < hi, got lo={lo}, hi={hi}")
        self.dim = check_positive_int(dim, "dim")
        self.net = density_mlp(self.dim, hidden)
        self.normalize = normalize
        m = check_positive_int(grid_size, "grid_size")
        self.register_buffer("grid_points", _box_midpoints(self.dim, m, lo, hi))
        self.cell_area = ((hi - lo) / m) ** self.dim
        self.lo, self.hi = lo, hi

    def unnormalized_log_prob(self, x: Tensor) -> Tensor:
        """``g_θ(x)``; (batch, d) -> (batch,)."""
        return self.net(x).squeeze(-1)

    def log_normalizer(self) -> Tensor:
        """``log Z_θ ≈ log Σ_grid exp(g_θ(x_j)) · ΔA`` (a scalar, differentiable)."""
        g = self.unnormalized_log_prob(self.grid_points.to(self.net[0].weight.dtype))
        return torch.logsumexp(g, dim=0) + torch.log(g.new_tensor(self.cell_area))

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p_θ(x) = g_θ(x) − log Z_θ`` (or ``g_θ(x)`` when ``normalize=False``)."""
        check_tensor(x, "x", event_shape=(self.dim,))
        g = self.unnormalized_log_prob(x)
        return g - self.log_normalizer() if self.normalize else g

    def extra_repr(self) -> str:
        return f"box={_box_name(self.lo, self.hi, self.dim)}, normalize={self.normalize}"


class MonteCarloMLPDensity(MLPDensity):
    """The same MLP, normalised by importance sampling with ``samples`` uniform points.

    ``log Ẑ_θ = log((hi − lo)^d · (1/K) Σ_k exp(g_θ(u_k)))`` with ``u_k ~ U([lo, hi]^d)`` drawn
    afresh at every call from the model's own generator. ``Ẑ_θ`` is unbiased for ``Z_θ``,
    but ``log Ẑ_θ`` is biased low (Jensen) and very noisy when few ``u_k`` fall where
    ``exp(g_θ)`` is large, so training on ``g_θ(x) − log Ẑ_θ`` can put mass where the points
    rarely fall. Its cost is ``K`` evaluations whatever the dimension.

    Args:
        hidden, lo, hi: as for :class:`MLPDensity`.
        samples: ``K``, uniform points per estimate.
        seed: seed of the generator of the ``u_k``.
        dim: ``d``, the dimension of the data (2 by default).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128, 128, 128),
        lo: float = -5.0,
        hi: float = 5.0,
        samples: int = 16,
        seed: int = 0,
        dim: int = 2,
    ):
        super().__init__(hidden=hidden, lo=lo, hi=hi, grid_size=1, normalize=True, dim=dim)
        self.samples = check_positive_int(samples, "samples")
        self.generator = torch.Generator().manual_seed(int(seed))

    def log_normalizer(self) -> Tensor:
        """``log Ẑ_θ`` from ``K`` fresh uniform points of the box (a scalar, differentiable)."""
        weight = self.net[0].weight
        u = torch.rand(self.samples, self.dim, generator=self.generator, dtype=weight.dtype)
        u = (self.lo + (self.hi - self.lo) * u).to(weight.device)
        g = self.unnormalized_log_prob(u)
        log_volume = self.dim * math.log(self.hi - self.lo)
        return torch.logsumexp(g, dim=0) - math.log(self.samples) + log_volume

    def extra_repr(self) -> str:
        return f"box={_box_name(self.lo, self.hi, self.dim)}, samples={self.samples}"


@torch.no_grad()
def grid_log_normalizer(model: MLPDensity, grid_size: int = 400) -> float:
    """``log Z_θ = log ∫ exp(g_θ)`` over the model's box by the midpoint rule on a
    ``grid_size × grid_size`` grid, whatever normaliser the model was trained with (in
    ``d ≠ 2``: on the ``grid_size^d`` grid of :func:`grid_log_normalizer_nd`)."""
    grid_size = check_positive_int(grid_size, "grid_size")
    if model.dim != 2:
        return grid_log_normalizer_nd(model.net, model.dim, grid_size, model.lo, model.hi)
    weight = model.net[0].weight
    grid = make_grid(model.lo, model.hi, grid_size, dtype=weight.dtype)
    g = model.unnormalized_log_prob(grid.points.to(weight.device))
    return float(torch.logsumexp(g, dim=0)) + math.log(grid.cell_area)


class GridRenormalized(nn.Module):
    """``log p(x) = g_θ(x) − log Z_θ`` with ``log Z_θ`` fixed once on a fine grid: the density
    a model actually represents (for a KL estimate or a picture), not the one it was trained
    to believe. ``log_z`` holds the value."""

    def __init__(self, model: MLPDensity, grid_size: int = 400):
        super().__init__()
        self.model = model
        self.log_z = grid_log_normalizer(model, grid_size)

    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """(batch, d) -> (batch,)."""
        check_tensor(x, "x", event_shape=(self.model.dim,))
        return self.model.unnormalized_log_prob(x) - self.log_z


@torch.no_grad()
def importance_log_normalizer(
    model: MLPDensity,
    proposal: object,
    n: int = 100_000,
    generator: torch.Generator | None = None,
) -> Estimate:
    """``log Z_θ = log ∫_box exp(g_θ(x)) dx`` by importance sampling, in any dimension.

    The proposal is the defensive mixture ``q = ½ p + ½ U([lo, hi]^d)`` of ``proposal``
    (any distribution with ``sample`` and ``log_prob``, usually the data's ``p``) and the
    uniform law of the model's box: ``Ẑ = (1/n) Σ_i 1_box(x_i) exp(g_θ(x_i)) / q(x_i)`` with
    ``x_i ~ q``. ``Ẑ`` is unbiased; ``log Ẑ`` is biased low when ``exp(g_θ)`` has mass where
    ``q`` rarely samples, so a KL computed with it is, if anything, too small. The standard
    error of ``log Ẑ`` is that of ``Ẑ`` divided by ``Ẑ`` (delta method).

    Returns:
        an :class:`~coursekit.metrics.Estimate` of ``log Z_θ`` (``n`` draws).
    """
    n = check_positive_int(n, "n")
    if not (hasattr(proposal, "sample") and hasattr(proposal, "log_prob")):
        raise TypeError("proposal: expected a distribution with sample(n, generator) and log_prob")
    d, lo, hi = model.dim, float(model.lo), float(model.hi)
    half = n // 2
    from_p = proposal.sample(half, generator=generator, dtype=torch.float64)
    uniform = lo + (hi - lo) * torch.rand(n - half, d, generator=generator, dtype=torch.float64)
    x = torch.cat([from_p, uniform])
    log_volume = d * math.log(hi - lo)
    inside = ((x >= lo) & (x <= hi)).all(dim=1)
    log_q = torch.logaddexp(
        proposal.log_prob(x).double(), torch.where(inside, -log_volume, -math.inf)
    ) - math.log(2)
    weight = model.net[0].weight
    g = torch.cat([model.unnormalized_log_prob(c.to(weight)) for c in x.split(50_000)]).double()
    log_w = torch.where(inside, g - log_q, -math.inf)
    top = log_w.max()
    w = (log_w - top).exp()
    mean, sd = w.mean(), w.std()
    return Estimate(float(mean.log() + top), float(sd / mean / math.sqrt(n)), n)


def grid_normalizer_cost(dim: int, points_per_axis: int, hidden: Sequence[int]) -> dict[str, int]:
    """The exact size of one grid normalisation of :func:`density_mlp` in ``dim`` dimensions.

    With ``m`` points per axis the grid has ``N = m^dim`` points. In float32 the points take
    ``4·N·dim`` bytes; one training step evaluates the MLP on all of them at once and keeps,
    for the backward pass, at least every layer's input and every SiLU's input, that is
    ``4·N·(dim + 2·Σ hidden + 1)`` bytes (the points included).

    Returns:
        ``{"points": N, "grid_bytes": …, "training_bytes": …}`` (Python integers, exact).
    """
    dim = check_positive_int(dim, "dim")
    m = check_positive_int(points_per_axis, "points_per_axis")
    widths = [check_positive_int(h, "hidden") for h in hidden]
    points = m**dim
    return {
        "points": points,
        "grid_bytes": FLOAT32_BYTES * points * dim,
        "training_bytes": FLOAT32_BYTES * points * (dim + 2 * sum(widths) + 1),
    }


@torch.no_grad()
def grid_log_normalizer_nd(
    net: nn.Module,
    dim: int,
    points_per_axis: int,
    lo: float = -5.0,
    hi: float = 5.0,
    chunk: int = 1 << 16,
) -> float:
    """``log Σ_j exp(g(x_j)) · ΔV`` over the ``m^dim`` midpoints ``x_j`` of ``[lo, hi]^dim``,
    evaluated ``chunk`` points at a time (so the memory stays bounded; the time does not).

    Point ``j`` has coordinates ``lo + (c_i + 1/2)·h`` with ``c_i = ⌊j / m^i⌋ mod m`` and
    ``h = (hi − lo)/m``; ``ΔV = h^dim``. ``net`` maps (batch, dim) to (batch, 1).
    """
    dim = check_positive_int(dim, "dim")
    m = check_positive_int(points_per_axis, "points_per_axis")
    chunk = check_positive_int(chunk, "chunk")
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        raise ValueError(f"lo, hi: expected lo < hi, got lo={lo}, hi={hi}")
    dtype = module_dtype_device(net)[0] or torch.float32
    h = (hi - lo) / m
    powers = torch.tensor([m**i for i in range(dim)], dtype=torch.long)
    total = m**dim
    partial = []
    for start in range(0, total, chunk):
        j = torch.arange(start, min(start + chunk, total), dtype=torch.long)
        cells = torch.div(j[:, None], powers, rounding_mode="floor") % m
        x = lo + (cells.to(dtype) + 0.5) * h
        partial.append(torch.logsumexp(net(x).squeeze(-1), dim=0))
    return float(torch.logsumexp(torch.stack(partial), dim=0)) + dim * math.log(h)
